"""evobench.draws.choice draws exactly what Generator.choice draws, and leaves the same generator state."""

from __future__ import annotations

import numpy as np
import pytest

from evobench.draws import choice


def _weights(seed: int, n_min: int) -> np.ndarray | None:
    r = np.random.default_rng(seed)
    w = r.random(int(r.integers(n_min, 40))) * 10.0 ** float(r.integers(-3, 4))
    w[r.random(w.size) < 0.35] = 0.0  # empty or zero-fitness members
    if r.random() < 0.1:
        w[:] = np.round(w)  # ties and integer-valued fitness
    return w / w.sum() if np.count_nonzero(w) >= n_min else None


@pytest.mark.parametrize(("replace", "size"), [(True, (1, 2)), (True, 3), (False, 2), (False, (2,))])
def test_choice_is_generator_choice(replace, size):
    n_min = 1 if replace else int(np.prod(size))
    checked = 0
    for seed in range(2000):
        p = _weights(seed, n_min)
        if p is None:
            continue
        a, b = np.random.default_rng(seed + 7), np.random.default_rng(seed + 7)
        want = a.choice(len(p), size=size, replace=replace, p=p)
        got = choice(b, size, p, replace=replace)
        assert got.shape == want.shape and np.array_equal(got, want), (seed, p)
        assert a.random() == b.random(), f"seed {seed}: the generators drew different amounts"
        checked += 1
    assert checked > 1000


def test_choice_without_replacement_redraws_a_repeat():
    # one member carries almost all the weight: the first draw of two usually repeats it, so the
    # second index comes from a redraw over the others, as Generator.choice does it
    p = np.array([0.97, 0.01, 0.01, 0.01])
    for seed in range(200):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        got = choice(b, 2, p, replace=False)
        assert np.array_equal(got, a.choice(4, size=2, replace=False, p=p))
        assert got[0] != got[1]
