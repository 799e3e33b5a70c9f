"""Classification tasks: per-example correctness, accuracy, and default behaviour descriptors.

The M2N2 paper's MAP-Elites describes a digits model by its accuracy on odd digits and on even
digits. :class:`ClassificationTask` generalises that to any label set: the classes, sorted, are
split into the ones at even positions (0th, 2nd, ...) and the ones at odd positions, and the two
descriptors are the accuracy on the examples of each half. On digits (classes 0-9) that is exactly
the paper's even/odd split, so every classification task can be searched by MAP-Elites without
designing descriptors. A task with better descriptors overrides :meth:`ClassificationTask.descriptors`
(and ``descriptor_names``/``descriptor_bounds``); a task with no descriptors sets
``descriptor_names = ()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evobench.task import Task, TaskResult


def label_halves(classes: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """The sorted classes at even positions and at odd positions."""
    ordered = np.array(sorted(classes))
    if ordered.size < 2:
        raise ValueError(f"label-half descriptors need at least 2 classes, got {ordered.size}")
    return ordered[0::2], ordered[1::2]


def accuracy_on(correct: np.ndarray, targets: np.ndarray, classes: np.ndarray) -> float:
    """Accuracy over the examples whose target is one of ``classes`` (0.0 when there are none)."""
    mask = np.isin(targets, classes)
    return float(correct[mask].mean()) if mask.any() else 0.0


class ClassificationTask(Task):
    """A task whose examples have one label each and whose per-example score is 1 if predicted.

    Subclasses set ``classes`` (every label the task can have) and call :meth:`classification_result`
    from ``evaluate`` with the predicted and true labels.
    """

    primary_metric = "accuracy"
    metrics = ("accuracy",)
    descriptor_names = ("accuracy_odd_position_classes", "accuracy_even_position_classes")
    descriptor_bounds = ((0.0, 1.0), (0.0, 1.0))
    classes: Sequence = ()

    def descriptors(self, correct: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Accuracy on the classes at odd positions, then on those at even positions, of the sorted
        label set (on digits: odd digits, even digits — the M2N2 paper's MAP-Elites descriptors)."""
        even, odd = label_halves(self.classes)
        return np.array([accuracy_on(correct, targets, odd), accuracy_on(correct, targets, even)])

    def classification_result(self, predictions: np.ndarray, targets: np.ndarray) -> TaskResult:
        predictions, targets = np.asarray(predictions), np.asarray(targets)
        if predictions.shape != targets.shape:
            raise ValueError(f"{self.name}: {predictions.shape[0]} predictions for {targets.shape[0]} targets")
        correct = (predictions == targets).astype(np.float64)
        acc = float(correct.mean()) if correct.size else float("nan")
        desc = self.descriptors(correct, targets) if self.descriptor_names else None
        return TaskResult(scores=correct, metrics={"accuracy": acc}, primary=acc, predictions=predictions,
                          targets=targets, descriptors=desc, n_forward=int(correct.size))
