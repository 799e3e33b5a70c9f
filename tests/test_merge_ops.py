"""Merge ops: hand-computed values, defining properties, dtypes, determinism and error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evobench.errors import CandidateError
from evobench.merge.layer_path import LayerPath, global_layer, layer_path
from evobench.merge.ops import (
    dare,
    dare_ties,
    linear,
    merge_state_dicts,
    sparse_merge,
    task_arithmetic,
    ties,
)
from evobench.merge.slerp import slerp, split_slerp
from evobench.registry import MERGE_OPS

T = torch.tensor


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# Worked TIES example. base = 1 everywhere, weights wA = 1, wB = 0.5, density 0.5 -> keep k = 3 of 6.
#   dA = [ 3, -1, 2, -4,  0.5, 1   ]  |dA| top-3: 4, 3, 2  -> tA = [ 3, 0, 2, -4,  0, 0]
#   dB = [-2,  2, 1,  1, -3,   0.25]  |dB| top-3: 3, 2, 2  -> tB = [-2, 2, 0,  0, -3, 0]
#   vA = 1 * tA = [3, 0, 2, -4, 0, 0];  vB = 0.5 * tB = [-1, 1, 0, 0, -1.5, 0]
#   total = [2, 1, 2, -4, -1.5, 0]  -> elected sign [+, +, +, -, -, 0]
#   agreeing: e0 A; e1 B; e2 A; e3 A; e4 B; e5 none
#   disjoint sum  = [3, 1, 2, -4, -1.5, 0]
#   disjoint mean = [3/1, 1/0.5, 2/1, -4/1, -1.5/0.5, 0] = [3, 2, 2, -4, -3, 0]
BASE6 = torch.ones(6)
DA = T([3.0, -1.0, 2.0, -4.0, 0.5, 1.0])
DB = T([-2.0, 2.0, 1.0, 1.0, -3.0, 0.25])


def test_ties_hand_example_disjoint_mean():
    out = ties(BASE6, [BASE6 + DA, BASE6 + DB], [1.0, 0.5], [0.5, 0.5])
    torch.testing.assert_close(out, BASE6 + T([3.0, 2.0, 2.0, -4.0, -3.0, 0.0]))


def test_ties_hand_example_disjoint_sum():
    out = ties(BASE6, [BASE6 + DA, BASE6 + DB], [1.0, 0.5], [0.5, 0.5], normalize=False)
    torch.testing.assert_close(out, BASE6 + T([3.0, 1.0, 2.0, -4.0, -1.5, 0.0]))


def test_ties_sign_election_follows_total_mass_not_count():
    base = torch.zeros(1)
    # two small positive votes (+1, +1) lose against one large negative (-3): total -1 -> sign -
    out = ties(base, [T([1.0]), T([1.0]), T([-3.0])], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    torch.testing.assert_close(out, T([-3.0]))
    # weights count in the mass: weight 0.1 on the negative model flips the election to +
    out = ties(base, [T([1.0]), T([1.0]), T([-3.0])], [1.0, 1.0, 0.1], 1.0)
    torch.testing.assert_close(out, T([1.0]))


def test_linear_one_hot_and_average():
    a, b, c = T([1.0, 2.0]), T([3.0, -4.0]), T([5.0, 6.0])
    torch.testing.assert_close(linear([a, b, c], [0.0, 1.0, 0.0]), b)
    torch.testing.assert_close(linear([a, b], [1.0, 1.0]), T([2.0, -1.0]))
    torch.testing.assert_close(linear([a, b], [1.0, 1.0], normalize=False), T([4.0, -2.0]))


def test_task_arithmetic():
    base, x, y = T([1.0, 1.0]), T([2.0, 0.0]), T([1.0, 5.0])
    torch.testing.assert_close(task_arithmetic(base, [x, y], [0.0, 0.0]), base)
    # 1 + 0.5*(1) + 2*(0) = 1.5 ; 1 + 0.5*(-1) + 2*(4) = 8.5
    torch.testing.assert_close(task_arithmetic(base, [x, y], [0.5, 2.0]), T([1.5, 8.5]))


def test_dare_keeps_expectation():
    base = torch.zeros(64)
    d = torch.linspace(-2.0, 2.0, 64)
    runs = torch.stack([dare(base, [d], [1.0], [0.3], generator=gen(s)) for s in range(2000)])
    torch.testing.assert_close(runs.mean(0), d, atol=0.25, rtol=0.0)
    # survivors are exactly d / density
    one = runs[0]
    kept = one != 0
    torch.testing.assert_close(one[kept], d[kept] / 0.3)


def test_dare_without_rescale_and_density_one():
    base, x, y = torch.randn(5, 4, generator=gen(0)), torch.randn(5, 4, generator=gen(1)), torch.randn(5, 4)
    torch.testing.assert_close(dare(base, [x, y], [0.7, 0.4], [1.0, 1.0], generator=gen(3)),
                               task_arithmetic(base, [x, y], [0.7, 0.4]))
    out = dare(base, [x], [1.0], [0.5], generator=gen(3), rescale=False)
    kept = out != base
    torch.testing.assert_close(out[kept], x[kept])


def test_dare_ties_density_one_equals_ties_density_one():
    g = gen(7)
    base, xs = torch.randn(3, 5, generator=g), [torch.randn(3, 5, generator=g) for _ in range(3)]
    w = [0.9, 0.3, 0.6]
    for norm in (True, False):
        torch.testing.assert_close(dare_ties(base, xs, w, [1.0] * 3, generator=gen(0), normalize=norm),
                                   ties(base, xs, w, [1.0] * 3, normalize=norm))


def test_dare_ties_drops_then_elects():
    base = torch.zeros(1000)
    a, b = torch.full((1000,), 2.0), torch.full((1000,), -1.0)
    out = dare_ties(base, [a, b], [1.0, 1.0], [0.5, 0.5], generator=gen(0))
    # survivors: a -> 4, b -> -2; both alive: +4 wins (sum +2); only one alive: that one
    assert set(out.unique().tolist()) <= {0.0, 4.0, -2.0}
    assert {0.0, 4.0, -2.0} <= set(out.unique().tolist())


def test_random_ops_deterministic_given_generator():
    base, x, y = torch.zeros(100), torch.randn(100, generator=gen(1)), torch.randn(100, generator=gen(2))
    for op in (dare, dare_ties):
        a = op(base, [x, y], [0.5, 0.5], [0.4, 0.6], generator=gen(11))
        b = op(base, [x, y], [0.5, 0.5], [0.4, 0.6], generator=gen(11))
        c = op(base, [x, y], [0.5, 0.5], [0.4, 0.6], generator=gen(12))
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_dare_per_model_generators_match_hand_masks():
    base = torch.linspace(-1.0, 1.0, 50)
    x, y = base + torch.randn(50, generator=gen(1)), base + torch.randn(50, generator=gen(2))
    out = dare(base, [x, y], [0.7, 0.4], [0.3, 0.6], generator=[gen(21), gen(22)])
    keep_x = torch.rand(50, generator=gen(21)) < 0.3  # model i's mask comes from generator i alone
    keep_y = torch.rand(50, generator=gen(22)) < 0.6
    want = base + 0.7 * torch.where(keep_x, x - base, 0.0) / 0.3 + 0.4 * torch.where(keep_y, y - base, 0.0) / 0.6
    torch.testing.assert_close(out, want)
    with pytest.raises(ValueError, match="dare: got 1 generators for 2 models"):
        dare(base, [x, y], [0.7, 0.4], [0.3, 0.6], generator=[gen(21)])


def test_dare_shared_generator_density_one_does_not_shift_later_masks():
    base = torch.zeros(200)
    x, y = torch.randn(200, generator=gen(1)), torch.randn(200, generator=gen(2))
    # model 0 has weight 0: the result is model 1's sparsified vector alone, whatever model 0's density
    outs = [dare(base, [x, y], [0.0, 1.0], [d0, 0.5], generator=gen(5)) for d0 in (0.3, 0.8, 1.0)]
    assert (outs[0] != 0).sum() > 0
    for o in outs[1:]:
        assert torch.equal(o, outs[0])


def test_magnitude_trim_on_tensor_too_large_for_quantile():
    n = 17_000_000
    x = torch.randn(n, generator=gen(0))
    with pytest.raises(RuntimeError, match="too large"):  # the size limit ties must not hit
        torch.quantile(torch.zeros(1).expand(n), 0.9)
    out = ties(torch.zeros(n), [x], [1.0], [0.1])
    kept = int((out != 0).sum())
    assert 1_700_000 <= kept <= 1_700_010  # k = 10% (+ any exact ties at the threshold)
    assert float(out.abs()[out != 0].min()) >= float(x.abs()[out == 0].max())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_dtype_is_preserved(dtype):
    base, x, y = (torch.randn(4, 3, generator=gen(i)).to(dtype) for i in range(3))
    assert linear([x, y], [0.5, 0.5]).dtype == dtype
    assert task_arithmetic(base, [x, y], [0.5, 0.5]).dtype == dtype
    assert ties(base, [x, y], [0.5, 0.5], [0.5, 0.5]).dtype == dtype
    assert dare(base, [x, y], [0.5, 0.5], [0.5, 0.5], generator=gen(0)).dtype == dtype
    out = dare_ties(base, [x, y], [0.5, 0.5], [0.5, 0.5], generator=gen(0))
    assert out.dtype == dtype and torch.isfinite(out.float()).all()


# Half precision against a float64 reference written here (numpy, the ops' formulas by hand). The
# inputs are the half tensors' exact values; the sparse ops compute in float32 and round the result
# once into the half type (at most half an ulp), slerp computes in the half type itself (a few more
# roundings). Four machine epsilons of relative and absolute error cover both:
# float16 eps = 2**-10, bfloat16 eps = 2**-7.
HALF_TOL = {torch.float16: 4 * 2.0**-10, torch.bfloat16: 4 * 2.0**-7}
W2, D2 = [0.7, 0.4], [0.5, 0.75]


def np_trim(d: np.ndarray, density: float) -> np.ndarray:
    k = max(1, round(density * d.size))
    keep = np.zeros(d.size, dtype=bool)
    keep[np.argsort(-np.abs(d).ravel())[:k]] = True
    return np.where(keep.reshape(d.shape), d, 0.0)


def np_elect(vs: list[np.ndarray], ws: list[float], normalize: bool) -> np.ndarray:
    v = np.stack(vs)
    elected = np.sign(v.sum(0))
    agree = (np.sign(v) == elected) & (v != 0)
    delta = np.where(agree, v, 0.0).sum(0)
    if not normalize:
        return delta
    div = np.where(agree, np.array(ws)[:, None, None], 0.0).sum(0)
    return np.where(div != 0, delta / np.where(div != 0, div, 1.0), 0.0)


def np_slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    omega = np.arccos(np.clip(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0))
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def half_case(dtype):
    base, x, y = (torch.randn(4, 6, generator=gen(i)).to(dtype) for i in range(3))
    nb, nx, ny = (t.double().numpy() for t in (base, x, y))
    for d in (nx - nb, ny - nb):  # no tied magnitudes: the top-k sets are unambiguous
        assert np.unique(np.abs(d)).size == d.size
    return (base, x, y), (nb, nx, ny)


def dare_masks(shape) -> list[np.ndarray]:
    return [(torch.rand(shape, generator=gen(31 + i)) < D2[i]).numpy() for i in range(2)]


def np_ties(nb, nx, ny):
    vs = [w * np_trim(t - nb, d) for t, w, d in zip((nx, ny), W2, D2, strict=True)]
    return nb + np_elect(vs, W2, normalize=True)


def np_dropped(nb, nx, ny) -> list[np.ndarray]:
    """``w_i * mask_i * (theta_i - base) / density_i`` for the two models."""
    masks = dare_masks(nb.shape)
    return [w * np.where(m, t - nb, 0.0) / d for t, w, d, m in zip((nx, ny), W2, D2, masks, strict=True)]


def np_split_slerp(nb, nx, ny):
    before, after = np_slerp(nx, ny, 0.3).ravel()[:10], np_slerp(nx, ny, 0.7).ravel()[10:]
    return np.concatenate([before, after]).reshape(nx.shape)


HALF_CASES = {
    "linear": (lambda b, x, y: linear([x, y], W2),
               lambda nb, nx, ny: (W2[0] * nx + W2[1] * ny) / sum(W2)),
    "task_arithmetic": (lambda b, x, y: task_arithmetic(b, [x, y], W2),
                        lambda nb, nx, ny: nb + W2[0] * (nx - nb) + W2[1] * (ny - nb)),
    "ties": (lambda b, x, y: ties(b, [x, y], W2, D2), np_ties),
    "dare": (lambda b, x, y: dare(b, [x, y], W2, D2, generator=[gen(31), gen(32)]),
             lambda nb, nx, ny: nb + sum(np_dropped(nb, nx, ny))),
    "dare_ties": (lambda b, x, y: dare_ties(b, [x, y], W2, D2, generator=[gen(31), gen(32)]),
                  lambda nb, nx, ny: nb + np_elect(np_dropped(nb, nx, ny), W2, normalize=False)),
    "slerp": (lambda b, x, y: slerp(x, y, 0.3), lambda nb, nx, ny: np_slerp(nx, ny, 0.3)),
    "split_slerp": (lambda b, x, y: split_slerp(x, y, 0.3, 10), np_split_slerp),
}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list(HALF_CASES))
def test_half_precision_matches_float64_reference(name, dtype):
    (base, x, y), (nb, nx, ny) = half_case(dtype)
    op, ref = HALF_CASES[name]
    out = op(base, x, y)
    assert out.dtype == dtype
    want = torch.from_numpy(ref(nb, nx, ny))
    tol = HALF_TOL[dtype]
    torch.testing.assert_close(out.double(), want, rtol=tol, atol=tol)


def test_bf16_matches_float32_computation():
    base, x = torch.randn(8, generator=gen(0)).bfloat16(), torch.randn(8, generator=gen(1)).bfloat16()
    ref = ties(base.float(), [x.float()], [0.8], [0.5]).bfloat16()
    assert torch.equal(ties(base, [x], [0.8], [0.5]), ref)


def test_slerp_endpoints_and_split():
    a, b = torch.randn(10, generator=gen(0)), torch.randn(10, generator=gen(1))
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    torch.testing.assert_close(split_slerp(a, b, 0.0, 10), a)   # split = n: t everywhere
    torch.testing.assert_close(split_slerp(a, b, 0.0, 0), b)    # split = 0: 1 - t everywhere
    torch.testing.assert_close(split_slerp(a, b, 0.3, 0), slerp(a, b, 0.7))
    torch.testing.assert_close(split_slerp(a, b, 0.3, 10), slerp(a, b, 0.3))


@pytest.mark.parametrize(("call", "match"), [
    (lambda: ties(torch.zeros(3), [torch.zeros(3), torch.zeros(4)], [1, 1], [1, 1]),
     r"tensor 1 has shape \(4,\) but base has shape \(3,\)"),
    (lambda: ties(torch.zeros(3), [torch.zeros(3)], [1, 1], [1]), "got 2 weights for 1 models"),
    (lambda: ties(torch.zeros(3), [torch.zeros(3)], [1], [0.5, 0.5]), "got 2 densities for 1 models"),
    (lambda: ties(torch.zeros(3), [torch.zeros(3)], [1], [0.0]), r"densities must be in \(0, 1\]"),
    (lambda: dare(torch.zeros(3), [torch.zeros(3)], [1], [1.5]), r"dare: densities must be in \(0, 1\]"),
    (lambda: linear([torch.zeros(2), torch.ones(2)], [0.5, -0.5]), "weights sum to 0"),
    (lambda: linear([], []), "no model tensors"),
    (lambda: linear([torch.zeros(2), torch.zeros(3)], [1, 1]), "tensor 0 has shape"),
    (lambda: task_arithmetic(torch.zeros(2, dtype=torch.long), [torch.zeros(2)], [1]), "floating point"),
    (lambda: sparse_merge(torch.zeros(2), [torch.zeros(2)], [1], [1], sparsify="top"), "sparsify must be"),
    (lambda: layer_path([2, 2], 2, [0.0] * 8, torch.ones(4, 4)), "layer_path: no layer selected"),
    (lambda: layer_path([2, 2], 2, [1.0] * 7, torch.ones(4, 4)), "indicator has 7 genes, expected"),
    (lambda: layer_path([2, 2], 1, [1.0] * 4, torch.ones(3, 3)), "M x M matrix with M = 4"),
])
def test_errors_name_the_problem(call, match):
    with pytest.raises((ValueError, CandidateError), match=match):
        call()


@pytest.mark.parametrize("call", [
    lambda: linear([torch.zeros(2), torch.ones(2)], [0.5, -0.5]),
    lambda: task_arithmetic(torch.zeros(2), [torch.ones(2)] * 2, [0.0, 0.0], normalize=True),
    lambda: layer_path([2, 2], 2, [0.0] * 8, torch.ones(4, 4)),
])
def test_recipe_that_cannot_work_is_a_candidate_error(call):
    """A recipe a search can legitimately propose but that gives no model is a failed candidate;
    misuse of an op (wrong shapes, bad arguments) stays a ValueError, i.e. a bug."""
    with pytest.raises(CandidateError):
        call()
    with pytest.raises(ValueError):
        ties(torch.zeros(3), [torch.zeros(4)], [1], [1])
    assert not issubclass(CandidateError, ValueError)


def test_merge_state_dicts_per_tensor_knobs_and_buffers():
    base = {"w": torch.zeros(2), "b": torch.ones(1), "step": torch.tensor(3)}
    s1 = {"w": T([1.0, 2.0]), "b": T([2.0]), "step": torch.tensor(9)}
    s2 = {"w": T([3.0, -2.0]), "b": T([0.0]), "step": torch.tensor(9)}
    out = merge_state_dicts("task_arithmetic", base, [s1, s2], weights={"w": [1.0, 0.5], "b": [0.0, 1.0]})
    assert list(out) == ["w", "b", "step"]
    torch.testing.assert_close(out["w"], T([2.5, 1.0]))
    torch.testing.assert_close(out["b"], T([0.0]))
    assert out["step"] is base["step"]  # integer buffers pass through from base
    out = merge_state_dicts(linear, None, [s1, s2], weights=[{"w": 1.0, "b": 0.0}, 1.0])
    torch.testing.assert_close(out["w"], T([2.0, 0.0]))
    out = merge_state_dicts(slerp, None, [s1, s2], t=0.0)  # positional ops (a, b, t)
    torch.testing.assert_close(out["w"], s1["w"])
    with pytest.raises(ValueError, match="knob 'weights' has no value for tensor 'b'"):
        merge_state_dicts("linear", None, [s1, s2], weights={"w": [1.0, 1.0]})
    with pytest.raises(ValueError, match="needs a base state dict"):
        merge_state_dicts(ties, None, [s1, s2], weights=[1, 1], densities=[1, 1])
    with pytest.raises(ValueError, match="keys differ"):
        merge_state_dicts(linear, None, [s1, {"w": s2["w"]}], weights=[1, 1])


def test_layer_path_hand_example():
    # 2 models x 2 layers, r = 2: M = 4, T = 8; slot t holds global layer t mod 4
    # globals: 0 = (0,0), 1 = (0,1), 2 = (1,0), 3 = (1,1)
    indicator = [0.9, 0.1, 0.7, 0.6, 0.2, 0.51, 0.5, 0.0]  # slots 0, 2, 3, 5 (0.5 is not > 0.5)
    w = torch.arange(16, dtype=torch.float64).reshape(4, 4) / 10  # W[i, j] = (4i + j) / 10
    out = layer_path([2, 2], 2, indicator, w)
    assert isinstance(out, LayerPath)
    # slots 0, 2, 3, 5 -> globals 0, 2, 3, 1
    assert out.path == [(0, 0), (1, 0), (1, 1), (0, 1)]
    # scales: 1.0, W[0,2] = 0.2, W[2,3] = 1.1, W[3,1] = 1.3
    assert out.scales == pytest.approx([1.0, 0.2, 1.1, 1.3])
    path, scales = layer_path([2, 2], 2, indicator, w.reshape(-1).tolist())  # flat row-major W, unpacking
    assert path == out.path and scales == out.scales


def test_layer_path_uneven_sources_and_repeat():
    assert [global_layer([1, 3], g) for g in range(4)] == [(0, 0), (1, 0), (1, 1), (1, 2)]
    out = layer_path([1, 3], 2, [0, 0, 0, 1, 0, 0, 0, 1], torch.eye(4) * 2)  # slots 3, 7 -> global 3 twice
    assert out.path == [(1, 2), (1, 2)]
    assert out.scales == [1.0, 2.0]


def test_ops_are_registered_with_knobs():
    for name in ("linear", "task_arithmetic", "ties", "dare", "dare_ties", "layer_path"):
        op = MERGE_OPS.get(name)
        assert op.op_name == name and op.knobs
    assert {k.name for k in MERGE_OPS.get("dare_ties").knobs} == {"weight", "density"}
    assert all(k.per_model for k in ties.knobs)
    assert [k.name for k in layer_path.knobs] == ["indicator", "scale"]
