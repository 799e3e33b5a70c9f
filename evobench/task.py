"""Task contract: score a model on a split, keep per-example scores.

A task never assumes classification: ``TaskResult.scores`` is one float per example (1/0 for exact
match, a ROUGE value, a reward ...). The primary metric is what the search maximises; the per-example
scores feed paired statistics, fitness sharing (M2N2) and regression checks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
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


@dataclass
class Evaluation:
    """A batch of k candidates as the runner hands it to ``Baseline.tell``.

    ``value`` is the search fitness (maximised), NaN where the candidate failed. ``ok`` marks finite
    ones; baselines must never feed a failed value to an optimiser as a number.
    """

    value: np.ndarray  # (k,)
    scores: np.ndarray | None = None  # (k, n_examples) per-example scores on the search split
    descriptors: np.ndarray | None = None  # (k, d)
    errors: list[str | None] = field(default_factory=list)

    @property
    def ok(self) -> np.ndarray:
        return np.isfinite(self.value)

    def __len__(self) -> int:
        return int(self.value.shape[0])

    @staticmethod
    def from_results(results: list[TaskResult | BaseException]) -> Evaluation:
        k = len(results)
        value = np.full(k, np.nan)
        errors: list[str | None] = [None] * k
        n_ex = next((r.scores.shape[0] for r in results if isinstance(r, TaskResult)), 0)
        d = next((r.descriptors.shape[0] for r in results
                  if isinstance(r, TaskResult) and r.descriptors is not None), None)
        scores = np.zeros((k, n_ex))
        desc = None if d is None else np.full((k, d), np.nan)
        for i, r in enumerate(results):
            if isinstance(r, BaseException):
                errors[i] = f"{type(r).__name__}: {r}"
                continue
            value[i] = r.primary if np.isfinite(r.primary) else np.nan
            if not np.isfinite(r.primary):
                errors[i] = "non-finite fitness"
            scores[i] = r.scores
            if desc is not None and r.descriptors is not None:
                desc[i] = r.descriptors
        return Evaluation(value=value, scores=scores, descriptors=desc, errors=errors)


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

    def evaluate_many(self, models: list[Any], split: str) -> list[TaskResult | BaseException]:
        """Score several models; tasks may override with a batched implementation.

        A model whose evaluation raises gives the exception in its slot (a failed candidate).
        """
        out: list[TaskResult | BaseException] = []
        for m in models:
            try:
                out.append(self.evaluate(m, split))
            except (ArithmeticError, ValueError, RuntimeError) as e:
                out.append(e)
        return out

    def data_hash(self) -> str:
        """A hash of the task's data (provenance). Override when data is loaded."""
        return ""
