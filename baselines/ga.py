"""GA: the genetic-algorithm baseline of the M2N2 digits experiment, on pymoo's ``GA``.

Abrantes, Lange, Sakana AI, "Competition and Attraction Improve Model Fusion" (GECCO 2025): the GA
baseline is M2N2's loop with α = 0 (plain accuracy, no fitness sharing) and no matchmaker. It is
driven through pymoo's ask/tell interface (``pymoo.algorithms.soo.nonconvex.ga.GA``; pymoo minimises,
so F = −value) with the reference's operators:

- **steady state**: ``n_offsprings=1`` child per ask, ``eliminate_duplicates=False``; survival keeps
  the best ``pop_size`` of population + child, i.e. the child replaces a worst member unless it is
  worse than all of them. A child that *ties* the worst replaces it, as the reference's ``argmin``
  over (archive, child) does (pymoo's ``FitnessSurvival`` would keep the old member on ties, which
  stops neutral drift on discrete accuracies; hence :class:`SteadyStateSurvival`).
- **selection**: fitness-proportional (roulette), both parents drawn independently with replacement
  (:class:`RouletteSelection`). Weights are the values; if some value is negative they are shifted
  by the minimum (windowing) so weights stay ≥ 0; all-zero weights fall back to uniform.
- **crossover**: split-point SLERP (:class:`SplitSlerpCrossover`): split k ~ U{0..n−1}, w ~ U(0, 1),
  ``evobench.merge.slerp.split_slerp(a, b, t=w, split=k)``, 2 parents → 1 child, always applied.
- **mutation**: N(0, σ²) added to every gene (:class:`GaussianMutation`), σ = ``mutation_std``
  (0.01 from scratch; 0 = off, as the specialists preset runs it).
- **bounded spaces** ("ps" knobs in [0, 1]): SLERP and noise can leave the box, so children are
  clipped into it by pymoo's ``ToBoundOutOfBoundsRepair``. The "params" space is unbounded (the
  pymoo ``Problem`` gets ``xl=None, xu=None``) and children are left as they are.

Initial population, as the reference: the archive starts as ``pop_size`` empty slots (zero
parameters) and the starting models are inserted like children. The empty slots are placeholder
members with F = +inf (value −inf; a real member's F is always finite), so any real candidate
replaces them first whatever the sign of the task's value (for accuracies, where the reference's
empty slots have fitness 0, a child replaces them in the same cases), and their selection weight is
0, so they are never parents.
Failed candidates (NaN) are never told to pymoo. Until a real member exists (no seed, or every
starting model failed) a child is a draw from the space's prior. All randomness comes from
``self.rng`` (it seeds pymoo's ``random_state``, which the operators use).

Hyper-parameters: ``pop_size`` (20), ``mutation_std`` (0.01).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from pymoo.algorithms.soo.nonconvex.ga import GA as PymooGA
from pymoo.core.crossover import Crossover
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.repair import NoRepair
from pymoo.core.selection import Selection
from pymoo.core.survival import Survival
from pymoo.core.termination import NoTermination
from pymoo.operators.repair.to_bound import ToBoundOutOfBoundsRepair

from evobench.baseline import Baseline, BaselineConfig
from evobench.evaluation import Evaluation
from evobench.merge.slerp import split_slerp
from evobench.spaces.base import MergeSpace


def roulette_weights(values: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Fitness-proportional weights: ``values`` where ``real``, 0 elsewhere (shifted by the minimum
    when some real value is negative; uniform over the real ones when all weights are 0)."""
    w = np.zeros(values.shape[0])
    if not real.any():
        return w
    v = values[real]
    w[real] = v - min(0.0, float(v.min()))
    if not w.sum() > 0:
        w[real] = 1.0
    return w


class GenomeProblem(Problem):
    """The merge space as a pymoo problem. Never evaluated by pymoo: the evobench runner scores."""

    def __init__(self, space: MergeSpace) -> None:
        xl, xu = (space.lower, space.upper) if space.bounded else (None, None)
        super().__init__(n_var=space.dim, n_obj=1, xl=xl, xu=xu)

    def _evaluate(self, x, out, *args, **kwargs):
        raise RuntimeError("genomes are scored by the evobench runner (ask/tell), not by pymoo")


class RouletteSelection(Selection):
    """Parents drawn independently, with replacement, with probability ∝ value (placeholders: 0)."""

    def _do(self, problem, pop, n_select, n_parents, *args, random_state=None, **kwargs):
        f = pop.get("F")[:, 0]
        w = roulette_weights(-f, np.isfinite(f))
        if not w.sum() > 0:
            raise RuntimeError("roulette selection needs at least one non-placeholder member")
        return random_state.choice(len(pop), size=(n_select, n_parents), p=w / w.sum())


