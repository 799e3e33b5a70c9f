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
  (0.01 from scratch; 0 = off, as the specialists preset runs it), drawn in the genome's dtype
  (float32 in the "params" space, as M2N2's).
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

Genomes keep the space's dtype (``MergeSpace.dtype``: float32 in "params", float64 in "ps"): the
population, the placeholders and the children are arrays of it, so a population of ``pop_size``
models takes ``pop_size × n × 4`` bytes in "params" (plus pymoo's one child per step).

Hyper-parameters: ``pop_size`` (20), ``mutation_std`` (0.01).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from pymoo.algorithms.soo.nonconvex.ga import GA as PymooGA
from pymoo.core.crossover import Crossover
from pymoo.core.individual import Individual
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.repair import NoRepair, Repair
from pymoo.core.selection import Selection
from pymoo.core.survival import Survival
from pymoo.core.termination import NoTermination
from pymoo.core.variable import get
from pymoo.operators.repair.to_bound import ToBoundOutOfBoundsRepair

from evobench.baseline import Baseline, BaselineConfig
from evobench.draws import choice
from evobench.evaluation import Evaluation
from evobench.merge.slerp import split_slerp, sq_norm
from evobench.noise import add_gaussian_
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
        self.dtype = space.dtype  # of the genomes: operators keep it

    def _evaluate(self, x, out, *args, **kwargs):
        raise RuntimeError("genomes are scored by the evobench runner (ask/tell), not by pymoo")


def objectives(pop: Population) -> np.ndarray:
    """``pop.get("F")[:, 0]`` (the single objective of each member), read straight off the members."""
    return np.array([ind.F[0] for ind in pop])


class RouletteSelection(Selection):
    """Parents drawn independently, with replacement, with probability ∝ value (placeholders: 0)."""

    def _do(self, problem, pop, n_select, n_parents, *args, random_state=None, **kwargs):
        return self.pick(objectives(pop), n_select, n_parents, random_state)

    @staticmethod
    def pick(f: np.ndarray, n_select: int, n_parents: int, random_state: np.random.Generator) -> np.ndarray:
        """Indices ``(n_select, n_parents)`` drawn for members with objectives ``f`` (F = −value)."""
        w = roulette_weights(-f, np.isfinite(f))
        if not w.sum() > 0:
            raise RuntimeError("roulette selection needs at least one non-placeholder member")
        return choice(random_state, (n_select, n_parents), w / w.sum())  # = random_state.choice(len(f), ...)


class SplitSlerpCrossover(Crossover):
    """M2N2's crossover: ``split_slerp(a, b, t=w, split=k)``, k ~ U{0..n−1}, w ~ U(0, 1); 2 → 1."""

    def __init__(self, **kwargs) -> None:
        super().__init__(n_parents=2, n_offsprings=1, prob=1.0, **kwargs)

    def _do(self, problem, X, *args, random_state=None, sq_norms=None, **kwargs):
        """``sq_norms`` (optional, one pair per mating): the parents' ``sq_norm``, already computed."""
        _, n_matings, n_var = X.shape
        out = np.empty((1, n_matings, n_var), dtype=X.dtype)  # the parents' dtype (float32 in "params")
        for m in range(n_matings):
            k = int(random_state.integers(0, n_var))
            w = float(random_state.random())
            a = torch.from_numpy(np.ascontiguousarray(X[0, m]))  # zero-copy
            b = torch.from_numpy(np.ascontiguousarray(X[1, m]))
            split_slerp(a, b, t=w, split=k, out=torch.from_numpy(out[0, m]),  # t = weight of b (2nd parent)
                        sq_norms=None if sq_norms is None else sq_norms[m])
        return out


class GaussianMutation(Mutation):
    """Adds N(0, std²) to every gene of every child; ``std = 0`` leaves children unchanged. The noise
    is drawn in the children's dtype by :func:`evobench.noise.add_gaussian_` (as M2N2), seeded by one
    draw of pymoo's ``random_state``."""

    def __init__(self, std: float = 0.01, **kwargs) -> None:
        super().__init__(prob=1.0, **kwargs)
        self.std = float(std)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        if self.std == 0.0:
            return X
        return add_gaussian_(np.array(X, order="C"), self.std, random_state)


class SteadyStateSurvival(Survival):
    """Keep the best ``n_survive`` by F; on ties later individuals (the child) come first, so a child
    equal to the worst member replaces it, as the reference's ``argmin`` over (archive, child) does."""

    def __init__(self) -> None:
        super().__init__(filter_infeasible=False)

    def _do(self, problem, pop, n_survive=None, **kwargs):
        f = objectives(pop)
        order = len(f) - 1 - np.argsort(f[::-1], kind="stable")
        return pop[order[:n_survive]]


def breed(problem: Problem, parents: np.ndarray, crossover: Crossover, mutation: Mutation, repair: Repair,
          random_state: np.random.Generator, sq_norms: tuple[float, float] | None = None) -> np.ndarray:
    """One child ``(1, n_var)`` of ``parents`` ``(2, n_var)``: pymoo's mating (``Crossover.do``,
    ``Mutation.do``, repair) for operators applied with probability 1, on numpy arrays.

    The operators' own ``_do`` make the child, and the random draws are pymoo's, in its order: the
    crossover's per-mating coin, the crossover, the mutation, the mutation's per-child coin (both
    coins always pass at probability 1 but are drawn all the same). ``sq_norms``: the parents'
    ``sq_norm``, when known (:class:`SplitSlerpCrossover`).
    """
    if not (get(crossover.prob) == 1.0 and get(mutation.prob) == 1.0):
        raise ValueError("breed() applies the crossover and the mutation with probability 1")
    random_state.random(1)  # Crossover.do: which matings cross
    extra = {} if sq_norms is None else {"sq_norms": [sq_norms]}
    child = crossover._do(problem, parents[:, None, :], random_state=random_state, **extra)[:, 0]
    child = mutation._do(problem, child, random_state=random_state)
    random_state.random(size=1)  # Mutation.do: which children mutate
    return repair._do(problem, child)


def member_sq_norm(ind: Individual) -> float:
    """``sq_norm`` of a member's genome, kept with the member (its genome never changes)."""
    sq = ind.data.get("sq_norm")
    if sq is None:
        sq = ind.data["sq_norm"] = sq_norm(torch.from_numpy(np.ascontiguousarray(ind.X)))
    return sq


class SteadyStateGA(PymooGA):
    """pymoo's GA, one child per step: its mating runs on numpy arrays (:func:`breed`: the same
    operators and random draws as pymoo's ``Mating``, without a population per operator), and the
    optimum update is cheap: survival sorts best first, so the optimum is ``pop[:1]`` (pymoo's
    ``filter_optimum`` recomputes feasibility of every member each step)."""

    def _infill(self) -> Population:
        rs, mating = self.random_state, self.mating
        pair = mating.selection.pick(objectives(self.pop), 1, 2, rs)[0]
        parents = [self.pop[i] for i in pair]
        child = breed(self.problem, np.stack([p.X for p in parents]), mating.crossover, mating.mutation,
                      self.repair, rs, sq_norms=(member_sq_norm(parents[0]), member_sq_norm(parents[1])))
        return Population.create(Individual(X=child[0]))

    def _set_optimum(self) -> None:
        self.opt = self.pop[:1]


def placeholders(n: int, dim: int, dtype=np.float64) -> Population:
    """``n`` empty archive slots: zero genomes of ``dtype`` with F = +inf (value −inf)."""
    pop = Population.new("X", np.zeros((n, dim), dtype=dtype))
    pop.set("F", np.full((n, 1), np.inf))
    return pop


def scored(x: np.ndarray, ev: Evaluation, **data) -> Population | None:
    """The finite candidates of a told batch as an evaluated pymoo population (None if all failed):
    what ``Population.new("X", x[ok])`` and ``set("F", -value[ok][:, None])`` give (each its own copies)."""
    ok = np.flatnonzero(ev.ok)
    if ok.size == 0:
        return None
    x = np.asarray(x)  # the space's dtype, as told
    return Population.create(*(Individual(X=x[i].copy(), F=np.array([-ev.value[i]]),
                                          **{key: val[i].copy() for key, val in data.items()}) for i in ok))


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
            sampling=placeholders(cfg.pop_size, self.space.dim, self.space.dtype),
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
