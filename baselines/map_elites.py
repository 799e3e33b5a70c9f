"""MAP-Elites: a grid of elites over the task's behaviour descriptors, as a pymoo ``Algorithm``.

Mouret & Clune, "Illuminating search spaces by mapping elites" (arXiv:1504.04909, 2015), run as the
MAP-Elites baseline of Abrantes et al., "Competition and Attraction Improve Model Fusion" (GECCO
2025). pymoo has no MAP-Elites, so :class:`MapElitesAlgorithm` is a small pymoo ``Algorithm`` (ask =
one child, tell = insert) that :class:`MapElites` drives through pymoo's ask/tell interface.

Reference behaviour (the M2N2 digits experiment):

- **grid**: ``cells_per_dim`` (10) cells per descriptor; the descriptors are the Evaluation's
  ``descriptors``, already normalised to [0, 1] by the runner (digits: accuracy on odd digits,
  accuracy on even digits of the search split). Cell index per dimension = ⌊c·d⌋, with d = 1.0
  clamped into the last cell (and d clipped into [0, 1]).
- **quality** = ``ev.value``; a candidate takes its cell when the cell is empty or it is strictly
  better than the elite there. The starting models are inserted like children.
- **parents**: two elites drawn ∝ quality among occupied cells, as the reference's
  ``sample_parents``: *with* replacement while the occupied cells' qualities sum to less than 2
  (``replace = sum(quality) < 2``), without replacement from then on (with qualities that are
  accuracies, a sum of at least 2 implies two elites with a positive weight). Weights as the GA's
  roulette: the qualities, shifted by the minimum when one is negative, uniform when all are 0;
  where fewer than two weights are positive (possible only for qualities outside [0, 1]) the draw
  is with replacement, as a draw without replacement is impossible there.
- **child** = split-point SLERP crossover + Gaussian mutation (``mutation_std``, 0.01 from scratch,
  0 for the specialists preset): the GA's pymoo operators (:mod:`evobench.baselines.ga`); children in
  a bounded ("ps") space are clipped into the box.
- ``recommend()`` = the highest-quality elite (ties: the lowest cell index, as the reference's
  ``where(q == max)[0]``).

The archive is kept as arrays with one row per *occupied* cell (a dict maps cell → row); rows are
preallocated (``min(cells, 128)``) and doubled when full, so a step costs O(occupied cells), never
O(evaluations). Failed candidates (NaN) are not inserted; a task without descriptors is an error.

Elite genomes keep the space's dtype (float32 in the "params" space: 4 bytes per parameter and
elite; at most ``cells_per_dim ** k`` elites).

Hyper-parameters: ``cells_per_dim`` (10), ``mutation_std`` (0.01).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from pymoo.core.algorithm import Algorithm
from pymoo.core.individual import Individual
from pymoo.core.population import Population
from pymoo.core.repair import NoRepair
from pymoo.core.termination import NoTermination
from pymoo.operators.repair.to_bound import ToBoundOutOfBoundsRepair

from evobench.baseline import Baseline, BaselineConfig
from evobench.draws import choice
from evobench.evaluation import Evaluation
from evobench.merge.slerp import sq_norm

from .ga import GaussianMutation, GenomeProblem, SplitSlerpCrossover, breed, roulette_weights, scored

NEEDS_DESCRIPTORS = "map-elites needs a task with behaviour descriptors"


def cell_index(d: np.ndarray, cells_per_dim: int) -> int:
    """Flat (row-major) grid cell of descriptors ``d`` in [0, 1]^k: ⌊c·d⌋ per dimension, 1.0 → c − 1."""
    idx = np.minimum(np.floor(np.clip(d, 0.0, 1.0) * cells_per_dim).astype(np.int64), cells_per_dim - 1)
    return int(np.ravel_multi_index(tuple(idx), (cells_per_dim,) * idx.shape[0]))


class MapElitesAlgorithm(Algorithm):
    """MAP-Elites on a pymoo problem. Told individuals carry F (= −quality) and ``desc`` (descriptors)."""

    def __init__(self, cells_per_dim: int = 10, crossover=None, mutation=None, repair=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cells_per_dim = int(cells_per_dim)
        self.crossover = crossover if crossover is not None else SplitSlerpCrossover()
        self.mutation = mutation if mutation is not None else GaussianMutation(0.01)
        self.repair = repair if repair is not None else NoRepair()

    def _setup(self, problem, **kwargs) -> None:
        # elite genomes / qualities / cells, one row per occupied cell (allocated at the first insert,
        # when the number of descriptors and so of cells is known)
        self.X = np.empty((0, problem.n_var), dtype=getattr(problem, "dtype", np.float64))  # genomes' dtype
        self.quality = np.empty(0)
        self.cells = np.empty(0, dtype=np.int64)
        self.sq = np.empty(0)  # sq_norm of each elite's genome (the SLERP angle's), NaN until needed
        self.row_of: dict[int, int] = {}
        self.n_occupied = 0
        self.best_quality = -np.inf

    def _reserve(self, n_cells: int) -> None:
        """Room for one more row: ``min(cells, 128)`` rows first, then doubling, capped at ``cells``."""
        rows = self.X.shape[0]
        if self.n_occupied < rows:
            return
        grow = min(max(2 * rows, 128), n_cells) - rows
        self.X = np.concatenate([self.X, np.empty((grow, self.X.shape[1]), dtype=self.X.dtype)])
        self.quality = np.concatenate([self.quality, np.empty(grow)])
        self.cells = np.concatenate([self.cells, np.empty(grow, dtype=np.int64)])
        self.sq = np.concatenate([self.sq, np.full(grow, np.nan)])

    # -- archive --------------------------------------------------------------------------------
    def insert(self, x: np.ndarray, quality: float, desc: np.ndarray) -> bool:
        """Place ``x`` in its cell if the cell is empty or ``quality`` beats the elite there."""
        cell = cell_index(desc, self.cells_per_dim)
        row = self.row_of.get(cell)
        if row is None:
            self._reserve(self.cells_per_dim ** len(desc))
            row = self.n_occupied
            self.row_of[cell] = row
            self.cells[row] = cell
            self.n_occupied += 1
        elif not quality > self.quality[row]:
            return False
        self.X[row] = x
        self.quality[row] = quality
        self.sq[row] = np.nan
        if quality > self.best_quality:
            self.best_quality = quality
            self.opt = Population.new("X", x[None].copy(), "F", np.array([[-quality]]))
        return True

    def sample_parents(self, random_state: np.random.Generator) -> np.ndarray:
        """Two rows ∝ quality; with replacement while the qualities sum to less than 2 (the reference)."""
        n = self.n_occupied
        q = self.quality[:n]
        w = roulette_weights(q, np.ones(n, dtype=bool))
        replace = float(q.sum()) < 2.0 or int(np.count_nonzero(w)) < 2
        return choice(random_state, 2, w / w.sum(), replace=replace)  # = random_state.choice(n, ...)

    def sq_norm(self, row: int) -> float:
        if np.isnan(self.sq[row]):
            self.sq[row] = sq_norm(torch.from_numpy(self.X[row]))
        return float(self.sq[row])

    def best_row(self) -> int | None:
        """Row of the highest-quality elite (ties: the lowest cell index)."""
        n = self.n_occupied
        if n == 0:
            return None
        q = self.quality[:n]
        tied = np.flatnonzero(q == q.max())
        return int(tied[np.argmin(self.cells[tied])])

    # -- pymoo hooks ----------------------------------------------------------------------------
    def _initialize_infill(self) -> Population:
        return Population.empty()  # the archive starts empty; starting models are told later

    def _initialize_advance(self, infills=None, **kwargs) -> None:
        self._advance(infills=infills)

    def _infill(self) -> Population | None:
        if self.n_occupied == 0:
            return None
        rs = self.random_state
        rows = self.sample_parents(rs)
        child = breed(self.problem, self.X[rows], self.crossover, self.mutation, self.repair, rs,
                      sq_norms=(self.sq_norm(rows[0]), self.sq_norm(rows[1])))
        return Population.create(Individual(X=child[0]))

    def _advance(self, infills=None, **kwargs) -> None:
        if infills is None or len(infills) == 0:
            return
        X, F, D = infills.get("X", "F", "desc")
        for x, f, d in zip(X, F[:, 0], D, strict=True):
            self.insert(x, -float(f), np.asarray(d, dtype=float))

    def _set_optimum(self) -> None:
        pass  # ``opt`` is updated by ``insert`` when the best quality improves


class MapElites(Baseline):
    """MAP-Elites over the task's behaviour descriptors with split-point SLERP + Gaussian mutation."""

    name = "map-elites"
    spaces = ("params", "ps")
    needs = ("descriptors",)
    paper = ("Mouret & Clune, Illuminating search spaces by mapping elites (2015); as run in Abrantes et al., "
             "Competition and Attraction Improve Model Fusion (GECCO 2025)")

    class Config(BaselineConfig):
        cells_per_dim: int = Field(10, ge=1, description="grid cells per behaviour descriptor")
        mutation_std: float = Field(0.01, ge=0.0, description="std of the Gaussian mutation (0 = off)")

    def _setup(self) -> None:
        cfg = self.config
        self.algorithm = MapElitesAlgorithm(
            cells_per_dim=cfg.cells_per_dim, crossover=SplitSlerpCrossover(),
            mutation=GaussianMutation(cfg.mutation_std),
            repair=ToBoundOutOfBoundsRepair() if self.space.bounded else NoRepair(),
        )
        self.algorithm.setup(GenomeProblem(self.space), seed=int(self.rng.integers(2**63)),
                             termination=NoTermination())
        self.algorithm.tell(infills=self.algorithm.ask())  # pymoo's initial round: an empty archive

    def _seed(self, x0: np.ndarray, ev0: Evaluation) -> None:
        self._insert(x0, ev0)

    def _ask(self) -> np.ndarray:
        if self.algorithm.n_occupied == 0:  # nothing to breed from yet: a draw from the prior
            return self.space.sample(self.rng, 1)
        return self.algorithm.ask().get("X")

    def _tell(self, x: np.ndarray, ev: Evaluation) -> None:
        self._insert(x, ev)

    def _insert(self, x: np.ndarray, ev: Evaluation) -> None:
        ok = ev.ok
        if not ok.any():
            return  # all failed (then the runner may not even pass descriptors)
        if ev.descriptors is None or not np.all(np.isfinite(ev.descriptors[ok])):
            raise ValueError(f"{NEEDS_DESCRIPTORS} (the evaluation has no finite descriptors)")
        self.algorithm.tell(infills=scored(x, ev, desc=ev.descriptors))

    def archive(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The elites: flat cell indices ``(m,)``, genomes ``(m, dim)``, qualities ``(m,)``."""
        a, n = self.algorithm, self.algorithm.n_occupied
        return a.cells[:n].copy(), a.X[:n].copy(), a.quality[:n].copy()

    def recommend(self) -> np.ndarray | None:
        """The highest-quality elite."""
        row = self.algorithm.best_row()
        return super().recommend() if row is None else self.algorithm.X[row].copy()