class SplitSlerpCrossover(Crossover):
    """M2N2's crossover: ``split_slerp(a, b, t=w, split=k)``, k ~ U{0..n−1}, w ~ U(0, 1); 2 → 1."""

    def __init__(self, **kwargs) -> None:
        super().__init__(n_parents=2, n_offsprings=1, prob=1.0, **kwargs)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        _, n_matings, n_var = X.shape
        out = np.empty((1, n_matings, n_var))
        for m in range(n_matings):
            k = int(random_state.integers(0, n_var))
            w = float(random_state.random())
            a = torch.from_numpy(np.ascontiguousarray(X[0, m], dtype=np.float64))  # zero-copy
            b = torch.from_numpy(np.ascontiguousarray(X[1, m], dtype=np.float64))
            out[0, m] = split_slerp(a, b, t=w, split=k).numpy()  # t = weight of b (the 2nd parent)
        return out


class GaussianMutation(Mutation):
    """Adds N(0, std²) to every gene of every child; ``std = 0`` leaves children unchanged."""

    def __init__(self, std: float = 0.01, **kwargs) -> None:
        super().__init__(prob=1.0, **kwargs)
        self.std = float(std)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        if self.std == 0.0:
            return X
        return X + random_state.normal(0.0, self.std, size=X.shape)


class SteadyStateSurvival(Survival):
    """Keep the best ``n_survive`` by F; on ties later individuals (the child) come first, so a child
    equal to the worst member replaces it, as the reference's ``argmin`` over (archive, child) does."""

    def __init__(self) -> None:
        super().__init__(filter_infeasible=False)

    def _do(self, problem, pop, n_survive=None, **kwargs):
        f = pop.get("F")[:, 0]
        order = len(f) - 1 - np.argsort(f[::-1], kind="stable")
        return pop[order[:n_survive]]


class SteadyStateGA(PymooGA):
    """pymoo's GA with a cheap optimum update: survival sorts best first, so the optimum is
    ``pop[:1]`` (pymoo's ``filter_optimum`` recomputes feasibility of every member each step)."""

    def _set_optimum(self) -> None:
        self.opt = self.pop[:1]


def placeholders(n: int, dim: int) -> Population:
    """``n`` empty archive slots: zero genomes with F = +inf (value −inf)."""
    pop = Population.new("X", np.zeros((n, dim)))
    pop.set("F", np.full((n, 1), np.inf))
    return pop


def scored(x: np.ndarray, ev: Evaluation, **data) -> Population | None:
    """The finite candidates of a told batch as an evaluated pymoo population (None if all failed)."""
    ok = ev.ok
    if not ok.any():
        return None
    pop = Population.new("X", np.asarray(x, dtype=float)[ok])
    pop.set("F", -ev.value[ok][:, None])
    for key, val in data.items():
        pop.set(key, val[ok])
    return pop


class GA(Baseline):
    """Steady-state GA with roulette selection, split-point SLERP crossover and Gaussian mutation."""

    name = "ga"
    spaces = ("params", "ps")
    paper = "Abrantes et al., Competition and Attraction Improve Model Fusion (GECCO 2025), GA baseline"

    class Config(BaselineConfig):
        pop_size: int = Field(20, ge=1, description="archive (population) size")
        mutation_std: float = Field(0.01, ge=0.0, description="std of the Gaussian mutation (0 = off)")

    def _setup(self) -> None:
        cfg = self.config
        self.problem = GenomeProblem(self.space)
        self.algorithm = SteadyStateGA(
            pop_size=cfg.pop_size, n_offsprings=1, eliminate_duplicates=False,
            sampling=placeholders(cfg.pop_size, self.space.dim),
            selection=RouletteSelection(), crossover=SplitSlerpCrossover(),
            mutation=GaussianMutation(cfg.mutation_std), survival=SteadyStateSurvival(),
            repair=ToBoundOutOfBoundsRepair() if self.space.bounded else NoRepair(),
        )
        self.algorithm.setup(self.problem, seed=int(self.rng.integers(2**63)), termination=NoTermination())
        # pymoo's first ask returns the initial population (already "evaluated": the empty slots)
        self.algorithm.tell(infills=self.algorithm.ask())

    def _seed(self, x0: np.ndarray, ev0: Evaluation) -> None:
        self._insert(x0, ev0)

    def _ask(self) -> np.ndarray:
        if not np.isfinite(self.algorithm.pop[0].F[0]):  # survival sorts best first
            return self.space.sample(self.rng, 1)
        return self.algorithm.ask().get("X")

    def _tell(self, x: np.ndarray, ev: Evaluation) -> None:
        self._insert(x, ev)

    def _insert(self, x: np.ndarray, ev: Evaluation) -> None:
        pop = scored(x, ev)
        if pop is not None:  # nothing to tell when every candidate failed; the loop goes on
            self.algorithm.tell(infills=pop)

    def population(self) -> tuple[np.ndarray, np.ndarray]:
        """The real (non-placeholder) members: genomes ``(m, dim)`` and values ``(m,)``."""
        x, f = self.algorithm.pop.get("X", "F")
        real = np.isfinite(f[:, 0])
        return x[real], -f[real, 0]

    def recommend(self) -> np.ndarray | None:
        """The best member of the population (the reference reports the archive's best)."""
        x, v = self.population()
        return super().recommend() if len(v) == 0 else x[int(np.argmax(v))].copy()
