"""Digits task (M2N2 reference experiment): data split, MLP families, scoring, specialists, problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from evobench.models.base import BlockStack
from evobench.models.mlp import MLP, MLPFamily, PathMLP, ResMLPFamily
from evobench.problem import Problem
from evobench.task import SEARCH, TEST
from evobench.tasks import digits
from evobench.tasks.digits import (
    DigitsTask,
    load_digits_split,
    random_state,
    train_specialist,
)


@pytest.fixture(scope="module")
def task() -> DigitsTask:
    return DigitsTask()


@pytest.fixture(scope="module")
def spec() -> Problem:
    return digits.specialists()


@pytest.fixture(scope="module")
def blocks() -> Problem:
    return digits.specialists_blocks()


@pytest.fixture(scope="module")
def scratch() -> Problem:
    return digits.scratch()


class FixedPredictor:
    """A 'model' whose argmax is the given prediction for every row of the split."""

    def __init__(self, pred: np.ndarray, n_classes: int = 10, fill: float = 0.0) -> None:
        self.logits = torch.full((len(pred), n_classes), fill)
        self.logits[torch.arange(len(pred)), torch.as_tensor(pred)] = 1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[: x.shape[0]]


# --- data --------------------------------------------------------------------------------------------

def test_reference_split():
    ref = load_digits()
    data = load_digits_split()
    xs, ys = data[SEARCH]
    xt, yt = data[TEST]
    assert xs.shape == (1437, 64) and ys.shape == (1437,)
    assert xt.shape == (360, 64) and yt.shape == (360,)
    assert xs.dtype == torch.float32 and ys.dtype == torch.int64
    # not shuffled: search = first 1437 rows, test = the rest, in order
    np.testing.assert_array_equal(xs[0].numpy(), ref.data[0])
    np.testing.assert_array_equal(xt[0].numpy(), ref.data[1437])
    np.testing.assert_array_equal(xs.numpy(), ref.data[:1437])
    np.testing.assert_array_equal(yt.numpy(), ref.target[1437:])
    # raw pixel values 0..16, not rescaled
    assert float(xs.min()) == 0.0 and float(xs.max()) == 16.0


def test_task_metadata(task):
    assert task.split_sizes() == {SEARCH: 1437, TEST: 360}
    assert task.primary_metric == "accuracy"
    assert task.descriptor_names == ("accuracy_odd", "accuracy_even")
    h = task.data_hash()
    assert len(h) == 16 and h == DigitsTask().data_hash()


# --- MLP family --------------------------------------------------------------------------------------

def test_mlp_family_parameter_count_and_shapes():
    fam = MLPFamily()
    assert fam.n_params == 19210 == (64 + 1) * 256 + (256 + 1) * 10
    assert list(fam.shapes.values()) == [(64, 256), (256,), (256, 10), (10,)]


def test_mlp_flattening_order():
    fam = MLPFamily()
    vec = torch.arange(fam.n_params, dtype=torch.float64)
    st = fam.unflatten(vec)
    w1, b1, w2, b2 = (st[k] for k in fam.param_names)
    # W1 row-major (64 inputs x 256 hidden), then b1, then W2 (256 x 10), then b2
    assert w1[0, 1] == 1 and w1[1, 0] == 256 and w1[63, 255] == 64 * 256 - 1
    assert b1[0] == 16384 and b1[255] == 16639
    assert w2[0, 0] == 16640 and w2[0, 9] == 16649 and w2[1, 0] == 16650
    assert w2[255, 9] == 16640 + 2560 - 1
    assert b2.tolist() == list(range(19200, 19210))
    torch.testing.assert_close(fam.flatten(st), vec)


def test_unflatten_wrong_size_raises():
    with pytest.raises(ValueError, match="19210"):
        MLPFamily().unflatten(torch.zeros(100))


def test_mlp_forward_matches_numpy():
    fam = MLPFamily(64, 256, 10)
    st = random_state(fam, torch.Generator().manual_seed(0), std=0.1)
    x = load_digits_split()[SEARCH][0][:50]
    model = fam.build(st)
    assert isinstance(model, MLP)
    got = model(x).numpy().astype(np.float64)
    w1, b1, w2, b2 = (st[k].numpy().astype(np.float64) for k in fam.param_names)
    h = np.maximum(x.numpy().astype(np.float64) @ w1 + b1, 0.0)
    np.testing.assert_allclose(got, h @ w2 + b2, rtol=1e-4, atol=1e-4)


# --- scoring -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("split", [SEARCH, TEST])
def test_evaluate_scores_accuracy_and_descriptors(task, spec, split):
    fam = spec.pool.family
    _, a = spec.pool.sources[0]
    x, y = load_digits_split()[split]
    res = task.evaluate(fam.build(a), split)
    w1, b1, w2, b2 = (a[k].numpy().astype(np.float64) for k in fam.param_names)
    pred = (np.maximum(x.numpy() @ w1 + b1, 0) @ w2 + b2).argmax(1)
    correct = (pred == y.numpy()).astype(float)
    assert res.scores.shape == (len(y),)
    assert set(np.unique(res.scores)) <= {0.0, 1.0}
    np.testing.assert_array_equal(res.scores, correct)
    assert res.primary == pytest.approx(correct.mean()) == res.metrics["accuracy"]
    odd = y.numpy() % 2 == 1
    np.testing.assert_allclose(res.descriptors, [correct[odd].mean(), correct[~odd].mean()])
    assert res.n_forward == len(y)


def test_descriptors_hand_example(task):
    y = load_digits_split()[SEARCH][1].numpy()
    # always predicts 0: correct exactly on the zeros (an even digit)
    res = task.evaluate(FixedPredictor(np.zeros(len(y), dtype=int)), SEARCH)
    assert res.primary == pytest.approx(np.mean(y == 0))
    np.testing.assert_allclose(res.descriptors, [0.0, np.sum(y == 0) / np.sum(y % 2 == 0)])
    # predicts the label on odd digits only
    pred = np.where(y % 2 == 1, y, (y + 1) % 10)
    res = task.evaluate(FixedPredictor(pred), SEARCH)
    np.testing.assert_allclose(res.descriptors, [1.0, 0.0])
    assert res.primary == pytest.approx(np.mean(y % 2 == 1))
    np.testing.assert_array_equal(res.predictions, pred)


def test_evaluate_limit(task):
    y = load_digits_split()[SEARCH][1].numpy()
    res = task.evaluate(FixedPredictor(y), SEARCH, limit=25)
    assert res.scores.shape == (25,) and res.primary == 1.0
    np.testing.assert_allclose(res.descriptors, [1.0, 1.0])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_logits_raise(task, bad):
    model = FixedPredictor(np.zeros(1437, dtype=int))
    model.logits[3, 4] = bad
    with pytest.raises(FloatingPointError):
        task.evaluate(model, SEARCH)


def test_unknown_split_raises(task):
    with pytest.raises(ValueError, match="validation"):
        task.evaluate(FixedPredictor(np.zeros(10, dtype=int)), "validation")


# --- specialists -------------------------------------------------------------------------------------

def _half_accuracies(problem: Problem, state) -> tuple[float, float]:
    x, y = load_digits_split()[SEARCH]
    pred = problem.pool.family.build(state)(x).argmax(1)
    low = y < 5
    return (float((pred[low] == y[low]).float().mean()), float((pred[~low] == y[~low]).float().mean()))


@pytest.mark.parametrize("which", ["spec", "blocks"])
def test_specialists_are_specialised(which, request):
    prob = request.getfixturevalue(which)
    names = [n for n, _ in prob.pool.sources]
    assert names == ["digits-0to4", "digits-5to9"]
    (_, a), (_, b) = prob.pool.sources
    a_low, a_high = _half_accuracies(prob, a)
    b_low, b_high = _half_accuracies(prob, b)
    assert a_low > 0.7 and a_low - a_high > 0.5
    assert b_high > 0.7 and b_high - b_low > 0.5


def test_specialists_setting(spec, blocks):
    assert spec.pool.base is None  # reference: independent inits, so a zero base for task vectors
    # blocks: one shared init, trained twice; it is the base of the task vectors
    (_, a), (_, b) = blocks.pool.sources
    fam = blocks.pool.family
    base = fam.flatten(blocks.pool.base)
    assert float((fam.flatten(a) - base).abs().max()) < 0.1 and float((fam.flatten(b) - base).abs().max()) < 0.1
    assert float(base.std()) == pytest.approx(0.01, rel=0.05)
    for prob in (spec, blocks):
        assert prob.baseline_defaults == {"mutation_std": 0.0}
        assert isinstance(prob.task, DigitsTask)
    assert spec.name == "digits-specialists" and isinstance(spec.pool.family, MLPFamily)
    assert blocks.name == "digits-specialists-blocks" and isinstance(blocks.pool.family, ResMLPFamily)
    assert blocks.pool.family.n_blocks() == 4 and blocks.pool.family.hidden == 64


def _reference_specialist(vec: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """The stated recipe, written out: W1 (64x256, row-major), b1, W2 (256x10), b2 from ``vec``;
    10 full-batch Adam steps (lr 3e-3, betas 0.9 / 0.999, eps 1e-8) on cross-entropy."""
    sizes, shapes = [64 * 256, 256, 256 * 10, 10], [(64, 256), (256,), (256, 10), (10,)]
    params = [p.reshape(s).clone() for p, s in zip(torch.split(vec, sizes), shapes, strict=True)]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    lr, b1, b2, eps = 3e-3, 0.9, 0.999, 1e-8
    for step in range(1, 11):
        leaves = [p.requires_grad_(True) for p in params]
        w1, c1, w2, c2 = leaves
        loss = torch.nn.functional.cross_entropy(torch.relu(x @ w1 + c1) @ w2 + c2, y)
        grads = torch.autograd.grad(loss, leaves)
        with torch.no_grad():
            for i, g in enumerate(grads):
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mhat, vhat = m[i] / (1 - b1**step), v[i] / (1 - b2**step)
                params[i] = (params[i] - lr * mhat / (vhat.sqrt() + eps)).detach()
    return params


def test_specialists_follow_the_reference_recipe(spec):
    """Recomputed from the stated recipe, without the task's own helpers: unshuffled 1437/360 split;
    one generator seeded 42 draws A's N(0, 0.01^2) init then B's (19,210 values each, in the order
    W1, b1, W2, b2); 10 full-batch Adam steps, lr 3e-3, on digits 0-4 (A) and 5-9 (B)."""
    d = load_digits()
    x = torch.tensor(d.data[:1437], dtype=torch.float32)
    y = torch.tensor(d.target[:1437], dtype=torch.int64)
    xt = torch.tensor(d.data[1437:], dtype=torch.float32)
    yt = torch.tensor(d.target[1437:], dtype=torch.int64)
    gen = torch.Generator().manual_seed(42)
    init_a, init_b = torch.randn(19210, generator=gen) * 0.01, torch.randn(19210, generator=gen) * 0.01
    low = y < 5
    ref_a = _reference_specialist(init_a, x[low], y[low])
    ref_b = _reference_specialist(init_b, x[~low], y[~low])
    names = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    for ref, (_, got) in zip((ref_a, ref_b), spec.pool.sources, strict=True):
        for name, want in zip(names, ref, strict=True):
            torch.testing.assert_close(got[name], want, rtol=1e-5, atol=1e-5)
    # the same models score the same: test accuracy recomputed by hand vs the task's evaluation
    for ref, (_, got) in zip((ref_a, ref_b), spec.pool.sources, strict=True):
        w1, c1, w2, c2 = ref
        acc = float(((torch.relu(xt @ w1 + c1) @ w2 + c2).argmax(1) == yt).float().mean())
        assert spec.task.evaluate(spec.pool.family.build(got), TEST).primary == pytest.approx(acc, abs=1 / 360)
    # training moved the weights away from the inits
    assert float((ref_a[0].reshape(-1) - init_a[: 64 * 256]).abs().max()) > 1e-3


def test_specialists_deterministic_across_rebuilds(spec):
    key = ("mlp", 64, 256, 10)
    fam = spec.pool.family
    # bypass the cache: retrain from scratch, twice -> bit-identical
    fresh1 = digits.specialist_states.__wrapped__(key)
    fresh2 = digits.specialist_states.__wrapped__(key)
    for s1, s2, (_, cached) in zip(fresh1[:2], fresh2[:2], spec.pool.sources, strict=True):
        assert torch.equal(fam.flatten(s1), fam.flatten(s2))
        # the cached copy may come from another test module run with another torch thread count
        torch.testing.assert_close(fam.flatten(s1), fam.flatten(cached), rtol=1e-5, atol=1e-6)
    again = digits.specialists()
    for (_, s1), (_, s2) in zip(spec.pool.sources, again.pool.sources, strict=True):
        assert torch.equal(fam.flatten(s1), fam.flatten(s2))


def test_train_specialist_does_not_modify_its_input():
    fam = MLPFamily(64, 16, 10)
    st = random_state(fam, torch.Generator().manual_seed(1))
    before = fam.flatten(st).clone()
    x, y = load_digits_split()[SEARCH]
    out = train_specialist(fam, st, x[:100], y[:100], steps=2)
    assert torch.equal(fam.flatten(st), before)
    assert not torch.equal(fam.flatten(out), before)
    assert all(not v.requires_grad for v in out.values())


# --- scratch -----------------------------------------------------------------------------------------

def test_scratch_sampler(scratch):
    fam = scratch.pool.family
    assert fam.n_params == 19210
    assert scratch.pool.sources == [] and scratch.pool.from_scratch
    s1 = fam.flatten(scratch.pool.sampler(np.random.default_rng(0)))
    s1b = fam.flatten(scratch.pool.sampler(np.random.default_rng(0)))
    s2 = fam.flatten(scratch.pool.sampler(np.random.default_rng(1)))
    assert float(s1.std()) == pytest.approx(0.01, rel=0.03)
    assert abs(float(s1.mean())) < 1e-3
    assert torch.equal(s1, s1b)  # seeded by the rng
    assert not torch.equal(s1, s2)
    starts = scratch.pool.starting_states(np.random.default_rng(0))
    assert len(starts) == 2
    assert not torch.equal(fam.flatten(starts[0]), fam.flatten(starts[1]))
    assert scratch.baseline_defaults == {}


def test_scratch_init_std_option():
    prob = digits.scratch(init_std=0.1)
    s = prob.pool.family.flatten(prob.pool.sampler(np.random.default_rng(0)))
    assert float(s.std()) == pytest.approx(0.1, rel=0.03)


# --- ResMLP family / build_path ----------------------------------------------------------------------

def _tiny():
    fam = ResMLPFamily(4, 3, 2, 2)
    g = torch.Generator().manual_seed(3)
    return fam, [random_state(fam, g, std=0.7), random_state(fam, g, std=0.7)]


def _np(st):
    return {k: v.numpy().astype(np.float64) for k, v in st.items()}


def _hand_path(sources, path, scales, x):
    a = _np(sources[0])
    h = np.maximum(x @ a["stem.weight"] + a["stem.bias"], 0.0)
    for (s, i), sc in zip(path, scales, strict=True):
        src = _np(sources[s])
        h = h * sc
        h = h + np.maximum(h @ src[f"blocks.{i}.weight"] + src[f"blocks.{i}.bias"], 0.0)
    return h @ a["head.weight"] + a["head.bias"]


def test_resmlp_layout():
    fam = ResMLPFamily()
    assert isinstance(fam, BlockStack)
    assert fam.n_params == (64 * 64 + 64) * 5 + 64 * 10 + 10
    assert fam.param_names[:2] == ["stem.weight", "stem.bias"]
    assert fam.param_names[-2:] == ["head.weight", "head.bias"]


def test_resmlp_build_equals_own_path_and_hand_computation(blocks):
    fam = blocks.pool.family
    _, a = blocks.pool.sources[0]
    x = load_digits_split()[SEARCH][0][:40]
    m = fam.build(a)
    assert isinstance(m, PathMLP)
    p = fam.build_path([a], [(0, i) for i in range(4)], [1.0] * 4)
    torch.testing.assert_close(m(x), p(x))
    np.testing.assert_allclose(m(x).numpy(), _hand_path([a], [(0, i) for i in range(4)], [1.0] * 4,
                                                      x.numpy().astype(np.float64)), rtol=1e-4, atol=1e-4)


def test_build_path_with_scales_and_two_sources():
    fam, sources = _tiny()
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(9))
    path, scales = [(1, 1), (0, 0), (1, 1)], [1.0, 0.5, 2.0]
    got = fam.build_path(sources, path, scales)(x).numpy()
    np.testing.assert_allclose(got, _hand_path(sources, path, scales, x.numpy().astype(np.float64)),
                               rtol=1e-5, atol=1e-5)
    # the scale matters: the unit-scale path gives a different output
    unit = fam.build_path(sources, path, [1.0] * 3)(x).numpy()
    assert not np.allclose(got, unit)
    # stem and head come from sources[0]: swapping the source order changes the output
    swapped = fam.build_path(sources[::-1], [(0, 1), (1, 0), (0, 1)], scales)(x).numpy()
    assert not np.allclose(got, swapped)


@pytest.mark.parametrize("path, scales", [
    ([(2, 0)], [1.0]),  # source out of range
    ([(0, 2)], [1.0]),  # block out of range
    ([(-1, 0)], [1.0]),
    ([(0, -1)], [1.0]),
    ([(0, 0), (0, 1)], [1.0]),  # path / scales length mismatch
])
def test_bad_path_step_raises(path, scales):
    fam, sources = _tiny()
    with pytest.raises(ValueError):
        fam.build_path(sources, path, scales)


# --- problems ----------------------------------------------------------------------------------------

def test_space_kinds(scratch, spec, blocks):
    assert scratch.space_kinds() == ["params"]
    assert spec.space_kinds() == ["ps", "params"]
    assert blocks.space_kinds() == ["ps", "params", "dfs", "ps+dfs"]


def test_pick_space(scratch, spec, blocks):
    assert scratch.pick_space(("ps", "params")) == "params"
    assert spec.pick_space(("dfs", "ps", "params")) == "ps"
    assert spec.pick_space(("dfs", "ps+dfs")) is None
    assert blocks.pick_space(("ps+dfs",)) == "ps+dfs"


def test_registered_task_factories_build_problems():
    from evobench.registry import TASKS

    for name in ("digits-scratch", "digits-specialists", "digits-specialists-blocks"):
        prob = TASKS.get(name)()
        assert isinstance(prob, Problem) and prob.name == name


def test_shared_init_specialists_start_from_their_base():
    prob = digits.specialists_shared()
    assert prob.name == "digits-specialists-shared"
    fam = prob.pool.family
    gen = torch.Generator().manual_seed(42)
    init = random_state(fam, gen)
    assert torch.equal(fam.flatten(prob.pool.base), fam.flatten(init))  # the first draw of seed 42
    x, y = load_digits_split()[SEARCH]
    low = y < 5
    a = train_specialist(fam, init, x[low], y[low], steps=10, lr=3e-3)
    torch.testing.assert_close(fam.flatten(prob.pool.sources[0][1]), fam.flatten(a))
    # same init, different data: different specialists
    assert not torch.equal(fam.flatten(prob.pool.sources[0][1]), fam.flatten(prob.pool.sources[1][1]))
