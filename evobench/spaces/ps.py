"""Parameter-space (PS) recipe space: the knobs of a merge op over the pool's sources.

Default (Sakana, "Evolutionary Optimization of Model Merging Recipes"): DARE-TIES over task vectors
relative to the pool's base, one density and one weight per source model, weights not normalised.
Genes live in [0,1] and map linearly onto each knob's declared range. ``granularity="tensor"`` gives
every tensor its own knobs (finer recipes, more genes); ``granularity="layer"`` gives each decoder
layer its own knobs plus one set for the tensors outside the layers (families with ``layer_groups``).

Random drops (DARE) depend only on the recipe: every (tensor, model) pair draws its mask from its own
generator, seeded by :func:`mask_seed` from the space's ``merge_seed``, the tensor's name and the
model's index, on the device of the source tensors. A genome therefore always builds the same model
(on that device), and changing one model's (or one tensor's) knobs never changes the masks drawn
for the others.

Without a shared base (sources trained from independent inits) the base is all zeros: task vectors
are then the weights themselves, and DARE-TIES is a sparsified, sign-elected weighted sum.
"""

from __future__ import annotations

import hashlib
import inspect

import numpy as np
import torch

from evobench.merge.ops import merge_state_dicts
from evobench.models.base import ModelPool
from evobench.registry import MERGE_OPS
from evobench.spaces.base import MergeSpace, SpaceError

_ARGUMENT = {"density": "densities"}


def mask_seed(merge_seed: int, tensor: str, model: int) -> int:
    """Seed of the random-drop stream of one (tensor, model) pair: 63 bits of a SHA-256 of the three."""
    digest = hashlib.sha256(f"{int(merge_seed)}\x00{tensor}\x00{int(model)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def mask_generators(merge_seed: int, names, k: int, device=None) -> dict[str, list[torch.Generator]]:
    """One generator per (tensor, model) for DARE's random drops, seeded by :func:`mask_seed`: a
    recipe's masks depend only on the recipe, wherever it is merged (a candidate, ``evobench merge``)."""
    return {name: [torch.Generator(device=device or "cpu").manual_seed(mask_seed(merge_seed, name, j)) for j in range(k)]
            for name in names}


def _groups(family, granularity: str) -> dict[str, list[str]]:
    """Group name -> tensor names sharing one set of knobs."""
    if granularity == "model":
        return {"*": family.param_names}
    if granularity == "tensor":
        return {t: [t] for t in family.param_names}
    groups = family.layer_groups() if hasattr(family, "layer_groups") else {}
    if not groups:
        raise SpaceError(f"ps space: granularity 'layer' needs a model family with decoder layers; "
                         f"{family.name!r} has none")
    return groups


class PSSpace(MergeSpace):
    kind = "ps"

    def __init__(self, pool: ModelPool, op: str = "dare_ties", granularity: str = "model",
                 merge_seed: int = 0) -> None:
        if len(pool.sources) < 2:
            raise SpaceError(f"ps space needs >= 2 source models, the pool has {len(pool.sources)}")
        if granularity not in ("model", "tensor", "layer"):
            raise SpaceError(f"ps space: granularity must be 'model', 'tensor' or 'layer', got {granularity!r}")
        self.pool, self.family = pool, pool.family
        self.op_name, self.op = op, MERGE_OPS.get(op)
        self.knobs = [k for k in self.op.knobs if k.per_model]
        if not self.knobs:
            raise SpaceError(f"ps space: merge op {op!r} declares no per-model knobs to search")
        self.members = _groups(pool.family, granularity)
        self.groups = list(self.members)
        self.granularity, self.merge_seed = granularity, int(merge_seed)
        self.names = [n for n, _ in pool.sources]
        self.states = [s for _, s in pool.sources]
        self.base = pool.base if pool.base is not None else {
            k: torch.zeros_like(v) for k, v in self.states[0].items()}
        self._takes_generator = "generator" in inspect.signature(self.op).parameters
        self._takes_base = next(iter(inspect.signature(self.op).parameters)) == "base"
        n = len(self.groups) * len(self.knobs) * len(self.names)
        super().__init__(n, np.zeros(n), np.ones(n))

    def _values(self, x: np.ndarray) -> np.ndarray:
        """Decoded knob values, shape (groups, knobs, models)."""
        u = np.asarray(x, dtype=float).reshape(len(self.groups), len(self.knobs), len(self.names))
        lo = np.array([k.low for k in self.knobs])[None, :, None]
        hi = np.array([k.high for k in self.knobs])[None, :, None]
        return lo + (hi - lo) * np.clip(u, 0.0, 1.0)

    def decode(self, x: np.ndarray) -> dict:
        v = self._values(x)
        groups = []
        for g, gname in enumerate(self.groups):
            groups.append({"tensors": gname, "models": [
                {"model": m, **{k.name: round(float(v[g, i, j]), 6) for i, k in enumerate(self.knobs)}}
                for j, m in enumerate(self.names)]})
        return {"kind": "ps", "merge_method": self.op_name, "base": "pool base" if self.pool.base is not None
                else "zeros", "granularity": self.granularity, "groups": groups}

    def candidate_key(self, x: np.ndarray) -> str:
        """The exact knob values the merge uses (genomes clipped alike share one entry)."""
        return "ps:" + hashlib.sha256(np.ascontiguousarray(self._values(x), dtype="<f8").tobytes()).hexdigest()

    def knob_kwargs(self, x: np.ndarray) -> dict:
        v = self._values(x)
        kw = {}
        for i, k in enumerate(self.knobs):
            name = _ARGUMENT.get(k.name, k.name + "s")  # a per-model knob's argument is its plural
            if self.granularity == "model":
                kw[name] = [float(a) for a in v[0, i]]
            else:
                kw[name] = {t: [float(a) for a in v[g, i]] for g, grp in enumerate(self.groups)
                            for t in self.members[grp]}
        return kw

    def merged_state(self, x: np.ndarray) -> dict[str, torch.Tensor]:
        kw = self.knob_kwargs(x)
        if self._takes_generator:
            device = next(iter(self.states[0].values())).device  # DARE draws on the tensors' device
            kw["generator"] = mask_generators(self.merge_seed, self.states[0], len(self.states), device)
        return merge_state_dicts(self.op, self.base if self._takes_base else None, self.states, **kw)

    def build(self, x: np.ndarray):
        return self.family.build(self.merged_state(x))

    def state_dict(self, x: np.ndarray) -> dict[str, torch.Tensor]:
        return self.merged_state(x)

    def source_genome(self, i: int) -> np.ndarray | None:
        """The genome whose merge is source ``i`` itself: weight 1 for it and 0 for the others, every
        density 1 (no drop), in every group. None when the op has knobs other than weight/density."""
        names = [k.name for k in self.knobs]
        if "weight" not in names or not set(names) <= {"weight", "density"}:
            return None
        g = np.ones((len(self.groups), len(self.knobs), len(self.names)))
        w = names.index("weight")
        g[:, w, :] = 0.0
        g[:, w, i] = 1.0
        return g.reshape(-1)

    def starting_genomes(self, states: list) -> tuple[list[int], np.ndarray]:
        """One genome per source (see :meth:`source_genome`); the starting models are the sources."""
        rows = [(i, g) for i in range(min(len(states), len(self.names))) if (g := self.source_genome(i)) is not None]
        return [i for i, _ in rows], np.array([g for _, g in rows]).reshape(len(rows), self.dim)
