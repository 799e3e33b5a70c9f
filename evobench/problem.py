"""A problem = a task to score on + the model pool a merge starts from.

Registered task entries (``evobench list``) are factories ``f(**options) -> Problem``. The problem
also carries defaults for baseline hyper-parameters that the setting implies (e.g. merging trained
specialists runs without mutation, as in the M2N2 paper); explicit user settings win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evobench.models.base import BlockStack, ModelPool
from evobench.task import Task

# What a baseline may need from a problem (``Baseline.needs``), and how to say it in an error.
NEEDS = {
    "descriptors": "behaviour descriptors (Task.descriptor_names)",
    "scores": "per-example scores",
    "sampler": "a sampler of fresh models (evolution from scratch)",
    "base": "a base model (the shared ancestor of the sources)",
    "sources>=2": "two or more source models",
    "two-starting-models": "exactly two starting models",
}


@dataclass
class Problem:
    name: str
    task: Task
    pool: ModelPool
    baseline_defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def space_kinds(self) -> list[str]:
        """Space kinds this problem can offer, given its pool and model family."""
        kinds = ["params"] if self.pool.sampler is not None or self.pool.sources else []
        if len(self.pool.sources) >= 2:
            kinds.insert(0, "ps")
            if isinstance(self.pool.family, BlockStack):
                kinds += ["dfs", "ps+dfs"]
        return kinds

    def pick_space(self, wanted: tuple[str, ...]) -> str | None:
        """The first of a baseline's preferred space kinds this problem offers (None if none)."""
        have = self.space_kinds()
        return next((k for k in wanted if k in have), None)

    def provides(self) -> set[str]:
        """What this problem offers a baseline (the vocabulary of :data:`NEEDS`)."""
        pool, have = self.pool, {"scores"}
        if self.task.descriptor_names:
            have.add("descriptors")
        if pool.sampler is not None:
            have.add("sampler")
        if pool.base is not None:
            have.add("base")
        if len(pool.sources) >= 2:
            have.add("sources>=2")
        if (len(pool.sources) if pool.sources else (pool.n_start if pool.sampler is not None else 0)) == 2:
            have.add("two-starting-models")
        return have

    def choose_space(self, baseline: type) -> tuple[str | None, str]:
        """The first of ``baseline.spaces`` this problem offers whose needs it meets, or ``(None, why)``."""
        offered, have = self.space_kinds(), self.provides()
        reasons = []
        for kind in baseline.spaces:
            if kind not in offered:
                continue
            missing = [n for n in baseline.requirements(kind) if n not in have]
            if not missing:
                return kind, ""
            reasons.append(f"in a {kind} space it needs {', '.join(NEEDS[n] for n in missing)}, "
                           "which the task does not provide")
        if not reasons:
            return None, (f"it searches {'/'.join(baseline.spaces)} spaces; the task offers "
                          f"{'/'.join(offered) or 'none'}")
        return None, "; ".join(reasons)


def factory_accepts(factory, name: str) -> bool:
    """Whether a task factory takes a parameter ``name`` (False when it has no readable signature)."""
    import inspect

    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable
        return False
