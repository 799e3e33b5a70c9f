"""Float32 genomes in the parameter space: SLERP against a float64 reference, the angle's sums in
float64, and float32 end to end through the baselines that hold parameter genomes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evobench.baselines.ga import GaussianMutation, GenomeProblem
from evobench.merge import slerp as slerp_mod
from evobench.merge.slerp import _angle, slerp, split_slerp, sq_norm
from evobench.registry import BASELINES, TASKS
from evobench.runner import run_one
from evobench.spaces import make_space
from evobench.testing import ToySpace, toy_evaluation

F32_EPS = float(np.finfo(np.float32).eps)


def reference_split_slerp(a: np.ndarray, b: np.ndarray, t: float, k: int, eps: float = 1e-6) -> np.ndarray:
    """M2N2's split SLERP written here in float64 numpy from the formulas (one global angle)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = math.acos(min(max(cos, -1.0), 1.0))
    out = np.empty_like(a)
    for w, sl in ((t, slice(0, k)), (1.0 - t, slice(k, a.size))):
        if math.sin(omega) <= eps:
            ca, cb = 1.0 - w, w
        else:
            ca, cb = math.sin((1.0 - w) * omega) / math.sin(omega), math.sin(w * omega) / math.sin(omega)
        out[sl] = ca * a[sl] + cb * b[sl]
    return out


def f32_pair(n: int, seed: int, near: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 vectors ~ N(0.01, 0.05²); with ``near``, b = a + near * noise (near-parallel)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.01, 0.05, n).astype(np.float32)
    b = (a + near * rng.normal(0.0, 0.05, n) if near is not None else rng.normal(0.01, 0.05, n)).astype(np.float32)
    return a, b


@pytest.mark.parametrize("near", [None, 1e-2])
@pytest.mark.parametrize(("t", "k"), [(0.3, 0), (0.7, 123_457), (0.05, 200_000)])
def test_float32_split_slerp_matches_float64_reference(near, t, k):
    a, b = f32_pair(200_000, seed=k, near=near)
    out = split_slerp(torch.from_numpy(a), torch.from_numpy(b), t, k)
    assert out.dtype == torch.float32
    ref = reference_split_slerp(a, b, t, k)
    # float32 rounding of the two products and their sum: a few ulps of the terms' magnitude
    scale = np.abs(a.astype(np.float64)) + np.abs(b.astype(np.float64))
    assert np.all(np.abs(out.numpy() - ref) <= 4 * F32_EPS * scale + 1e-30)


def test_float32_slerp_matches_float64_reference():
    a, b = f32_pair(50_000, seed=3)
    out = slerp(torch.from_numpy(a), torch.from_numpy(b), 0.4).numpy()
    ref = reference_split_slerp(a, b, 0.4, a.size)
    np.testing.assert_allclose(out, ref, rtol=0, atol=4 * F32_EPS * float(np.abs(ref).max()))


@pytest.mark.parametrize("near", [None, 1e-3])
def test_angle_sums_of_float32_vectors_are_accumulated_in_float64(near):
    # a float32 sum of 10^6 terms is off by ~1e-8 relative; float64 accumulation of the exact
    # float64 products agrees with the float64 reference to ~1e-15
    a, b = f32_pair(1_000_003, seed=7, near=near)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert sq_norm(torch.from_numpy(a)) == pytest.approx(float(np.dot(a64, a64)), rel=1e-12)
    omega, _ = _angle(torch.from_numpy(a), torch.from_numpy(b))
    cos_ref = float(np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64)))
    assert math.cos(omega) == pytest.approx(cos_ref, rel=0, abs=1e-12)


def test_angle_sums_off_numpy_cover_every_chunk(monkeypatch):
    # bfloat16 (numpy has none) takes the torch path, which casts chunk by chunk
    monkeypatch.setattr(slerp_mod, "CHUNK", 1000)  # 10 chunks and a 7-element tail
    a, b = (torch.from_numpy(x).to(torch.bfloat16) for x in f32_pair(10_007, seed=1))
    a64, b64 = a.double().numpy(), b.double().numpy()
    assert sq_norm(b) == pytest.approx(float(np.dot(b64, b64)), rel=1e-13)
    omega, _ = _angle(a, b)
    cos_ref = float(np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64)))
    assert math.cos(omega) == pytest.approx(cos_ref, rel=0, abs=1e-13)
    out = split_slerp(a, b, 0.3, 4000)
    assert out.dtype == torch.bfloat16


