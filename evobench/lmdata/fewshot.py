"""Few-shot examples as the LM Evaluation Harness draws them.

The harness's default sampler holds one ``random.Random(seed)`` per task (seed 1234 unless told
otherwise), and for each evaluated document, in document order, draws ``rnd.sample(pool, k)``.
When the few-shot pool is the evaluated split itself it draws ``k + 1`` and drops the document
being evaluated, keeping the first ``k`` of the rest. With ``k = 0`` it draws nothing.

Data sets released without a train split (the JGLUE and JCoLA validation files) take their pool
from the file: the last :data:`POOL_SIZE` documents (JSQuAD counted per question) are the pool
and are not evaluated (:func:`split_fewshot_pool`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

FEWSHOT_SEED = 1234
POOL_SIZE = 100


def split_fewshot_pool(docs: Sequence[T], pool_size: int = POOL_SIZE) -> tuple[list[T], list[T]]:
    """``(evaluated, pool)``: the last ``pool_size`` documents are the pool, the others are evaluated.

    Both keep file order. Raises ValueError unless at least one document is left to evaluate.
    """
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, got {pool_size}")
    if len(docs) <= pool_size:
        raise ValueError(f"{len(docs)} documents leave none to evaluate beside a few-shot pool of {pool_size}")
    return list(docs[:-pool_size]), list(docs[-pool_size:])


def fewshot_indices(
    n_docs: int, pool_size: int, k: int, seed: int = FEWSHOT_SEED, same_split: bool = False
) -> list[list[int]]:
    """For each of ``n_docs`` documents in order, the pool indices of its ``k`` shots, in drawn order.

    One ``random.Random(seed)`` serves every document. ``same_split=True`` says the pool is the
    evaluated documents themselves (``pool_size == n_docs``): document i never gets itself as a shot
    (the harness compares documents by value, so it would also drop an exact duplicate of the
    document; here only position i is dropped).
    """
    if n_docs < 0 or pool_size < 0 or k < 0:
        raise ValueError(f"n_docs, pool_size and k must be >= 0, got {n_docs}, {pool_size}, {k}")
    if k == 0:
        return [[] for _ in range(n_docs)]
    if same_split and pool_size != n_docs:
        raise ValueError(f"same_split needs pool_size == n_docs, got {pool_size} and {n_docs}")
    draw = k + 1 if same_split else k
    if draw > pool_size:
        raise ValueError(f"{k} shots need a pool of at least {draw} documents, got {pool_size}")
    rnd = random.Random(seed)
    out = []
    for i in range(n_docs):
        drawn = rnd.sample(range(pool_size), draw)
        out.append([j for j in drawn if j != i][:k] if same_split else drawn)
    return out


def draw_fewshot(docs: Sequence[T], pool: Sequence[T], k: int, seed: int = FEWSHOT_SEED) -> list[list[T]]:
    """The shots of each document of ``docs`` drawn from a separate ``pool`` (see :func:`fewshot_indices`)."""
    return [[pool[j] for j in shots] for shots in fewshot_indices(len(docs), len(pool), k, seed)]
