"""What a baseline is told about a batch of candidates (the only thing it learns from a task).

Kept apart from :mod:`evobench.task` so that a baseline depends on the baseline contract alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
