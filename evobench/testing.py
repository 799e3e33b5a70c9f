"""Test helpers that third-party methods can use too: toy spaces and a toy objective.

``ToySpace`` is a merge space whose "model" is the genome itself; ``toy_evaluation`` scores genomes
on synthetic examples so per-example scores, descriptors and failures all exist without a model.
The baseline contract suite (``BaselineContract``) lives in :mod:`evobench.contract`.
"""

from __future__ import annotations

import numpy as np

from evobench.evaluation import Evaluation
from evobench.spaces.base import MergeSpace


class ToySpace(MergeSpace):
    """A space of ``kind`` whose model is the decoded vector (box [0,1]^dim, or unbounded ``params``
    with float32 genomes, as the real parameter space)."""

    def __init__(self, kind: str = "ps", dim: int = 6, n_start: int = 2, segments: dict | None = None) -> None:
        self.kind = kind
        if kind == "params":
            self.dtype = np.float32
            lo, hi = np.full(dim, -np.inf), np.full(dim, np.inf)
        else:
            lo, hi = np.zeros(dim), np.ones(dim)
        super().__init__(dim, lo, hi, segments)
        self.n_start = n_start

    def decode(self, x):
        return {"x": np.asarray(x, dtype=float).tolist()}

    def build(self, x):
        return np.asarray(x, dtype=float)

    def sample(self, rng, k):
        if self.kind == "params":
            return rng.normal(0.0, 0.01, size=(k, self.dim)).astype(self.dtype)
        return super().sample(rng, k)

    def initial(self, rng):
        if self.kind == "params":
            return rng.normal(0.0, 0.01, size=(self.n_start, self.dim)).astype(self.dtype)
        return super().initial(rng)

    def reference_genome(self) -> np.ndarray:
        return (self.lower + self.upper) / 2.0 if self.bounded else np.zeros(self.dim)


def toy_targets(dim: int, n_examples: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random example directions and thresholds for :func:`toy_evaluation`."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_examples, dim)), rng.normal(scale=0.1, size=n_examples)


def toy_evaluation(x: np.ndarray, n_examples: int = 32, seed: int = 0, fail: np.ndarray | None = None,
                   target: float = 0.3) -> Evaluation:
    """Score genomes ``x`` (k, dim): example j is solved when ``a_j · (x - target) < b_j`` style tests.

    Per-example scores are 0/1, value = mean score plus a smooth term so optimisers have a gradient,
    descriptors = mean score on even / odd examples. Rows in ``fail`` come back as failed (NaN).
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    a, b = toy_targets(x.shape[1], n_examples, seed)
    d = x - target
    scores = (np.abs(d @ a.T) / np.sqrt(x.shape[1]) < 0.2 + np.abs(b)).astype(float)
    value = scores.mean(axis=1) - 0.1 * np.mean(d * d, axis=1)
    desc = np.stack([scores[:, 0::2].mean(axis=1), scores[:, 1::2].mean(axis=1)], axis=1)
    errors: list[str | None] = [None] * x.shape[0]
    if fail is not None:
        value = value.copy()
        value[fail] = np.nan
        for i in np.arange(x.shape[0])[fail]:
            errors[i] = "toy failure"
    return Evaluation(value=value, scores=scores, descriptors=desc, errors=errors)
