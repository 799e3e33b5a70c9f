"""CMA-ES over a merge recipe (parameter space, PS) or over raw parameters, and the shared pycma driver.

Papers:
    Akiba et al., "Evolutionary Optimization of Model Merging Recipes" (2024): PS search with CMA-ES
    over DARE-TIES knobs in [0,1] — x0 = 0.5 (the box centre), sigma0 = 1/6 of the range, population
    4 + floor(3 ln n) (pycma's default).
    Abrantes et al., "Competition and Attraction Improve Model Fusion" (M2N2, 2025): the CMA-ES
    baseline of the digits experiment over all 19,210 MLP parameters — x0 = one random N(0, 0.01^2)
    network, sigma0 = 0.01, population 20, fitness = -accuracy, reported = best solution evaluated.

Hyper-parameters (``CMAConfig``):
    sigma0 (None): initial step size; None = 1/6 on recipe spaces (unit box), 0.01 on ``params``.
    popsize (None): population per generation; None = pycma's 4 + floor(3 ln n) on recipe spaces,
        20 on ``params``.
    diagonal ("auto"): separable CMA-ES (``CMA_diagonal=True``); "auto" = diagonal when dim > 1000.
    restarts (0): IPOP-CMA-ES restarts (Auger & Hansen 2005), off by default because the papers ran
        plain CMA-ES: when pycma's own stopping rules fire or the generation-best has not improved
        for ``stall_generations`` (30) generations, a new strategy starts from a fresh draw of the
        space's prior with twice the population. Useful for long budgets on low-dimensional recipe
        spaces, where a plain run settles on a plateau and spends the rest of its budget there.
        The reference ran full covariance, which costs ~10 s per generation at 19,210 dimensions;
        the diagonal variant is the practical choice there (the only documented departure).

Operator choices:
    - pycma is driven directly (``CMAEvolutionStrategy.ask/tell``, as pymoo's ``SimpleCMAES`` does)
      rather than through pymoo's ``CMAES``, whose first ask returns extra sampling points that would
      be evaluated outside the population schedule, and which needs a pymoo ``Problem``.
    - Bounds are pycma's ``bounds`` option (its default boundary transformation), so every asked
      genome is inside the box; asked values are clipped anyway against rounding.
    - pycma minimises: it is told -fitness. Failed candidates (NaN) are left out of the tell
      (pycma accepts a partial population); when fewer than pycma's minimum (mu, at least 3) are
      finite the generation is dropped and resampled from the same distribution.
    - pycma's ``randn`` option is a numpy Generator seeded with an int drawn from ``self.rng`` (and
      its ``seed`` option is NaN so it never touches numpy's global RNG): same seed, same run, and
      ``state_dict`` captures the random state with the strategy.
    - Cost: pycma's own work at 19,210 diagonal dimensions is mostly sampling 384k normals per
      generation of 20 and hashing solutions for its archive of sent solutions, which the driver
      makes compute each solution's key once (:class:`_SentSolutions`).
"""

from __future__ import annotations

import warnings
from typing import Literal

import cma
import numpy as np
from cma.evolution_strategy import _CMASolutionDict_functional
from pydantic import Field

from evobench.baseline import Baseline, BaselineConfig
from evobench.evaluation import Evaluation

_PARTIAL_TELL = "The number of solutions passed to `tell`"


def use_diagonal(diagonal: str | bool, dim: int) -> bool:
    """Resolve the ``diagonal`` option: "auto" means separable CMA-ES above 1000 dimensions."""
    return dim > 1000 if diagonal == "auto" else bool(diagonal)


class _Normal:
    """pycma's ``randn`` option backed by a numpy Generator (picklable, copied with the strategy)."""

    def __init__(self, seed: int) -> None:
        self.gen = np.random.default_rng(seed)

    def __call__(self, *shape: int) -> np.ndarray:
        return self.gen.standard_normal(shape)


class _SentSolutions(_CMASolutionDict_functional):
    """pycma's archive of the solutions sent by ``ask`` (``es.sent_solutions``), its genotypes keyed
    by the hash of each solution's bytes, with each array's key remembered for its generation.

    pycma looks every solution up about five times between ``ask`` and ``tell``, hashing its bytes
    each time: at 19,210 dimensions that was a third of its cost per evaluation. The keys are pycma's
    own, computed once per array object; the archive and so the run are the same, because an asked
    array is never changed in place (the driver hands out copies and tells pycma its own arrays, and
    pycma rounds nothing without integer variables).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._keys: dict[int, tuple[np.ndarray, int]] = {}  # id(array) -> (array, key)

    def key(self, x):
        if not isinstance(x, np.ndarray):
            return super().key(x)
        known = self._keys.get(id(x))
        if known is not None and known[0] is x:
            return known[1]
        k = super().key(x)
        self._keys[id(x)] = (x, k)
        return k

    def insert(self, key, geno=None, iteration=None, *args, **kwargs):
        if iteration is not None and iteration > self.last_iteration:
            self._keys.clear()  # a new generation: the last one's arrays are done with
        return super().insert(key, geno, iteration, *args, **kwargs)


class CMADriver:
    """Ask/tell on one ``cma.CMAEvolutionStrategy`` over a vector; maximises, NaN = failed.

    Shared by ``cmaes-ps``, ``cmaes-dfs`` and the two phases of ``ps-dfs`` (which drive it on a
    sub-vector of the genome).
    """

    def __init__(self, x0: np.ndarray, sigma0: float, seed: int, popsize: int | None = None,
                 bounds: tuple[np.ndarray, np.ndarray] | None = None, diagonal: bool = False) -> None:
        opts = {"seed": np.nan, "randn": _Normal(seed), "verbose": -9, "verb_disp": 0, "verb_log": 0,
                "CMA_diagonal": bool(diagonal)}
        if popsize is not None:
            opts["popsize"] = int(popsize)
        self.bounds = None
        if bounds is not None:
            self.bounds = (np.asarray(bounds[0], dtype=float), np.asarray(bounds[1], dtype=float))
            opts["bounds"] = [self.bounds[0].copy(), self.bounds[1].copy()]
        self.es = cma.CMAEvolutionStrategy(np.asarray(x0, dtype=float).copy(), float(sigma0), opts)
        self.es.sent_solutions = _SentSolutions()  # still empty: nothing is sent before the first ask
        self._asked: list[np.ndarray] | None = None
        self.n_updates = 0

    @property
    def popsize(self) -> int:
        return int(self.es.popsize)

    @property
    def min_tell(self) -> int:
        """Fewest finite members pycma accepts in a tell (mu, and at least 3)."""
        return max(int(self.es.sp.weights.mu), 3)

    def ask(self) -> np.ndarray:
        """One generation ``(popsize, n)``."""
        self._asked = self.es.ask()
        x = np.array(self._asked, dtype=float)
        return np.clip(x, *self.bounds) if self.bounds is not None else x

    def tell(self, value: np.ndarray) -> bool:
        """Update on the last generation's fitness (maximised); returns whether pycma was updated."""
        asked, self._asked = self._asked, None
        value = np.asarray(value, dtype=float)
        if asked is None or len(value) != len(asked):
            raise ValueError("CMADriver.tell needs one value per member of the last asked generation")
        ok = np.flatnonzero(np.isfinite(value))
        if ok.size < self.min_tell:
            return False  # too few finite members: drop the generation, the next ask resamples
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_PARTIAL_TELL)
            self.es.tell([asked[i] for i in ok], (-value[ok]).tolist())
        self.n_updates += 1
        return True


