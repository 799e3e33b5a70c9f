"""Brute-force SLERP: the baseline of M2N2's pretrained-specialists experiment (Abrantes, Lange, Tang;
Sakana AI, GECCO 2025, "Competition and Attraction Improve Model Fusion"; 10,000 weights there).

It needs exactly two starting models (``seed()``; anything else is a ``ValueError`` at seed time)
and, with budget B, evaluates ``slerp(model_1, model_2, t)`` (one global angle, t the weight of the
second model) for ``t = linspace(0, 1, B)`` in order, ``batch_size`` weights per ask (default 100,
so asks stay cheap). ``recommend()`` is the best evaluated genome. No randomness is used.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from evobench.baseline import Baseline, BaselineConfig, CallOrderError
from evobench.evaluation import Evaluation
from evobench.merge.slerp import slerp

from .m2n2 import PAPER


class BruteForceSlerp(Baseline):
    """Grid of SLERP weights between the two starting models."""

    name = "brute-force-slerp"
    spaces = ("params",)
    needs = ("two-starting-models",)
    paper = PAPER

    class Config(BaselineConfig):
        batch_size: int = Field(100, ge=1, description="SLERP weights proposed per ask")

    def _setup(self) -> None:
        self.grid = np.linspace(0.0, 1.0, self.budget)
        self.ends: np.ndarray | None = None

    def _seed(self, x0: np.ndarray, ev0: Evaluation) -> None:
        if x0.shape[0] != 2:
            raise ValueError(f"{self.name}: needs exactly 2 starting models, got {x0.shape[0]}")
        self.ends = x0.copy()

    def _ask(self) -> np.ndarray:
        if self.ends is None:
            raise CallOrderError(f"{self.name}: seed() with the two starting models must come before ask()")
        if self.n_told >= len(self.grid):
            raise RuntimeError(f"{self.name}: the grid of {len(self.grid)} weights is exhausted")
        ts = self.grid[self.n_told:self.n_told + self.config.batch_size]  # n_told = weights told so far
        a, b = torch.from_numpy(self.ends[0]), torch.from_numpy(self.ends[1])
        return np.stack([slerp(a, b, t=float(t)).numpy() for t in ts])

    def _tell(self, x: np.ndarray, ev: Evaluation) -> None:
        """Nothing to update: the grid is fixed and the base class tracks the best evaluated."""
