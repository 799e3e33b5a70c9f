"""Declared, searchable knobs of a merge op, and the decorator that registers an op."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from evobench.registry import MERGE_OPS


@dataclass(frozen=True)
class Knob:
    """A searchable scalar of a merge op with its natural range (a genome gene in [0,1] maps onto it)."""

    name: str
    low: float
    high: float
    doc: str = ""
    per_model: bool = False  # one value per source model (e.g. TIES weight/density) vs one global value

    def decode(self, u: float) -> float:
        return self.low + (self.high - self.low) * float(u)


def merge_op(name: str, knobs: list[Knob]) -> Callable[[Callable], Callable]:
    """Register a pure tensor function as merge op ``name`` and attach its knobs as ``fn.knobs``."""

    def deco(fn: Callable) -> Callable:
        fn.knobs = tuple(knobs)
        fn.op_name = name
        MERGE_OPS.register(name, fn)
        return fn

    return deco
