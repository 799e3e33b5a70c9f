"""Random search: the sanity floor every method must beat.

Each ask draws ``batch_size`` genomes from the space's prior (``space.sample``: uniform over the box
for recipe spaces, the space's own initialisation distribution for the raw-parameter space); the
recommendation is the best genome ever evaluated. No paper: it is the standard reference point of
hyper-parameter and black-box optimisation benchmarks.

Hyper-parameters:
    batch_size (20): genomes per ask (the runner tells a prefix of the last batch at the budget's end).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from evobench.baseline import Baseline, BaselineConfig
from evobench.evaluation import Evaluation


class RandomSearchConfig(BaselineConfig):
    batch_size: int = Field(20, ge=1)


class RandomSearch(Baseline):
    """Independent samples from the space's prior; recommend = best evaluated."""

    name = "random-search"
    spaces = ("ps", "dfs", "ps+dfs", "params")
    space_needs = {"params": ("sampler",)}  # it draws fresh models from the prior
    paper = "sanity floor (no paper)"
    Config = RandomSearchConfig

    def _ask(self) -> np.ndarray:
        return self.space.sample(self.rng, self.config.batch_size)

    def _tell(self, x: np.ndarray, ev: Evaluation) -> None:
        """Nothing to learn: best-so-far is kept by the base class."""
