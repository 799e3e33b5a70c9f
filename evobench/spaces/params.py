"""Raw parameter space (model-space evolution: M2N2, GA, MAP-Elites, CMA-ES from scratch).

The genome is the flattened parameter vector in the family's flattening order, unbounded, because
SLERP, split points and Gaussian mutation are defined in parameter units. ``initial`` gives the
starting models (the pool's sources, or fresh samples); ``sample`` draws fresh models from the
pool's sampler.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from evobench.models.base import ModelPool
from evobench.spaces.base import MergeSpace, SpaceError


class ParamSpace(MergeSpace):
    kind = "params"

    def __init__(self, pool: ModelPool) -> None:
        self.pool, self.family = pool, pool.family
        n = self.family.n_params
        super().__init__(n, np.full(n, -np.inf), np.full(n, np.inf))
        self._buffer: np.ndarray | None = None  # the float32 weights of the last built model
        self._views: dict[str, torch.Tensor] = {}

    def _flat(self, state) -> np.ndarray:
        return self.family.flatten(state).detach().to(torch.float64).numpy()

    def initial(self, rng: np.random.Generator) -> np.ndarray:
        return np.stack([self._flat(s) for s in self.pool.starting_states(rng)])

    def starting_genomes(self, states: list) -> tuple[list[int], np.ndarray]:
        return list(range(len(states))), np.stack([self._flat(s) for s in states])

    def sample(self, rng: np.random.Generator, k: int) -> np.ndarray:
        if self.pool.sampler is None:
            raise SpaceError(f"params space of {self.family.name!r}: the model pool has no sampler "
                             "of fresh models (it starts from trained sources)")
        return np.stack([self._flat(self.pool.sampler(rng)) for _ in range(k)])

    def decode(self, x: np.ndarray) -> dict:
        x = np.ascontiguousarray(x, dtype=np.float64)
        return {"kind": "params", "family": self.family.name, "n_params": int(x.size),
                "sha256": hashlib.sha256(x.tobytes()).hexdigest(),
                "norm": float(np.linalg.norm(x))}

    def state(self, x: np.ndarray) -> dict[str, torch.Tensor]:
        return self.family.unflatten(torch.from_numpy(np.asarray(x, dtype=np.float32)))

    def build(self, x: np.ndarray):
        """The model of genome ``x``, its weights in one float32 buffer of the space, reused by the
        next ``build`` (candidates are built and scored one at a time; ``state_dict`` gives a copy to
        keep). The same floats as ``state(x)``: the float64 -> float32 cast rounds alike."""
        if self._buffer is None:
            self._buffer = np.empty(self.dim, dtype=np.float32)
            self._views = self.family.unflatten(torch.from_numpy(self._buffer))
        x = np.asarray(x)
        if x.shape != self._buffer.shape:
            raise ValueError(f"params space of {self.family.name!r}: a genome has {self.dim} genes, got shape {x.shape}")
        np.copyto(self._buffer, x, casting="same_kind")
        return self.family.build(self._views)

    def state_dict(self, x: np.ndarray) -> dict[str, torch.Tensor]:
        return self.state(x)
