"""Merge-space contract: the one place where a genome becomes a model.

Recipe spaces (PS knobs, DFS layer paths) live in the unit box [0,1]^n. The raw parameter space of
model-space evolution (M2N2, GA from scratch) is unbounded: its genome *is* the flattened parameter
vector, because SLERP, split points and Gaussian mutation are defined in parameter units.

Each space fixes the dtype of its genomes (``MergeSpace.dtype``): float64 for recipe spaces, float32
for the parameter space (the models' own precision: a float64 genome of a language model would take
twice the memory for nothing). ``check`` casts to it, so a baseline's asked and told genomes always
have it; baselines that hold genomes (archives, populations) allocate them in it.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class SpaceError(ValueError):
    """A space cannot be built for this problem (one line, names the problem)."""


class MergeSpace(ABC):
    kind: str = ""
    dtype: type[np.floating] = np.float64  # the dtype of this space's genomes (see the module docstring)

    def __init__(self, dim: int, lower: np.ndarray, upper: np.ndarray,
                 segments: dict[str, slice] | None = None) -> None:
        self.dim = int(dim)
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        self.segments = segments or {"all": slice(0, self.dim)}

    @property
    def bounded(self) -> bool:
        return bool(np.all(np.isfinite(self.lower)) and np.all(np.isfinite(self.upper)))

    @abstractmethod
    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """Genome -> recipe (plain, JSON-serialisable data)."""

    @abstractmethod
    def build(self, x: np.ndarray) -> Any:
        """Genome -> runnable model, in memory. Deterministic: same genome, same model. The model
        may live in buffers the next ``build`` of this space reuses (one merged model alive at once,
        as the runner builds and scores candidates one at a time): score it before building another,
        or keep ``state_dict(x)``."""

    def state_dict(self, x: np.ndarray) -> dict[str, Any] | None:
        """The weights of genome ``x``'s model as a state dict (a layer path: the plain model it folds
        into, :mod:`evobench.merge.fold`), or None when the model is not one. A layer path that does not
        fold raises :class:`~evobench.errors.FoldError`: its recipe is then the complete record."""
        return None

    def sample(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``k`` genomes from the space's prior (uniform over the box for recipe spaces)."""
        return rng.uniform(self.lower, self.upper, size=(k, self.dim))

    def initial(self, rng: np.random.Generator) -> np.ndarray:
        """The default starting point of a search ``(m, dim)``: the box centre (a CMA-ES mean, say).
        It is not scored by the runner; the scored starting models are :meth:`starting_genomes`."""
        return ((self.lower + self.upper) / 2.0)[None, :]

    def starting_genomes(self, states: list) -> tuple[list[int], np.ndarray]:
        """Genomes that build the given starting models exactly, for those this space can express:
        ``(indices into states, genomes (k, dim))``. The runner scores every starting model once
        (free, the same for every baseline) and seeds the baseline with these genomes."""
        return [], np.zeros((0, self.dim))

    def clip(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lower, self.upper) if self.bounded else x

    def check(self, x: np.ndarray) -> np.ndarray:
        """``x`` as genomes ``(k, dim)`` of this space's dtype (no copy when it already is)."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{self.kind} space: genomes must have shape (k, {self.dim}), got {x.shape}")
        return x

    def recipe_json(self, x: np.ndarray) -> str:
        from evobench.jsonio import dumps

        return dumps(self.decode(np.asarray(x, dtype=self.dtype)), indent=None, sort_keys=True)

    def candidate_key(self, x: np.ndarray) -> str:
        """What identifies genome ``x``'s model exactly, for the evaluation cache
        (:mod:`evobench.evalcache`): here the SHA-256 of the genome itself. A space whose genomes
        map many-to-one onto models (clipped knobs, a discrete layer path) keys on the exact model
        description instead, so that those genomes share one entry; never on the rounded recipe of
        :meth:`decode`, which two different models can share."""
        return "genome:" + hashlib.sha256(np.ascontiguousarray(x, dtype=self.dtype).tobytes()).hexdigest()

    def genome_hash(self, x: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(x, dtype=self.dtype).tobytes()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "dim": self.dim,
                "segments": {k: [s.start, s.stop] for k, s in self.segments.items()}}
