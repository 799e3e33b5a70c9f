"""Accuracy and the Matthews correlation coefficient over predicted and gold labels."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence


def _check(predictions: Sequence[Hashable], labels: Sequence[Hashable]) -> None:
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    if not labels:
        raise ValueError("a metric over no examples is undefined")


def accuracy(predictions: Sequence[Hashable], labels: Sequence[Hashable]) -> float:
    """Share of examples whose prediction equals its label, in [0, 1]."""
    _check(predictions, labels)
    return sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(labels)


def matthews_corrcoef(predictions: Sequence[Hashable], labels: Sequence[Hashable]) -> float:
    """Matthews correlation coefficient, in [-1, 1], for two or more classes.

    With c correct predictions out of s, t_k examples of class k and p_k predictions of class k:
    MCC = (c·s − Σ t_k p_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)); for two classes this is
    (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)). When a factor under the root is 0 (every
    prediction, or every label, is one class) the value is 0.0, as scikit-learn defines it.
    """
    _check(predictions, labels)
    s = len(labels)
    c = sum(p == y for p, y in zip(predictions, labels, strict=True))
    classes = set(predictions) | set(labels)
    t = {k: 0 for k in classes}
    p = {k: 0 for k in classes}
    for k in labels:
        t[k] += 1
    for k in predictions:
        p[k] += 1
    cov_py = c * s - sum(t[k] * p[k] for k in classes)
    cov_pp = s * s - sum(v * v for v in p.values())
    cov_yy = s * s - sum(v * v for v in t.values())
    if cov_pp == 0 or cov_yy == 0:
        return 0.0
    return cov_py / math.sqrt(cov_pp * cov_yy)
