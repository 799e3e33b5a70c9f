"""Task contract: score a model on a split, keep per-example scores.

A task never assumes classification: ``TaskResult.scores`` is one float per example (1/0 for exact
match, a ROUGE value, a reward ...). The primary metric is what the search maximises; the per-example
scores feed paired statistics, fitness sharing (M2N2) and regression checks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

SEARCH = "search"
TEST = "test"


@dataclass
class TaskResult:
    """One model scored on one split."""

    scores: np.ndarray  # (n_examples,) float, higher is better
    metrics: dict[str, float]  # aggregate metrics; contains the task's primary metric
    primary: float  # the task's primary metric (what search maximises)
    predictions: Any = None  # per-example predictions (array or list), optional
    targets: Any = None  # per-example targets, optional
    descriptors: np.ndarray | None = None  # behaviour descriptors (d,), optional (MAP-Elites)
    n_forward: int = 0  # examples pushed through the model


class Task(ABC):
    """A benchmark task. Subclasses set ``name``/``primary_metric`` and implement the two methods."""

    name: str = ""
    primary_metric: str = ""
    metrics: tuple[str, ...] = ()
    # Behaviour descriptors (for quality-diversity search): names and bounds, empty if none.
    descriptor_names: tuple[str, ...] = ()
    descriptor_bounds: tuple[tuple[float, float], ...] = ()

    @abstractmethod
    def split_sizes(self) -> dict[str, int]:
        """Number of examples per split; must contain ``search`` and ``test``."""

    @abstractmethod
    def evaluate(self, model: Any, split: str, limit: int | None = None) -> TaskResult:
        """Score ``model`` on ``split`` (optionally its first ``limit`` examples)."""

    def data_hash(self) -> str:
        """A hash of the task's data (provenance). Override when data is loaded."""
        return ""
