"""PS+DFS: the staged merge of EvoLLM-JP — parameter-space search first, then the data-flow path.

Paper: Akiba et al., "Evolutionary Optimization of Model Merging Recipes" (2024), PS+DFS: the
PS-merged model A' is built first and put back into the collection, then DFS evolves the layer
path over the enlarged collection [A', A, B] (the ``ps+dfs`` space's default). The space's genome
is ``[PS knobs | DFS genes]`` (``space.segments["ps"]``, ``["dfs"]``) and the space decodes both;
its ``initial(rng)[0]`` has the PS centre and a DFS part that reproduces A' alone.

Staging (the paper's two stages, here within one budget):
    phase 1: CMA-ES over the PS segment only, the DFS segment fixed at the starting genome's values,
        until ``ps_fraction`` of the budget has been told (it ends at the first generation boundary
        at or after that count);
    phase 2: CMA-ES over the DFS segment only, the PS segment fixed at the best genome evaluated so
        far (the best PS recipe of phase 1, or the start when nothing beat it).
Phases switch only inside ``ask``, i.e. between a tell and the next ask. Each phase uses the shared
:class:`~evobench.baselines.cmaes_ps.CMADriver` on its sub-vector.

Hyper-parameters:
    ps_fraction (0.5): share of the budget given to phase 1.
    sigma0 (1/6): initial step size of both phases (unit box).
    ps_popsize (None): phase-1 population; None = pycma's 4 + floor(3 ln n_ps).
    dfs_popsize (128): phase-2 population (the paper's DFS population).
    diagonal ("auto"): separable CMA-ES for a segment of more than 1000 genes.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from evobench.baseline import Baseline, BaselineConfig
from evobench.evaluation import Evaluation
from evobench.spaces.base import SpaceError

from .cmaes_ps import CMADriver, use_diagonal


class PSDFSConfig(BaselineConfig):
    ps_fraction: float = Field(0.5, ge=0.0, le=1.0)
    sigma0: float = Field(1.0 / 6.0, gt=0)
    ps_popsize: int | None = Field(None, ge=4)
    dfs_popsize: int | None = Field(128, ge=4)
    diagonal: Literal["auto"] | bool = "auto"


class PSDFS(Baseline):
    """Two-phase CMA-ES: the PS segment, then the DFS segment with the best PS recipe fixed."""

    name = "ps-dfs"
    spaces = ("ps+dfs",)
    paper = "Akiba et al. 2024, Evolutionary Optimization of Model Merging Recipes (PS+DFS)"
    Config = PSDFSConfig

    def _setup(self) -> None:
        missing = {"ps", "dfs"} - set(self.space.segments)
        if missing:
            raise SpaceError(f"ps-dfs needs a space with 'ps' and 'dfs' segments; missing: {sorted(missing)}")
        self._ps_budget = int(round(self.config.ps_fraction * self.budget))
        self._cma_seeds = [int(s) for s in self.rng.integers(2**31 - 1, size=2)]
        self._base: np.ndarray | None = None
        self.phase = 0
        self.cma: CMADriver | None = None

    def _ask(self) -> np.ndarray:
        if self._base is None:
            self._base = self.space.initial(self.rng)[0].copy()
        if self.phase == 0:
            self._start(1 if self._ps_budget > 0 else 2)
        elif self.phase == 1 and self.n_told >= self._ps_budget:
            self._start(2)
        z = self.cma.ask()
        x = np.repeat(self._base[None, :], z.shape[0], axis=0)
        x[:, self._segment] = z
        return x

    def _tell(self, x: np.ndarray, ev: Evaluation) -> None:
        self.cma.tell(ev.value)

    @property
    def _segment(self) -> slice:
        return self.space.segments["ps" if self.phase == 1 else "dfs"]

    def _start(self, phase: int) -> None:
        if phase == 2 and self.best_x is not None:
            ps = self.space.segments["ps"]
            self._base[ps] = self.best_x[ps]
        self.phase = phase
        seg, cfg = self._segment, self.config
        x0 = self._base[seg]
        self.cma = CMADriver(
            x0, cfg.sigma0, self._cma_seeds[phase - 1],
            popsize=cfg.ps_popsize if phase == 1 else cfg.dfs_popsize,
            bounds=(self.space.lower[seg], self.space.upper[seg]),
            diagonal=use_diagonal(cfg.diagonal, x0.shape[0]))