def test_float64_inputs_keep_float64():
    a, b = (torch.from_numpy(x.astype(np.float64)) for x in f32_pair(1000, seed=2))
    out = split_slerp(a, b, 0.25, 400)
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), reference_split_slerp(a.numpy(), b.numpy(), 0.25, 400),
                               rtol=1e-12, atol=1e-15)


# ---- float32 end to end -------------------------------------------------------------------------
class RecordingSpace(ToySpace):
    """A float32 params toy space that records the dtype of every genome array a baseline hands it."""

    def __init__(self, dim: int) -> None:
        super().__init__("params", dim)
        self.seen: set = set()

    def check(self, x):
        self.seen.add(np.asarray(x).dtype)
        return super().check(x)


@pytest.mark.parametrize("name", ["m2n2", "ga", "map-elites", "random-search", "brute-force-slerp"])
def test_parameter_genomes_stay_float32_without_float64_copies(name):
    space = RecordingSpace(16)
    b = BASELINES.get(name)().setup(space, budget=120, seed=0)
    x0 = space.initial(np.random.default_rng(0))
    b.seed(x0, toy_evaluation(x0))
    while b.remaining:
        x = b.ask()
        b.tell(x, toy_evaluation(x))
    assert space.seen == {np.dtype(np.float32)}  # what _ask produced, before any cast
    assert b.recommend().dtype == np.float32


def test_population_and_archive_arrays_are_float32():
    space = ToySpace("params", 16)
    held = {}
    for name in ("m2n2", "ga", "map-elites"):
        b = BASELINES.get(name)().setup(space, budget=60, seed=0)
        x0 = space.initial(np.random.default_rng(0))
        b.seed(x0, toy_evaluation(x0))
        while b.remaining:
            x = b.ask()
            b.tell(x, toy_evaluation(x))
        held[name] = {"m2n2": lambda b=b: b.params, "ga": lambda b=b: b.algorithm.pop.get("X"),
                      "map-elites": lambda b=b: b.algorithm.X}[name]()
    assert {k: v.dtype for k, v in held.items()} == dict.fromkeys(held, np.dtype(np.float32))
    assert held["m2n2"].nbytes == 20 * 16 * 4  # archive_size x dim x 4 bytes


def test_gaussian_mutation_in_float32():
    X = np.zeros((4, 5000), dtype=np.float32)
    problem = GenomeProblem(ToySpace("params", 5000))
    Y = GaussianMutation(0.5)._do(problem, X, random_state=np.random.default_rng(0))
    assert Y.dtype == np.float32 and not np.shares_memory(X, Y) and not X.any()
    assert abs(Y.std() - 0.5) < 0.01 and abs(Y.mean()) < 0.01
    # the documented stream: torch's float32 normal_ seeded by ONE draw of pymoo's random_state
    seed = int(np.random.default_rng(0).integers(2**63))
    want = torch.empty(X.shape).normal_(0.0, 0.5, generator=torch.Generator().manual_seed(seed)).numpy()
    np.testing.assert_array_equal(Y, want)


def test_m2n2_mutation_is_float32_normal():
    space = ToySpace("params", 20_000)
    b = BASELINES.get("m2n2-no-crossover")(archive_size=1, mutation_std=0.01).setup(space, budget=10, seed=0)
    x0 = np.zeros((1, 20_000), dtype=np.float32)
    b.seed(x0, toy_evaluation(x0))
    child = b.ask()[0]
    assert child.dtype == np.float32
    assert abs(child.std() - 0.01) < 0.0002 and abs(child.mean()) < 4 * 0.01 / np.sqrt(20_000)
    # a normality check of the float32 draw: the fraction beyond 2 sigma is 4.55 %
    assert abs(np.mean(np.abs(child) > 0.02) - 0.0455) < 0.005


def test_digits_params_run_is_float32_end_to_end():
    problem = TASKS.get("digits-scratch")()
    space = make_space("params", problem, 0)
    b = BASELINES.get("m2n2")()
    r = run_one(problem, b, space, 40, seed=0)
    assert r.evaluations == 40 and b.params.dtype == np.float32 and b.best_x.dtype == np.float32
    rec = b.recommend()
    assert r.recipe["sha256"] == __import__("hashlib").sha256(rec.tobytes()).hexdigest()
    assert r.recipe["norm"] == pytest.approx(float(np.linalg.norm(rec.astype(np.float64))), rel=1e-12)
