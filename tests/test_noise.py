"""Gaussian mutation noise (evobench.noise): distribution, dtype, reproducibility, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evobench.noise import add_gaussian_


def test_noise_is_normal_with_the_asked_std_in_the_genome_dtype():
    x = np.full(200_000, 3.0, dtype=np.float32)
    out = add_gaussian_(x, 0.25, np.random.default_rng(1))
    assert out is x and x.dtype == np.float32
    z = (x.astype(np.float64) - 3.0) / 0.25
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.std() - 1.0) < 0.01
    assert stats.kstest(z[:20_000], "norm").pvalue > 1e-3  # a normal, not just the right moments
    assert abs(np.mean(np.abs(z) > 2) - 0.0455) < 0.003


def test_float64_genomes_get_float64_noise():
    x = np.zeros(1000)
    add_gaussian_(x, 1.0, np.random.default_rng(0))
    assert x.dtype == np.float64 and len(np.unique(x.astype(np.float32))) == 1000


def test_a_run_depends_only_on_the_numpy_generator():
    a, b = np.zeros(500, np.float32), np.zeros(500, np.float32)
    ra, rb = np.random.default_rng(7), np.random.default_rng(7)
    add_gaussian_(a, 0.1, ra)
    add_gaussian_(np.zeros(3, np.float32), 0.1, np.random.default_rng(99))  # another stream in between
    add_gaussian_(b, 0.1, rb)
    np.testing.assert_array_equal(a, b)
    # each call takes exactly one draw from the numpy generator, and consecutive calls differ
    c = add_gaussian_(np.zeros(500, np.float32), 0.1, ra)
    assert not np.array_equal(a, c)
    r = np.random.default_rng(7)
    r.integers(2**63), r.integers(2**63)
    assert ra.integers(2**63) == r.integers(2**63)


def test_zero_std_draws_nothing_and_bad_input_is_refused():
    rng = np.random.default_rng(3)
    x = np.ones(10, np.float32)
    add_gaussian_(x, 0.0, rng)
    assert (x == 1).all() and rng.integers(2**63) == np.random.default_rng(3).integers(2**63)
    with pytest.raises(ValueError, match="std must be finite"):
        add_gaussian_(x, -1.0, rng)
    with pytest.raises(ValueError, match="std must be finite"):
        add_gaussian_(x, float("nan"), rng)
    with pytest.raises(ValueError, match="buf is"):
        add_gaussian_(x, 1.0, rng, buf=np.empty(10, np.float64))
