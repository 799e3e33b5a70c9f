"""MGSM answer readers: the paper's reference, the strict mode, and the harness's reader."""

from __future__ import annotations

import pytest

from evobench.metrics import gold_number, last_integer_lmeh, last_number, number_match


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("ジャネットは16-3-4=9個売るので、9*2=18ドルです。答えは18です。", 18.0),
        ("答えは5,600円です。", 600.0),  # the reference sees no thousands separator
        ("気温は-3度です", 3.0),  # nor a sign
        ("0.5 と .25", 0.25),
        ("合計は3.", 3.0),
        ("答えは１２個", 12.0),  # full-width digits are \d in Python's re
        ("1.5.2", 0.2),
        ("数字はありません", None),
        ("", None),
    ],
)
def test_last_number_reference(completion, expected):
    assert last_number(completion) == expected


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("答えは5,600円です。", 5600.0),
        ("114,200 と 276,000", 276000.0),
        ("合計 1,234.5 ドル", 1234.5),
        ("気温は-3度です", -3.0),
        ("x = -0.5", -0.5),
        ("10-3", 3.0),  # a subtraction is no sign
        ("1,23", 23.0),  # not a thousands group
        ("答えは18です", 18.0),
        ("なし", None),
    ],
)
def test_last_number_strict(completion, expected):
    assert last_number(completion, strict=True) == expected


def test_strict_is_off_by_default():
    assert last_number("-5,600") == 600.0
    assert last_number("-5,600", strict=True) == -5600.0


@pytest.mark.parametrize(
    ("gold", "expected"),
    [("2,125", 2125.0), ("114,200", 114200.0), (" 18 ", 18.0), (7, 7.0), (0.5, 0.5), ("-3", -3.0)],
)
def test_gold_number(gold, expected):
    assert gold_number(gold) == expected


@pytest.mark.parametrize("bad", ["abc", "", True, None, float("nan"), "inf"])
def test_gold_number_refuses(bad):
    with pytest.raises(ValueError, match="gold answer"):
        gold_number(bad)


def test_number_match():
    assert number_match(last_number("答えは2125です"), "2,125")
    assert number_match(11.0, 11)
    assert not number_match(last_number("答えは2,125です"), "2,125")  # reference reads 125
    assert number_match(last_number("答えは2,125です", strict=True), "2,125")
    assert not number_match(None, 3)
    assert not number_match(3.5, 3)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("答えは11です。", 11),
        ("答えは1,000.", 1000),
        ("-7", -7),
        ("12 から 1.5", None),  # the last match is not whole: invalid, no fall-back
        ("3.0", 3),
        ("...", None),
        ("答えは１２", None),  # ASCII digits only
        ("なし", None),
    ],
)
def test_last_integer_lmeh(completion, expected):
    assert last_integer_lmeh(completion) == expected
