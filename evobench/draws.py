"""Weighted index draws, the same as ``numpy.random.Generator.choice(n, size, replace, p)``, cheaper.

Roulette selection (GA, MAP-Elites) draws two parents per evaluation. ``Generator.choice`` checks
its arguments on every call (the sign and the sum of ``p``, the shapes), which costs more than the
draw itself at 20 members. :func:`choice` makes the draw with numpy's own algorithm and nothing
else, so it returns the same indices and leaves the generator in the same state: a run is the same
bit for bit. ``tests/test_draws.py`` holds it to ``Generator.choice`` over thousands of random
weight vectors, so a numpy release that changes the algorithm fails there (numpy is pinned in
``constraints.txt``).

The caller gives valid probabilities (non-negative, summing to 1 up to rounding, with at least
``size`` non-zero entries when drawing without replacement): nothing here checks them.
"""

from __future__ import annotations

import numpy as np


def choice(rng: np.random.Generator, size: int | tuple[int, ...], p: np.ndarray, replace: bool = True) -> np.ndarray:
    """``rng.choice(len(p), size=size, replace=replace, p=p)`` without its argument checks."""
    if replace:
        cdf = np.cumsum(p)
        cdf /= cdf[-1]
        return cdf.searchsorted(rng.random(size), side="right")
    n = int(np.prod(size))
    p = np.array(p, dtype=float)  # zeroed where drawn
    found = np.zeros(n, dtype=np.int64)
    k = 0
    while k < n:
        u = rng.random((n - k,))
        if k > 0:
            p[found[:k]] = 0.0
        cdf = np.cumsum(p)
        cdf /= cdf[-1]
        new = cdf.searchsorted(u, side="right")
        _, first = np.unique(new, return_index=True)
        first.sort()
        new = new.take(first)
        found[k:k + new.size] = new
        k += new.size
    return found.reshape(size)
