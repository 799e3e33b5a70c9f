"""M2N2 (fitness sharing, attraction, replacement, ablations) and the brute-force SLERP baseline,
checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evobench.baselines.brute_force import BruteForceSlerp
from evobench.baselines.m2n2 import (
    M2N2,
    M2N2Alpha0,
    M2N2NoAttraction,
    M2N2NoCrossover,
    M2N2NoSplit,
    attraction,
    shared_fitness,
)
from evobench.evaluation import Evaluation
from evobench.merge.slerp import slerp, split_slerp
from evobench.registry import BASELINES
from evobench.testing import ToySpace, toy_evaluation

# z = column sums = [3, 2, 1, 0]; the last column's zero is read as 1.
S = np.array([[1.0, 1.0, 1.0, 0.0],
              [1.0, 0.0, 0.0, 0.0],
              [1.0, 1.0, 0.0, 0.0]])


def ev_of(scores, values=None) -> Evaluation:
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    values = scores.mean(axis=1) if values is None else np.atleast_1d(np.asarray(values, dtype=float))
    return Evaluation(value=values, scores=scores)


def seeded(cls=M2N2, scores=S, values=None, dim=4, seed=0, x0=None, **cfg) -> M2N2:
    """A baseline whose archive holds one starting model per row of ``scores`` (inserted in order)."""
    scores = np.asarray(scores, dtype=float)
    b = cls(cfg).setup(ToySpace("params", dim=dim), budget=10_000, seed=seed)
    if x0 is None:
        x0 = np.arange(1, scores.shape[0] * dim + 1, dtype=float).reshape(scores.shape[0], dim)
    b.seed(x0, ev_of(scores, values))
    return b


# ---- fitness sharing and attraction -------------------------------------------------------------
def test_shared_fitness_hand_computed():
    # alpha = 1: z = [3, 2, 1, 1] -> f0 = 1/3 + 1/2 + 1, f1 = 1/3, f2 = 1/3 + 1/2
    np.testing.assert_allclose(shared_fitness(S, 1.0), [11 / 6, 1 / 3, 5 / 6])
    # alpha = 0: z**0 = 1 -> plain number of solved examples
    np.testing.assert_allclose(shared_fitness(S, 0.0), [3.0, 1.0, 2.0])
    # alpha = 2: z**2 = [9, 4, 1, 0 -> 1]
    np.testing.assert_allclose(shared_fitness(S, 2.0), [1 / 9 + 1 / 4 + 1, 1 / 9, 1 / 9 + 1 / 4])
    # non-binary scores: z = [0.6, 0.8]
    s2 = np.array([[0.5, 0.2], [0.1, 0.6]])
    np.testing.assert_allclose(shared_fitness(s2, 1.0), [0.5 / 0.6 + 0.2 / 0.8, 0.1 / 0.6 + 0.6 / 0.8])


def test_shared_fitness_with_child_counts_child_in_z():
    # child [1, 0, 1, 1]: z = [4, 2, 2, 1]
    f = shared_fitness(S, 1.0, extra=np.array([1.0, 0.0, 1.0, 1.0]))
    np.testing.assert_allclose(f, [1 / 4 + 1 / 2 + 1 / 2, 1 / 4, 1 / 4 + 1 / 2, 1 / 4 + 1 / 2 + 1])
    assert np.array_equal(S[:, 3], np.zeros(3))  # the input is not modified


def test_zero_z_is_read_as_one():
    zeros = np.zeros((3, 4))
    assert np.array_equal(shared_fitness(zeros, 1.0), np.zeros(3))
    assert np.array_equal(shared_fitness(zeros, 0.5), np.zeros(3))
    # only the child solves example 3: its z is 1 and the child gets 1/1 for it
    f = shared_fitness(S, 1.0, extra=np.array([0.0, 0.0, 0.0, 1.0]))
    np.testing.assert_allclose(f[-1], 1.0)
    # a tiny z (not zero) is NOT replaced: 0.25 / 0.25 = 1
    np.testing.assert_allclose(shared_fitness(np.array([[0.25, 0.0]]), 1.0), [1.0])


def test_attraction_hand_computed():
    # A = row 1 [1,0,0,0]: B=0 gains examples 1, 2 (1/2 + 1/1), B=2 gains example 1 (1/2), A itself 0
    np.testing.assert_allclose(attraction(S, 1.0, 1), [1.5, 0.0, 0.5])
    # A = row 2 [1,1,0,0]: only row 0 adds example 2 (z = 1)
    np.testing.assert_allclose(attraction(S, 1.0, 2), [1.0, 0.0, 0.0])
    # A = row 0 dominates everyone: all zero
    np.testing.assert_allclose(attraction(S, 1.0, 0), [0.0, 0.0, 0.0])
    # alpha = 0: plain counts of examples B solves and A does not
    np.testing.assert_allclose(attraction(S, 0.0, 1), [2.0, 0.0, 1.0])
    s2 = np.array([[0.5, 0.2], [0.1, 0.6]])  # z = [0.6, 0.8]; B=1 gains 0.4 on example 1
    np.testing.assert_allclose(attraction(s2, 1.0, 0), [0.0, 0.4 / 0.8])


# ---- archive: seeding, replacement, failures, recommend -----------------------------------------
def test_seed_fills_empty_slots_in_order():
    b = seeded(scores=S, archive_size=5)
    assert b.filled.tolist() == [True, True, True, False, False]
    np.testing.assert_array_equal(b.scores[:3], S)
    np.testing.assert_array_equal(b.params[3:], 0.0)
    np.testing.assert_allclose(b.values[:3], S.mean(axis=1))


def test_child_replaces_lowest_member():
    b = seeded(scores=S, archive_size=3)
    x = b.ask()
    b.tell(x, ev_of([1.0, 0.0, 1.0, 1.0], 0.8))  # fitness with child in z: [5/4, 1/4, 3/4, 7/4]
    np.testing.assert_array_equal(b.params[1], x[0])
    np.testing.assert_array_equal(b.scores[1], [1.0, 0.0, 1.0, 1.0])
    assert b.values[1] == 0.8
    np.testing.assert_array_equal(b.scores[[0, 2]], S[[0, 2]])


def test_child_discarded_when_lowest_with_z_including_child():
    arch = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0]])
    b = seeded(scores=arch, archive_size=3)
    before = (b.params.copy(), b.scores.copy(), b.values.copy())
    x = b.ask()
    # child [1,0,0,0]: with z over archive + child ([2,1,2,3]) the child has 1/2 < 5/6 (member 0): discarded.
    # (With z over the archive only it would have 1/1 > 5/6 and replace member 0.)
    b.tell(x, ev_of([1.0, 0.0, 0.0, 0.0], 0.99))
    for got, want in zip((b.params, b.scores, b.values), before, strict=True):
        np.testing.assert_array_equal(got, want)
    # a non-zero child that is the lowest is discarded too: z = [3.5, 2, 1, 1], child 1/7 < 1/3.5
    b = seeded(scores=S, archive_size=3)
    kept = b.scores.copy()
    b.tell(b.ask(), ev_of([0.5, 0.0, 0.0, 0.0]))
    np.testing.assert_array_equal(b.scores, kept)


def test_seed_uses_replacement_rule_when_archive_is_full():
    # archive of 2, three starting models: the third replaces the lowest (row 1, f = 1/4 with it in z)
    three = np.vstack([S[0], S[1], [1.0, 0.0, 1.0, 1.0]])
    b = seeded(scores=three, archive_size=2)
    np.testing.assert_array_equal(b.scores, three[[0, 2]])


def test_failed_child_is_ignored():
    b = seeded(scores=S, archive_size=4)
    state = (b.params.copy(), b.scores.copy(), b.values.copy(), b.filled.copy())
    x = b.ask()
    b.tell(x, Evaluation(value=np.array([np.nan]), scores=np.ones((1, 4)), errors=["boom"]))
    for got, want in zip((b.params, b.scores, b.values, b.filled), state, strict=True):
        np.testing.assert_array_equal(got, want)
    assert b.n_told == 1


def test_empty_slots_never_parents():
    b = seeded(scores=S[:2], archive_size=6)
    picks = {b._parents() for _ in range(500)}
    assert {i for p in picks for i in p} <= {0, 1}
    # every member all-wrong (every f = 0): uniform over the filled members, never an empty slot.
    # (Seeding two all-wrong models would keep only one: the second ties and replaces the first.)
    b.scores[:2] = 0.0
    picks = np.array([b._parents() for _ in range(600)])
    assert set(np.unique(picks)) == {0, 1}
    assert abs((picks[:, 0] == 0).mean() - 0.5) < 0.08


def test_recommend_is_best_raw_value_in_archive():
    # member 0 has the higher shared fitness, member 1 the higher raw value
    b = seeded(scores=[[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]], values=[0.2, 0.9], archive_size=2)
    x1 = b.params[1].copy()
    np.testing.assert_array_equal(b.recommend(), x1)
    # a discarded child with the best value ever does not become the recommendation
    b.tell(b.ask(), ev_of([0.0, 0.0, 0.0, 0.0], 0.99))
    assert b.best_f == 0.99
    np.testing.assert_array_equal(b.recommend(), x1)


def test_scores_are_required_and_non_negative():
    b = M2N2().setup(ToySpace("params", dim=3), 10, 0)
    with pytest.raises(ValueError, match="per-example scores"):
        b.seed(np.zeros((1, 3)), Evaluation(value=np.array([0.5])))
    b = M2N2().setup(ToySpace("params", dim=3), 10, 0)
    with pytest.raises(ValueError, match=">= 0"):
        b.seed(np.zeros((1, 3)), ev_of([[1.0, -0.5]], 0.5))


# ---- parent sampling ------------------------------------------------------------------------------
def test_attraction_sampling_distribution():
    b = seeded(scores=S, archive_size=3, seed=1)
    pairs = np.array([b._parents() for _ in range(6000)])
    a, bb = pairs[:, 0], pairs[:, 1]
    np.testing.assert_allclose(np.bincount(a, minlength=3) / len(a), np.array([11, 2, 5]) / 18, atol=0.02)
    # A = 1: B ~ g = [1.5, 0, 0.5]; A = 2: B = 0 always; A = 0 dominates: fall back to B ~ f
    np.testing.assert_allclose(np.bincount(bb[a == 1], minlength=3) / (a == 1).sum(), [0.75, 0, 0.25], atol=0.06)
    assert np.all(bb[a == 2] == 0)
    np.testing.assert_allclose(np.bincount(bb[a == 0], minlength=3) / (a == 0).sum(),
                               np.array([11, 2, 5]) / 18, atol=0.03)


def test_no_attraction_draws_both_parents_from_fitness_with_replacement():
    b = seeded(M2N2NoAttraction, scores=S, archive_size=3, seed=2)
    pairs = np.array([b._parents() for _ in range(6000)])
    p = np.array([11, 2, 5]) / 18
    np.testing.assert_allclose(np.bincount(pairs[:, 1], minlength=3) / len(pairs), p, atol=0.02)
    # independent, with replacement: P(B = A) = sum p^2 (0.463), and B's law does not depend on A
    assert abs((pairs[:, 0] == pairs[:, 1]).mean() - (p * p).sum()) < 0.025
    given_a2 = pairs[pairs[:, 0] == 2, 1]
    np.testing.assert_allclose(np.bincount(given_a2, minlength=3) / len(given_a2), p, atol=0.04)


# ---- crossover and mutation ---------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, 1, 17, 39, 40])
@pytest.mark.parametrize("w", [0.0, 0.3, 0.9])
def test_split_slerp_is_slerp_per_side(k, w):
    rng = np.random.default_rng(k)
    a, b = rng.normal(size=40), rng.normal(size=40)
    np.testing.assert_allclose(_ss(a, b, w, 40), slerp(torch.from_numpy(a), torch.from_numpy(b), t=w).numpy(),
                               rtol=1e-12, atol=1e-14)
    # t before k, 1 - t from k on: each side is a plain slerp with that weight
    np.testing.assert_allclose(_ss(a, b, w, k)[:k], _ss(a, b, w, 40)[:k], rtol=1e-12)
    np.testing.assert_allclose(_ss(a, b, w, k)[k:], _ss(a, b, 1 - w, 40)[k:], rtol=1e-12)


def test_split_slerp_parallel_and_zero_vectors_use_lerp():
    a = np.arange(1.0, 6.0)
    np.testing.assert_allclose(_ss(a, 2 * a, 0.25, 2), [*(1.25 * a[:2]), *(1.75 * a[2:])])
    np.testing.assert_allclose(_ss(np.zeros(5), a, 0.5, 5), 0.5 * a)


def _ss(a, b, w, k):
    return split_slerp(torch.from_numpy(np.asarray(a, float)), torch.from_numpy(np.asarray(b, float)), t=w, split=k).numpy()


def implied_t(child: np.ndarray) -> np.ndarray:
    """Per-element SLERP weight of parent 'odd' for parents e_even and e_odd (orthogonal, angle pi/2)."""
    t = np.empty_like(child)
    t[0::2] = np.arccos(np.clip(child[0::2], -1, 1)) * 2 / np.pi
    t[1::2] = np.arcsin(np.clip(child[1::2], -1, 1)) * 2 / np.pi
    return t


def crossover_children(cls, n_children=30, dim=40, **cfg) -> list[np.ndarray]:
    """Children of two orthogonal parents that attract each other (failed tells keep the archive)."""
    x0 = np.zeros((2, dim))
    x0[0, 0::2], x0[1, 1::2] = 1.0, 1.0
    b = seeded(cls, scores=[[1.0, 0.0], [0.0, 1.0]], x0=x0, dim=dim, archive_size=2, mutation_std=0.0, **cfg)
    out = []
    for _ in range(n_children):
        x = b.ask()
        out.append(x[0])
        b.tell(x, Evaluation(value=np.array([np.nan]), scores=np.zeros((1, 2))))
    return out


# children are float32 (the params space's genomes): 6e-8 on a child is up to ~2e-4 on its implied t
# (arccos near 1), so weights are compared to 1e-3
T_TOL = 1e-3


def test_split_crossover_gives_w_before_k_and_1_minus_w_after():
    n_split = 0
    for child in crossover_children(M2N2):
        t = implied_t(child)
        change = np.flatnonzero(np.abs(np.diff(t)) > T_TOL)
        assert len(change) <= 1
        if len(change) == 1:
            k = change[0] + 1
            np.testing.assert_allclose(t[:k], t[0], atol=T_TOL)
            np.testing.assert_allclose(t[k:], 1 - t[0], atol=T_TOL)
            n_split += 1
    assert n_split >= 20  # k = 0 or w = 1/2 give no visible change point; rare


def test_no_split_uses_one_weight():
    ws = []
    for child in crossover_children(M2N2NoSplit):
        t = implied_t(child)
        np.testing.assert_allclose(t, t[0], atol=T_TOL)
        ws.append(t[0])
    assert np.std(ws) > 0.1  # the weight is redrawn for every child


def test_no_crossover_child_is_parent_a_plus_noise():
    dim, sigma = 4000, 0.05
    x0 = np.random.default_rng(5).normal(size=(2, dim))
    # member 1 solves nothing (f = 0), so parent A is always member 0
    b = seeded(M2N2NoCrossover, scores=[[1.0, 1.0], [0.0, 0.0]], x0=x0, dim=dim, archive_size=2,
               mutation_std=sigma)
    noise = b.ask()[0] - x0[0]
    assert abs(noise.std() - sigma) < 0.05 * sigma
    assert abs(noise.mean()) < 4 * sigma / np.sqrt(dim)
    b = seeded(M2N2NoCrossover, scores=[[1.0, 1.0], [0.0, 0.0]], x0=x0, dim=dim, archive_size=2, mutation_std=0)
    np.testing.assert_array_equal(b.ask()[0], x0[0].astype(np.float32))  # the space's float32 genome


def test_ablation_configs_and_registry():
    expect = {
        "m2n2": (M2N2, 1.0, True, True, True),
        "m2n2-no-attraction": (M2N2NoAttraction, 1.0, False, True, True),
        "m2n2-no-split": (M2N2NoSplit, 1.0, True, False, True),
        "m2n2-no-crossover": (M2N2NoCrossover, 1.0, True, True, False),
        "m2n2-alpha0": (M2N2Alpha0, 0.0, True, True, True),
    }
    for name, (cls, alpha, att, split, cross) in expect.items():
        assert BASELINES.get(name) is cls and cls.name == name and cls.spaces == ("params",)
        c = cls().config
        assert (c.alpha, c.use_attraction, c.use_split, c.use_crossover) == (alpha, att, split, cross)
        assert (c.archive_size, c.mutation_std) == (20, 0.01)
    assert M2N2NoSplit(archive_size=15).config.archive_size == 15
    assert BASELINES.get("brute-force-slerp") is BruteForceSlerp


# ---- determinism and an end-to-end run ----------------------------------------------------------
def run_toy(seed: int, steps: int, cls=M2N2, dim=10, **cfg) -> tuple[M2N2, list[np.ndarray]]:
    space = ToySpace("params", dim=dim)
    b = cls(cfg).setup(space, steps, seed)
    x0 = space.initial(np.random.default_rng(seed))
    b.seed(x0, toy_evaluation(x0))
    asks = []
    for _ in range(steps):
        x = b.ask()
        asks.append(x)
        b.tell(x, toy_evaluation(x))
    return b, asks


def test_same_seed_same_asks():
    _, a1 = run_toy(3, 40)
    _, a2 = run_toy(3, 40)
    _, a3 = run_toy(4, 40)
    assert all(np.array_equal(u, v) for u, v in zip(a1, a2, strict=True))
    assert not all(np.array_equal(u, v) for u, v in zip(a1, a3, strict=True))


def test_end_to_end_toy_improves():
    space = ToySpace("params", dim=10)
    x0 = space.initial(np.random.default_rng(0))
    start = toy_evaluation(x0).value.max()
    b, _ = run_toy(0, 1500, mutation_std=0.05)
    final = toy_evaluation(b.recommend()[None, :]).value[0]
    assert final > start + 0.1
    assert b.filled.all() and b.n_replaced > 50


# ---- brute-force SLERP ----------------------------------------------------------------------------
def test_brute_force_grid_in_order():
    space = ToySpace("params", dim=6)
    x0 = np.random.default_rng(0).normal(size=(2, 6)).astype(np.float32)  # params genomes are float32
    b = BruteForceSlerp(batch_size=2).setup(space, budget=5, seed=0)
    b.seed(x0, toy_evaluation(x0))
    ts, rows = [], []
    while b.remaining:
        x = b.ask()
        rows.extend(x)
        b.tell(x, toy_evaluation(x))
    for t in np.linspace(0, 1, 5):
        ts.append(slerp(torch.from_numpy(x0[0]), torch.from_numpy(x0[1]), t=float(t)).numpy())
    assert len(rows) == 5 and np.array(rows).dtype == np.float32
    np.testing.assert_array_equal(np.array(rows), np.array(ts))
    np.testing.assert_allclose(rows[0], x0[0], atol=1e-7)
    np.testing.assert_allclose(rows[-1], x0[1], atol=1e-6)
    vals = toy_evaluation(np.array(rows)).value
    np.testing.assert_array_equal(b.recommend(), rows[int(np.argmax(vals))])


@pytest.mark.parametrize("m", [1, 3])
def test_brute_force_needs_two_models(m):
    b = BruteForceSlerp().setup(ToySpace("params", dim=4), budget=10, seed=0)
    x0 = np.ones((m, 4))
    with pytest.raises(ValueError, match="exactly 2 starting models"):
        b.seed(x0, toy_evaluation(x0))