class CMAConfig(BaselineConfig):
    sigma0: float | None = Field(None, gt=0)
    popsize: int | None = Field(None, ge=4)
    diagonal: Literal["auto"] | bool = "auto"
    restarts: int = Field(0, ge=0, description="IPOP restarts when pycma stops or the search stalls "
                                                "(0 = plain CMA-ES, as the papers ran it)")
    stall_generations: int = Field(30, ge=1, description="generations without a better generation-best "
                                                          "that count as a stall (with restarts > 0)")


class CMAESBase(Baseline):
    """CMA-ES over the whole genome; subclasses set ``name``, ``spaces`` and the ``Config`` defaults.

    x0 is ``space.initial`` on recipe spaces (the PS box centre, model A's own DFS path: the paper's
    starting points, whatever starting models were scored) and, on ``params``, the first starting
    model handed to ``seed`` (else a draw of ``space.sample``). The strategy is built at the first ask.
    """

    Config = CMAConfig

    def _setup(self) -> None:
        self._cma_seed = int(self.rng.integers(2**31 - 1))
        self._x0: np.ndarray | None = None
        self.cma: CMADriver | None = None
        self.n_restarts = 0
        self._gen_best, self._stalled = -np.inf, 0

    def _seed(self, x0: np.ndarray, ev0: Evaluation) -> None:
        if not self.space.bounded and len(x0):  # raw parameters: x0 = a starting network (the reference)
            self._x0 = x0[0].copy()

    def _ask(self) -> np.ndarray:
        if self.cma is None:
            self.cma = self._make_driver()
        return self.cma.ask()

    def _tell(self, x: np.ndarray, ev: Evaluation) -> None:
        self.cma.tell(ev.value)
        if self.n_restarts < self.config.restarts and self._should_restart(ev):
            # IPOP: a fresh strategy from a new start point with twice the population
            self.n_restarts += 1
            self._cma_seed = int(self.rng.integers(2**31 - 1))
            self.cma = self._make_driver(restart_popsize=2 * self.cma.popsize)

    def _should_restart(self, ev: Evaluation) -> bool:
        best = float(np.max(ev.value[ev.ok])) if ev.ok.any() else -np.inf
        if best > self._gen_best:
            self._gen_best, self._stalled = best, 0
        else:
            self._stalled += 1
        if self.cma.es.stop() or self._stalled >= self.config.stall_generations:
            self._gen_best, self._stalled = -np.inf, 0
            return True
        return False

    def _make_driver(self, restart_popsize: int | None = None) -> CMADriver:
        sp, cfg = self.space, self.config
        if sp.bounded:
            sigma0, popsize = 1.0 / 6.0, None
            x0 = sp.initial(self.rng)[0]  # the box centre (PS) or model A's own path (DFS), as the paper
        else:
            sigma0, popsize = 0.01, 20
            x0 = self._x0 if self._x0 is not None else sp.sample(self.rng, 1)[0]
        if restart_popsize is not None:  # a restart starts from a fresh draw of the space's prior
            x0, popsize = sp.sample(self.rng, 1)[0], restart_popsize
        elif cfg.popsize is not None:
            popsize = cfg.popsize
        return CMADriver(
            x0, cfg.sigma0 if cfg.sigma0 is not None else sigma0, self._cma_seed, popsize=popsize,
            bounds=(sp.lower, sp.upper) if sp.bounded else None,
            diagonal=use_diagonal(cfg.diagonal, sp.dim))


class CMAESPS(CMAESBase):
    """CMA-ES over PS recipe knobs (EvoLLM-JP) or, from scratch, over raw parameters (M2N2 baseline)."""

    name = "cmaes-ps"
    spaces = ("ps", "params")
    paper = ("Akiba et al. 2024, Evolutionary Optimization of Model Merging Recipes (PS); "
             "Abrantes et al. 2025, Competition and Attraction Improve Model Fusion (CMA-ES baseline)")
