"""CLIP similarities from embeddings: pure functions of feature vectors (no model, no image).

* :func:`cosine` -- the cosine of each row of ``a`` with the same row of ``b``;
* :func:`clip_score` -- CLIPScore (Hessel et al., 2021, with w = 100 as torchmetrics and most
  text-to-image papers use it): ``max(100 * cos(image, text), 0)``.

Features are L2-normalised here, in float64, so callers pass a model's raw ``encode_image`` /
``encode_text`` outputs. A zero vector has no direction: its cosine is an error, not NaN.
"""

from __future__ import annotations

import numpy as np

CLIP_SCORE_WEIGHT = 100.0


def _rows(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a feature vector or a (n, d) array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: non-finite features")
    return a


def cosine(a, b) -> np.ndarray:
    """Row-wise cosine similarity of two ``(n, d)`` arrays (or vectors), shape ``(n,)``."""
    a, b = _rows(a, "a"), _rows(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"cosine: shapes differ ({a.shape} vs {b.shape})")
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    if np.any(na == 0) or np.any(nb == 0):
        raise ValueError("cosine: a feature vector is all zeros (it has no direction)")
    return np.einsum("nd,nd->n", a, b) / (na * nb)


def clip_score(image_features, text_features, weight: float = CLIP_SCORE_WEIGHT) -> np.ndarray:
    """CLIPScore of each (image, text) row pair: ``max(weight * cos, 0)``, shape ``(n,)``."""
    return np.maximum(weight * cosine(image_features, text_features), 0.0)
