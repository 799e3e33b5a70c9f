"""Accuracy and MCC, against hand computations and scikit-learn."""

from __future__ import annotations

import math
import random

import pytest
from sklearn.metrics import matthews_corrcoef as sk_mcc

from evobench.metrics import accuracy, matthews_corrcoef


def test_accuracy():
    assert accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == 0.5
    assert accuracy(["含意"], ["含意"]) == 1.0


def test_binary_mcc_by_hand():
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    preds = [1, 1, 1, 0, 0, 0, 0, 0, 1, 1]
    tp, fn, tn, fp = 3, 1, 4, 2
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert expected == pytest.approx(10 / math.sqrt(5 * 4 * 6 * 5))
    assert matthews_corrcoef(preds, labels) == pytest.approx(expected, abs=1e-15)


def test_mcc_extremes():
    assert matthews_corrcoef([0, 1, 0, 1], [0, 1, 0, 1]) == 1.0
    assert matthews_corrcoef([1, 0, 1, 0], [0, 1, 0, 1]) == -1.0
    assert matthews_corrcoef([1, 1, 1, 1], [0, 1, 0, 1]) == 0.0  # one predicted class
    assert matthews_corrcoef([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0  # one gold class


@pytest.mark.parametrize("n_classes", [2, 3])
def test_mcc_matches_sklearn(n_classes):
    rnd = random.Random(n_classes)
    for _ in range(20):
        n = rnd.randint(5, 60)
        labels = [rnd.randrange(n_classes) for _ in range(n)]
        preds = [y if rnd.random() < 0.6 else rnd.randrange(n_classes) for y in labels]
        assert matthews_corrcoef(preds, labels) == pytest.approx(sk_mcc(labels, preds), abs=1e-12)


@pytest.mark.parametrize("fn", [accuracy, matthews_corrcoef])
def test_length_mismatch_and_empty(fn):
    with pytest.raises(ValueError, match="2 predictions but 1 labels"):
        fn([0, 1], [0])
    with pytest.raises(ValueError, match="no examples"):
        fn([], [])
