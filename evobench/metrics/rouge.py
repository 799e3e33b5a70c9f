"""ROUGE-1/2/L F-measure × 100 on Japanese words, aggregated like rouge-score's "mid".

Per pair, rouge-score's ``RougeScorer`` computes the scores with a tokenizer that yields
:func:`~evobench.metrics.text.ja_tokens` (the words its default tokenizer would otherwise lose:
it keeps only ``[a-z0-9]`` and drops Japanese text entirely). ROUGE-N F is 2PR/(P+R) over clipped
n-gram counts, ROUGE-L F the same over the longest common subsequence; an empty side scores 0.

Aggregation follows rouge-score's ``BootstrapAggregator``: resample the pairs with replacement
``n_samples`` times, take the mean F of each resample, report the 50th percentile of those means
("mid"). rouge-score draws from numpy's global random state, so its mid moves a little from run
to run; :func:`bootstrap_mid` draws from its own generator seeded with ``seed``, so a score is a
pure function of its inputs. The mid lies within a few hundredths of a point of the plain mean on
real data sets.

The ``_ja`` variant (:func:`rouge_ja`) blanks a prediction that is not Japanese when its
reference is (language id P(ja) > ``threshold``): an answer in the wrong language scores 0.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evobench.metrics.text import ja_tokens

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class _Tokenizer:
    """The object rouge-score's scorer calls: ``tokenize(text) -> list[str]``."""

    def __init__(self, tokenize: Callable[[str], list[str]]):
        self._tokenize = tokenize

    def tokenize(self, text: str) -> list[str]:
        return self._tokenize(text)


@functools.lru_cache(maxsize=8)
def _scorer(types: tuple[str, ...], tokenize: Callable[[str], list[str]]) -> Any:
    try:
        from rouge_score import rouge_scorer
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "ROUGE needs the optional package rouge-score: pip install 'evobench[ja]'"
        ) from None
    return rouge_scorer.RougeScorer(list(types), tokenizer=_Tokenizer(tokenize))


def _check_types(types: Sequence[str]) -> tuple[str, ...]:
    unknown = [t for t in types if t not in ROUGE_TYPES]
    if unknown or not types:
        raise ValueError(f"unknown ROUGE type(s) {unknown or list(types)}; known: {list(ROUGE_TYPES)}")
    return tuple(types)


def pair_scores(
    prediction: str,
    reference: str,
    types: Sequence[str] = ROUGE_TYPES,
    tokenize: Callable[[str], list[str]] = ja_tokens,
) -> dict[str, float]:
    """F-measure × 100 of one prediction against one reference, per ROUGE type."""
    scores = _scorer(_check_types(types), tokenize).score(reference, prediction)
    return {t: 100.0 * scores[t].fmeasure for t in types}


def bootstrap_mid(values: Sequence[float], n_samples: int = 1000, seed: int = 0) -> float:
    """The median of ``n_samples`` bootstrap means of ``values`` (rouge-score's "mid").

    Each resample draws ``len(values)`` indices with replacement from a generator seeded with
    ``seed``; the 50th percentile uses numpy's default linear interpolation, as rouge-score does.
    """
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or data.size == 0:
        raise ValueError(f"bootstrap_mid needs a non-empty list of numbers, got shape {data.shape}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(n_samples, data.size))
    return float(np.percentile(data[idx].mean(axis=1), 50))


def rouge(
    predictions: Sequence[str],
    references: Sequence[str],
    types: Sequence[str] = ROUGE_TYPES,
    n_samples: int = 1000,
    seed: int = 0,
    tokenize: Callable[[str], list[str]] = ja_tokens,
) -> dict[str, float]:
    """Corpus ROUGE F × 100 per type: :func:`pair_scores` per pair, :func:`bootstrap_mid` over pairs."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("ROUGE of an empty list of predictions is undefined")
    types = _check_types(types)
    per_pair = [pair_scores(p, r, types, tokenize) for p, r in zip(predictions, references, strict=True)]
    return {t: bootstrap_mid([s[t] for s in per_pair], n_samples, seed) for t in types}


def blank_non_japanese(
    predictions: Sequence[str],
    references: Sequence[str],
    threshold: float = 0.5,
    is_ja: Callable[[str, float], bool] | None = None,
) -> list[str]:
    """The predictions, each replaced by "" when its reference is Japanese and it is not.

    ``is_ja(text, threshold)`` defaults to :func:`evobench.metrics.language.is_japanese`.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if is_ja is None:
        from evobench.metrics.language import is_japanese as is_ja
    return [
        "" if is_ja(r, threshold) and not is_ja(p, threshold) else p
        for p, r in zip(predictions, references, strict=True)
    ]


def rouge_ja(
    predictions: Sequence[str],
    references: Sequence[str],
    types: Sequence[str] = ROUGE_TYPES,
    threshold: float = 0.5,
    n_samples: int = 1000,
    seed: int = 0,
    is_ja: Callable[[str, float], bool] | None = None,
) -> dict[str, float]:
    """:func:`rouge` after :func:`blank_non_japanese` (the ``_ja`` variant)."""
    kept = blank_non_japanese(predictions, references, threshold, is_ja)
    return rouge(kept, references, types, n_samples, seed)
