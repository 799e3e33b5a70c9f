"""Raw parameter space (model-space evolution: M2N2, GA, MAP-Elites, CMA-ES from scratch).

The genome is the flattened parameter vector in the family's flattening order, unbounded, because
SLERP, split points and Gaussian mutation are defined in parameter units. Genomes are float32
(``ParamSpace.dtype``), the precision the models compute in: a genome takes 4 bytes per parameter
(SmolLM2-135M: 0.54 GB), and a model built from a genome views its memory (no copy; lower-precision
families such as bf16 language models are cast when the family builds the model). ``initial``
gives the starting models (the pool's sources, or fresh samples); ``sample`` draws fresh models from
the pool's sampler. The bounds are infinite (stored as zero-stride views, no memory per parameter).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

from evobench.merge.slerp import sq_norm
from evobench.models.base import ModelPool
from evobench.spaces.base import MergeSpace, SpaceError


class ParamSpace(MergeSpace):
    kind = "params"
    dtype = np.float32

    def __init__(self, pool: ModelPool) -> None:
        self.pool, self.family = pool, pool.family
        n = self.family.n_params
        super().__init__(n, np.broadcast_to(-np.inf, n), np.broadcast_to(np.inf, n))
        self._buffer: np.ndarray | None = None  # the float32 weights of the last built model
        self._views: dict[str, torch.Tensor] = {}

    @property
    def bounded(self) -> bool:
        return False

    def _flat(self, state) -> np.ndarray:
        return self.family.flatten(state).detach().to(torch.float32).numpy()

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
        x = np.ascontiguousarray(x, dtype=np.float32)
        return {"kind": "params", "family": self.family.name, "n_params": int(x.size),
                "sha256": hashlib.sha256(x.tobytes()).hexdigest(),
                "norm": math.sqrt(sq_norm(torch.from_numpy(x)))}

    def candidate_key(self, x: np.ndarray) -> str:
        """The SHA-256 of the genome's float32 weights (what ``build`` loads)."""
        return "params:" + hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()

    def state(self, x: np.ndarray) -> dict[str, torch.Tensor]:
        """The genome's tensors: views of ``x`` when it is a writable contiguous float32 vector (an
        asked genome is read-only: then a copy)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.family.unflatten(torch.from_numpy(x if x.flags.writeable else x.copy()))

    def build(self, x: np.ndarray):
        """The model of genome ``x``, its weights in one float32 buffer of the space, reused by the
        next ``build`` (candidates are built and scored one at a time; ``state_dict`` gives a copy to
        keep). The same floats as ``state(x)`` (a genome of another dtype is cast alike)."""
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
