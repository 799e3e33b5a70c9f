"""GA and MAP-Elites baselines: operators, survival/archive rules, failures, determinism, smoke runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymoo.core.population import Population

from evobench.baselines.ga import (
    GA,
    GaussianMutation,
    GenomeProblem,
    RouletteSelection,
    SplitSlerpCrossover,
    placeholders,
    roulette_weights,
)
from evobench.baselines.map_elites import MapElites, cell_index
from evobench.evaluation import Evaluation
from evobench.merge.slerp import split_slerp
from evobench.testing import ToySpace, toy_evaluation


def ev(values, desc=None) -> Evaluation:
    return Evaluation(value=np.asarray(values, dtype=float),
                      descriptors=None if desc is None else np.asarray(desc, dtype=float))


def ga_with(values, pop_size=20, dim=4, **cfg) -> tuple[GA, np.ndarray]:
    sp = ToySpace("params", dim)
    b = GA(pop_size=pop_size, **cfg).setup(sp, 1000, 0)
    x0 = np.arange(len(values) * dim, dtype=float).reshape(len(values), dim) + 1.0
    b.seed(x0, ev(values))
    return b, x0


def tell_one(b, value, desc=None) -> np.ndarray:
    x = b.ask()
    b.tell(x, ev([value], None if desc is None else [desc]))
    return x[0]


# ---- GA operators -----------------------------------------------------------------------------------
def test_roulette_weights_rules():
    real = np.array([True, True, False])
    assert np.allclose(roulette_weights(np.array([0.2, 0.6, 9.0]), real), [0.2, 0.6, 0.0])
    assert np.allclose(roulette_weights(np.array([-1.0, 1.0, 9.0]), real), [0.0, 2.0, 0.0])  # shifted
    assert np.allclose(roulette_weights(np.array([0.0, 0.0, 9.0]), real), [1.0, 1.0, 0.0])  # uniform


def test_selection_is_fitness_proportional_and_skips_placeholders():
    values = np.array([0.1, 0.2, 0.3, 0.4])
    pop = Population.merge(Population.new("X", np.zeros((4, 3)), "F", -values[:, None]), placeholders(3, 3))
    idx = RouletteSelection().do(GenomeProblem(ToySpace("params", 3)), pop, 20000, 2, to_pop=False,
                                 random_state=np.random.default_rng(0))
    assert idx.shape == (20000, 2)
    freq = np.bincount(idx.ravel(), minlength=7) / idx.size
    assert np.all(freq[4:] == 0)  # the empty slots are never parents
    assert np.allclose(freq[:4], values / values.sum(), atol=0.01)


def test_placeholders_of_a_seeded_ga_are_never_selected():
    b, _ = ga_with([0.3, 0.5])
    pop = b.algorithm.pop
    assert len(pop) == 20 and np.isfinite(pop.get("F")[:, 0]).sum() == 2
    idx = RouletteSelection().do(b.algorithm.problem, pop, 2000, 2, to_pop=False,
                                 random_state=np.random.default_rng(1))
    assert np.all(np.isfinite(pop.get("F")[idx.ravel(), 0]))


def test_crossover_is_split_slerp():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2, 1, 50))
    child = SplitSlerpCrossover()._do(GenomeProblem(ToySpace("params", 50)), X,
                                      random_state=np.random.default_rng(7))
    r = np.random.default_rng(7)
    k, w = int(r.integers(0, 50)), float(r.random())
    want = split_slerp(torch.from_numpy(X[0, 0]), torch.from_numpy(X[1, 0]), t=w, split=k).numpy()
    assert child.shape == (1, 1, 50)
    assert np.allclose(child[0, 0], want)
    assert not np.allclose(child[0, 0], X[0, 0]) and not np.allclose(child[0, 0], X[1, 0])


def test_identical_parents_without_mutation_give_the_parent():
    b, x0 = ga_with([0.5], mutation_std=0.0)  # one member: both parents are it
    for _ in range(5):
        assert np.allclose(tell_one(b, 0.1), x0[0])


def test_gaussian_mutation_std():
    X = np.zeros((4, 5000))
    problem = GenomeProblem(ToySpace("params", 5000))
    assert np.array_equal(GaussianMutation(0.0)._do(problem, X, random_state=np.random.default_rng(0)), X)
    Y = GaussianMutation(0.5)._do(problem, X, random_state=np.random.default_rng(0))
    assert abs(Y.std() - 0.5) < 0.01 and abs(Y.mean()) < 0.01


# ---- GA survival and failures ---------------------------------------------------------------------------
def test_survival_keeps_the_best_pop_size():
    b, x0 = ga_with([0.5, 0.6, 0.7], pop_size=3)
    x = tell_one(b, 0.55)  # replaces the worst (0.5)
    X, v = b.population()
    assert sorted(v) == [0.55, 0.6, 0.7]
    assert any(np.array_equal(r, x) for r in X) and not any(np.array_equal(r, x0[0]) for r in X)
    x = tell_one(b, 0.1)  # worse than everyone: discarded
    X, v = b.population()
    assert sorted(v) == [0.55, 0.6, 0.7] and not any(np.array_equal(r, x) for r in X)
    x = tell_one(b, 0.55)  # ties the worst: replaces it, as the reference's argmin does
    X, v = b.population()
    assert sorted(v) == [0.55, 0.6, 0.7] and any(np.array_equal(r, x) for r in X)


def test_children_fill_empty_slots_first_whatever_their_sign():
    b, _ = ga_with([0.5, 0.6], pop_size=5)
    for i in range(3):
        tell_one(b, -5.0 - i)
    _, v = b.population()
    assert len(v) == 5 and sorted(v)[:3] == [-7.0, -6.0, -5.0]
    tell_one(b, -100.0)  # the archive is full now: the worst child is discarded
    assert -100.0 not in b.population()[1]


def test_failed_candidates_never_enter_the_population():
    b, x0 = ga_with([np.nan, 0.3], pop_size=4)
    X, v = b.population()
    assert len(v) == 1 and np.array_equal(X[0], x0[1])
    x = b.ask()
    b.tell(x, Evaluation(value=np.array([np.nan]), errors=["boom"]))
    F = b.algorithm.pop.get("F")[:, 0]
    assert not np.isnan(F).any() and len(b.population()[1]) == 1
    assert not any(np.array_equal(r, x[0]) for r in b.algorithm.pop.get("X"))
    tell_one(b, 0.2)  # the loop goes on after a failure
    assert len(b.population()[1]) == 2


def test_all_starting_models_failed_ga_asks_from_the_prior():
    b, _ = ga_with([np.nan, np.nan])
    x = b.ask()
    assert x.shape == (1, 4)
    b.tell(x, ev([0.4]))
    X, v = b.population()
    assert np.array_equal(X[0], x[0]) and v[0] == 0.4


def test_ga_clips_children_into_a_bounded_space():
    sp = ToySpace("ps", 6)
    b = GA(mutation_std=1.0).setup(sp, 200, 0)
    x0 = sp.initial(np.random.default_rng(0))
    b.seed(x0, toy_evaluation(x0))
    xs = []
    for _ in range(50):
        x = b.ask()  # the base class raises if a genome leaves the box
        b.tell(x, toy_evaluation(x))
        xs.append(x)
    xs = np.concatenate(xs)
    assert xs.min() == 0.0 and xs.max() == 1.0  # noise of std 1 was clipped onto the bounds


def test_ga_recommends_the_population_best():
    b, x0 = ga_with([0.2, 0.9, 0.4])
    assert np.array_equal(b.recommend(), x0[1])


# ---- MAP-Elites ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("d, c, want", [
    ([0.0, 0.0], 10, 0), ([1.0, 1.0], 10, 99), ([1.0, 0.0], 10, 90), ([0.05, 0.95], 10, 9),
    ([0.1, 0.0], 10, 10), ([0.999, 0.5], 10, 95), ([0.35], 10, 3), ([0.5, 1.0], 3, 5), ([1.2, -0.1], 10, 90),
])
def test_cell_index(d, c, want):
    assert cell_index(np.array(d), c) == want


def me_with(values, descs, dim=4, **cfg) -> tuple[MapElites, np.ndarray]:
    sp = ToySpace("params", dim)
    b = MapElites(**cfg).setup(sp, 1000, 0)
    x0 = np.arange(len(values) * dim, dtype=float).reshape(len(values), dim) + 1.0
    b.seed(x0, ev(values, descs))
    return b, x0


def test_map_elites_replaces_only_when_empty_or_better():
    b, x0 = me_with([0.5], [[0.15, 0.25]])
    cells, X, q = b.archive()
    assert cells.tolist() == [12] and q.tolist() == [0.5]
    tell_one(b, 0.4, [0.19, 0.21])  # same cell, worse: kept out
    tell_one(b, 0.5, [0.11, 0.29])  # same cell, equal: kept out
    cells, X, q = b.archive()
    assert cells.tolist() == [12] and np.array_equal(X[0], x0[0])
    x = tell_one(b, 0.1, [0.95, 0.05])  # empty cell: taken even though worse
    x2 = tell_one(b, 0.6, [0.1, 0.2])  # same cell as the first, better: replaces it
    cells, X, q = b.archive()
    assert cells.tolist() == [12, 90] and q.tolist() == [0.6, 0.1]
    assert np.array_equal(X[0], x2) and np.array_equal(X[1], x)


def test_map_elites_parents_with_replacement_while_qualities_sum_below_two():
    # the reference: replace = sum(qualities) < 2; here the sum is 1.0
    b, _ = me_with([0.2, 0.3, 0.5], [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    rng = np.random.default_rng(0)
    draws = np.array([b.algorithm.sample_parents(rng) for _ in range(10000)])
    assert draws.min() >= 0 and draws.max() <= 2  # only occupied rows
    p = np.array([0.2, 0.3, 0.5])
    for k in (0, 1):  # each parent independently ∝ quality
        assert np.allclose(np.bincount(draws[:, k], minlength=3) / len(draws), p, atol=0.02)
    same = np.mean(draws[:, 0] == draws[:, 1])  # P(same elite twice) = sum p^2 = 0.38
    assert same == pytest.approx(0.38, abs=0.02)


def test_map_elites_parents_without_replacement_once_qualities_sum_to_two():
    q = np.array([0.6, 0.5, 0.9])  # sum exactly 2.0: the reference draws without replacement
    b, _ = me_with(q.tolist(), [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    rng = np.random.default_rng(0)
    draws = np.array([b.algorithm.sample_parents(rng) for _ in range(10000)])
    assert np.all(draws[:, 0] != draws[:, 1])
    assert np.allclose(np.bincount(draws[:, 0], minlength=3) / len(draws), q / q.sum(), atol=0.02)
    # second parent ∝ quality among the rest: P(row 2 second) = sum_i p_i * q_2 / (2 - q_i), i != 2
    p2 = sum(q[i] / 2.0 * q[2] / (2.0 - q[i]) for i in (0, 1))
    assert np.mean(draws[:, 1] == 2) == pytest.approx(p2, abs=0.02)


def test_map_elites_zero_quality_elite_not_a_parent_and_single_elite_pairs_with_itself():
    b, _ = me_with([0.0, 0.4, 0.6], [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    rng = np.random.default_rng(1)
    draws = np.array([b.algorithm.sample_parents(rng) for _ in range(500)])
    assert set(draws.ravel().tolist()) == {1, 2}
    b1, x0 = me_with([0.4], [[0.5, 0.5]], mutation_std=0.0)
    assert np.allclose(tell_one(b1, 0.1, [0.5, 0.5]), x0[0])


def test_map_elites_needs_descriptors():
    sp = ToySpace("params", 3)
    b = MapElites().setup(sp, 10, 0)
    with pytest.raises(ValueError, match="map-elites needs a task with behaviour descriptors"):
        b.seed(np.zeros((1, 3)), ev([0.5]))
    b = MapElites().setup(sp, 10, 0)
    b.seed(np.zeros((1, 3)), ev([np.nan]))  # all failed: no descriptors expected, no error
    x = b.ask()
    with pytest.raises(ValueError, match="behaviour descriptors"):
        b.tell(x, ev([0.3]))


def test_map_elites_failures_are_not_inserted():
    b, x0 = me_with([np.nan, 0.3], [[np.nan, np.nan], [0.5, 0.5]])
    assert b.archive()[0].tolist() == [55]
    x = b.ask()
    b.tell(x, Evaluation(value=np.array([np.nan]), descriptors=np.array([[0.9, 0.9]])))
    assert b.archive()[0].tolist() == [55]


def test_map_elites_recommends_the_best_elite():
    b, x0 = me_with([0.3, 0.8, 0.5], [[0.0, 0.0], [0.5, 0.5], [0.9, 0.9]])
    assert np.array_equal(b.recommend(), x0[1])
    x = tell_one(b, 0.8, [0.2, 0.2])  # ties the best in a lower cell: the lower cell wins
    assert np.array_equal(b.recommend(), x)


# ---- both: determinism and smoke runs -------------------------------------------------------------------
def run(Cls, kind, dim, seed, steps, **cfg):
    sp = ToySpace(kind, dim)
    b = Cls(**cfg).setup(sp, steps, seed)
    x0 = sp.initial(np.random.default_rng(seed))
    ev0 = toy_evaluation(x0)
    b.seed(x0, ev0)
    asks = []
    for i in range(steps):
        x = b.ask()
        b.tell(x, toy_evaluation(x, fail=np.array([i % 7 == 3])))
        asks.append(x)
    return b, ev0, np.concatenate(asks)


@pytest.mark.parametrize("Cls", [GA, MapElites])
def test_same_seed_same_asks(Cls):
    _, _, a = run(Cls, "params", 10, 3, 30)
    _, _, b = run(Cls, "params", 10, 3, 30)
    _, _, c = run(Cls, "params", 10, 4, 30)
    assert np.array_equal(a, b) and not np.allclose(a, c)


@pytest.mark.parametrize("Cls", [GA, MapElites])
@pytest.mark.parametrize("kind, dim", [("params", 10), ("ps", 6)])
def test_smoke_improves_over_the_starting_models(Cls, kind, dim):
    b, ev0, asks = run(Cls, kind, dim, 0, 600)
    start = np.nanmax(ev0.value)
    assert b.best_f > start + 0.05
    rec = b.recommend()
    assert rec.shape == (dim,) and toy_evaluation(rec[None]).value[0] > start
    if kind == "ps":
        assert asks.min() >= 0.0 and asks.max() <= 1.0
