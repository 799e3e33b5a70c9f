"""CLIP similarities from features (pure numpy): values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from evobench.metrics.clip import clip_score, cosine


def test_cosine_by_hand():
    # (3, 4) . (4, 3) = 24, norms 5 and 5; (1, 0) . (0, 2) = 0; (1, 1) . (-2, -2) = -4 / (sqrt2 * sqrt8) = -1
    got = cosine([[3, 4], [1, 0], [1, 1]], [[4, 3], [0, 2], [-2, -2]])
    np.testing.assert_allclose(got, [0.96, 0.0, -1.0], rtol=0, atol=1e-15)


def test_clip_score_is_100_cos_clipped_at_zero():
    got = clip_score([[3, 4], [1, 1], [2, 0]], [[4, 3], [-1, -2], [1, 0]])
    # 100 * 24/25 = 96; cos((1,1),(-1,-2)) = -3/sqrt(10) < 0 -> 0; parallel vectors -> 100
    np.testing.assert_allclose(got, [96.0, 0.0, 100.0], rtol=0, atol=1e-12)


def test_features_are_normalised_here():
    a = np.array([0.3, -1.2, 2.0])
    assert cosine(a, 7.5 * a)[0] == pytest.approx(1.0, abs=1e-15)
    assert clip_score(a, 1e-3 * a, weight=2.5)[0] == pytest.approx(2.5, abs=1e-12)


@pytest.mark.parametrize("a, b, match", [
    ([[1.0, 0.0]], [[0.0, 0.0]], "all zeros"),
    ([[1.0, np.nan]], [[1.0, 0.0]], "non-finite"),
    ([[1.0, 0.0]], [[1.0, 0.0, 0.0]], "shapes differ"),
    (np.zeros((1, 1, 2)), [[1.0, 0.0]], "shape"),
])
def test_bad_features_are_errors(a, b, match):
    with pytest.raises(ValueError, match=match):
        cosine(a, b)
