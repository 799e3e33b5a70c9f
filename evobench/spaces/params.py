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
        return self.family.build(self.state(x))

    def state_dict(self, x: np.ndarray) -> dict[str, torch.Tensor]:
        return self.state(x)
