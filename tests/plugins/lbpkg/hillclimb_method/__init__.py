"""A third-party merge-search method as a pip-installed package would ship it (test-only).

It registers in the ``evobench.baselines`` entry-point group (see the ``.dist-info`` beside it, which
makes this folder look like an installed distribution once it is on ``sys.path``) and uses only
evobench's public ``Baseline`` contract: a (1 + batch) hill climber with a shrinking step.
"""

from __future__ import annotations

import numpy as np

from evobench.baseline import Baseline, BaselineConfig


class HillClimbConfig(BaselineConfig):
    batch: int = 4
    step: float = 0.2
    shrink: float = 0.9


class HillClimb(Baseline):
    name = "hillclimb"
    spaces = ("ps", "params")
    Config = HillClimbConfig

    def _setup(self) -> None:
        self.centre = None
        self.step = self.config.step

    def _seed(self, x0, ev0) -> None:
        ok = ev0.ok
        if ok.any():
            self.centre = x0[int(np.argmax(np.where(ok, ev0.value, -np.inf)))].copy()

    def _ask(self) -> np.ndarray:
        if self.centre is None:
            return self.space.sample(self.rng, self.config.batch)
        scale = self.step if self.space.bounded else self.step * 0.05
        x = self.centre + self.rng.normal(0.0, scale, size=(self.config.batch, self.space.dim))
        return self.space.clip(x.astype(self.space.dtype))

    def _tell(self, x, ev) -> None:
        if ev.ok.any():
            i = int(np.argmax(np.where(ev.ok, ev.value, -np.inf)))
            if self.centre is None or ev.value[i] >= self.best_f:
                self.centre = x[i].copy()
        self.step *= self.config.shrink
