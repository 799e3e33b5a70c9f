"""The few-shot draw (the harness's default sampler) and the pool rule, against Python's random."""

from __future__ import annotations

import random

import pytest

from evobench.lmdata import FEWSHOT_SEED, draw_fewshot, fewshot_indices, split_fewshot_pool


def test_seed_is_the_harness_default():
    assert FEWSHOT_SEED == 1234


def test_draw_matches_one_random_per_task():
    docs = [{"id": f"d{i}"} for i in range(7)]
    pool = [{"id": f"p{i}"} for i in range(100)]
    rnd = random.Random(1234)
    expected = [rnd.sample(pool, 3) for _ in docs]  # one generator, one draw per document, in order
    assert draw_fewshot(docs, pool, 3) == expected


def test_pinned_indices():
    assert fewshot_indices(3, 100, 3) == [[99, 56, 14], [0, 11, 74], [4, 85, 88]]
    assert fewshot_indices(2, 8, 5) == [[7, 0, 6, 5, 4], [1, 0, 2, 7, 6]]


def test_a_prefix_of_documents_gets_the_same_shots():
    assert fewshot_indices(10, 50, 2)[:4] == fewshot_indices(4, 50, 2)


def test_other_seed_other_draw():
    rnd = random.Random(7)
    assert fewshot_indices(3, 20, 2, seed=7) == [rnd.sample(range(20), 2) for _ in range(3)]
    assert fewshot_indices(3, 20, 2, seed=7) != fewshot_indices(3, 20, 2)


def test_same_split_drops_the_document_itself():
    docs = list(range(6))
    rnd = random.Random(1234)
    expected = [[x for x in rnd.sample(docs, 3) if x != d][:2] for d in docs]
    got = fewshot_indices(6, 6, 2, same_split=True)
    assert got == expected
    assert all(i not in shots and len(shots) == 2 for i, shots in enumerate(got))


def test_zero_shots():
    assert fewshot_indices(3, 10, 0) == [[], [], []]


def test_bad_sizes():
    with pytest.raises(ValueError, match="pool of at least 4"):
        fewshot_indices(2, 3, 4)
    with pytest.raises(ValueError, match="pool of at least 3"):
        fewshot_indices(2, 2, 2, same_split=True)
    with pytest.raises(ValueError, match="same_split needs pool_size == n_docs"):
        fewshot_indices(5, 10, 2, same_split=True)


def test_split_fewshot_pool():
    docs = [f"doc{i}" for i in range(10)]
    evaluated, pool = split_fewshot_pool(docs, pool_size=3)
    assert evaluated == docs[:7] and pool == ["doc7", "doc8", "doc9"]
    evaluated, pool = split_fewshot_pool(list(range(250)))
    assert evaluated == list(range(150)) and pool == list(range(150, 250))
    with pytest.raises(ValueError, match="3 documents leave none to evaluate"):
        split_fewshot_pool(docs[:3], pool_size=3)
