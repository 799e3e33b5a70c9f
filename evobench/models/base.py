"""Model family and pool contracts.

A *family* knows the tensor layout of its models and builds a runnable model from a state dict
(``dict[str, torch.Tensor]``). A family whose models are a stack of same-shaped blocks also
implements :class:`BlockStack`, which data-flow-space merging needs. A *pool* is what a merge
starts from: named source models, an optional shared base (for task vectors), and, for evolution
from scratch, a sampler of fresh random models.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from evobench.merge.fold import FoldRule

State = dict[str, torch.Tensor]


class ModelFamily(ABC):
    """Tensor layout + builder. ``param_names`` fixes the flattening order."""

    name: str = ""

    @property
    @abstractmethod
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Tensor name -> shape, in flattening order."""

    @abstractmethod
    def build(self, state: State) -> Any:
        """A runnable model (whatever the family's tasks accept) from a state dict."""

    @property
    def param_names(self) -> list[str]:
        return list(self.shapes)

    @cached_property
    def layout(self) -> tuple[tuple[str, tuple[int, ...], int, int], ...]:
        """``(name, shape, start, stop)`` of each tensor in the flat vector (computed once: a
        family's shapes are fixed when it is built)."""
        out, i = [], 0
        for k, shape in self.shapes.items():
            n = int(np.prod(shape))
            out.append((k, tuple(shape), i, i + n))
            i += n
        return tuple(out)

    @property
    def n_params(self) -> int:
        return self.layout[-1][3] if self.layout else 0

    def flatten(self, state: State) -> torch.Tensor:
        return torch.cat([state[k].reshape(-1) for k in self.param_names])

    def unflatten(self, vec: torch.Tensor) -> State:
        if vec.numel() != self.n_params:
            raise ValueError(f"{self.name}: expected {self.n_params} parameters, got {vec.numel()}")
        return {k: vec[i:j].reshape(shape) for k, shape, i, j in self.layout}

    def check_compatible(self, other: ModelFamily, names: tuple[str, str] = ("this family", "the other")) -> None:
        """Raise ``ValueError`` (one line; ``names`` say whose models are whose) unless a model built by
        either family can be scored where the other's is: the same family class and the same tensors."""
        a, b = names
        if type(other) is not type(self):
            raise ValueError(f"{a} has {type(self).__name__} models, {b} has {type(other).__name__} models")
        if dict(self.shapes) != dict(other.shapes):
            diff = next((k for k in {**self.shapes, **other.shapes}
                         if self.shapes.get(k) != other.shapes.get(k)), "?")
            raise ValueError(f"{a} ({self.name}) and {b} ({other.name}) differ in tensor {diff!r} "
                             f"({self.shapes.get(diff)} vs {other.shapes.get(diff)})")

    def for_state(self, state: State) -> ModelFamily:
        """The family of ``state``'s model: this one, or (a family whose models vary in depth) the same
        family with as many blocks as ``state`` has, e.g. a layer path written as a plain model."""
        return self

    def check_state(self, state: State, what: str = "state", like: State | None = None, strict: bool = False) -> None:
        """ValueError (one line naming ``what`` and the tensor) unless ``state`` has this family's
        tensors with their shapes. ``strict`` (a file a user gives): also no other tensors, finite
        values, and, when ``like`` is given, each tensor in the dtype of ``like``'s."""
        import torch

        for k, shape in self.shapes.items():
            if k not in state:
                raise ValueError(f"{what}: missing tensor {k!r} for model family {self.name!r}")
            if tuple(state[k].shape) != tuple(shape):
                raise ValueError(f"{what}: tensor {k!r} has shape {tuple(state[k].shape)}, expected {shape}")
        if not strict:
            return
        extra = sorted(set(state) - set(self.shapes))
        if extra:
            raise ValueError(f"{what}: tensor {extra[0]!r} is not one of model family {self.name!r}'s"
                             + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
        for k in self.shapes:
            t = state[k]
            if like is not None and k in like and t.dtype != like[k].dtype:
                raise ValueError(f"{what}: tensor {k!r} is {t.dtype}, expected {like[k].dtype}")
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                bad = int((~torch.isfinite(t)).sum())
                raise ValueError(f"{what}: tensor {k!r} has {bad} NaN or infinite value{'s' if bad > 1 else ''}")


class BlockStack(ABC):
    """A family whose models are ``stem -> blocks[0..L-1] -> head`` with same-shaped blocks."""

    @abstractmethod
    def n_blocks(self) -> int:
        """Blocks per model."""

    @abstractmethod
    def build_path(self, sources: Sequence[State], path: Sequence[tuple[int, int]],
                   scales: Sequence[float]) -> Any:
        """A model running blocks ``path[t] = (source index, block index)`` in order.

        ``scales[t]`` multiplies the hidden state entering step ``t`` (1.0 = unchanged). Stem and head
        come from ``sources[0]``.
        """

    def fold_rule(self) -> FoldRule | None:
        """How a layer path through these blocks becomes a plain model of this family with one block
        per step (:mod:`evobench.merge.fold`), or None when it cannot."""
        return None


@dataclass
class ModelPool:
    """The starting point of a merge: sources, optional base, optional fresh-model sampler."""

    family: ModelFamily
    sources: list[tuple[str, State]] = field(default_factory=list)
    base: State | None = None  # shared ancestor for task vectors; None = no shared base
    sampler: Callable[[np.random.Generator], State] | None = None  # random fresh model (from scratch)
    n_start: int = 2  # how many starting models evolution from scratch begins with

    def __post_init__(self) -> None:
        for name, st in self.sources:
            self.family.check_state(st, f"source model {name!r}")
        if self.base is not None:
            self.family.check_state(self.base, "base model")

    @property
    def from_scratch(self) -> bool:
        return not self.sources

    def starting_states(self, rng: np.random.Generator) -> list[State]:
        """The models evolution starts from: the sources, or ``n_start`` fresh samples."""
        if self.sources:
            return [s for _, s in self.sources]
        if self.sampler is None:
            raise ValueError(f"model pool of {self.family.name!r} has neither sources nor a sampler")
        return [self.sampler(rng) for _ in range(self.n_start)]
