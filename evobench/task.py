"""Task contract: score a model on a split, keep per-example scores.

A task never assumes classification: ``TaskResult.scores`` is one float per example (1/0 for exact
match, a ROUGE value, a reward ...). The primary metric is what the search maximises; the per-example
scores feed paired statistics, fitness sharing (M2N2) and regression checks, so the primary metric is
a function of them: :meth:`Task.aggregate` (the mean unless a task overrides it).
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
    """A benchmark task. Subclasses set ``name``/``primary_metric`` and implement the two methods.

    Optional hooks: :meth:`aggregate` (per-example scores -> primary metric), :meth:`data_hash`
    (provenance) and :meth:`example_ids` (content hashes, to check that splits do not overlap). The
    task contract suite (:class:`evobench.contract.TaskContract`) checks all of them.
    """

    name: str = ""
    primary_metric: str = ""
    metrics: tuple[str, ...] = ()
    # Bump when the scoring changes (prompt, metric, answer extraction): stored evaluations of the
    # old version stop matching (evobench.evalcache).
    version: str = "1"
    # Behaviour descriptors (for quality-diversity search): names and bounds, empty if none.
    descriptor_names: tuple[str, ...] = ()
    descriptor_bounds: tuple[tuple[float, float], ...] = ()

    @abstractmethod
    def split_sizes(self) -> dict[str, int]:
        """Number of examples per split; must contain ``search`` and ``test``."""

    @abstractmethod
    def evaluate(self, model: Any, split: str, limit: int | None = None) -> TaskResult:
        """Score ``model`` on ``split`` (optionally its first ``limit`` examples)."""

    def aggregate(self, scores: np.ndarray) -> float:
        """The primary metric of a split from its per-example scores: their mean (NaN if empty).

        Override for another aggregate (a median, a pass rate above a threshold ...); ``evaluate`` must
        report ``primary == aggregate(scores)``.
        """
        scores = np.asarray(scores, dtype=float)
        return float(scores.mean()) if scores.size else float("nan")

    def data_hash(self) -> str:
        """A hash of the task's data (provenance). Override when data is loaded."""
        return ""

    def example_ids(self, split: str) -> list[str]:
        """Content hashes of the inputs of ``split``'s examples, in order (one string per example).

        Two examples with the same input get the same id, so the ids show whether the search and test
        splits overlap. Not implemented by default.
        """
        raise NotImplementedError(f"task {self.name or type(self).__name__!r} does not implement example_ids")
