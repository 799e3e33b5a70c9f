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
