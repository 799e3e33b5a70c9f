"""Numeric answers read from a model's completion, and compared with a gold number.

Three readers:

- :func:`last_number` with ``strict=False`` (the default) is the MGSM-JA reference of the
  evolutionary-merge paper: the LAST match of ``\\d*\\.?\\d+`` in the completion, read as a float.
  It sees no thousands separator and no sign, so "5,600" reads as 600 and "-3" as 3; that is the
  behaviour the published numbers were computed with, so it stays the default.
- :func:`last_number` with ``strict=True`` reads "5,600" as 5600, "1,234.5" as 1234.5 and a
  leading ASCII minus ("-3", but not the "-" of "10-3") as a sign.
- :func:`last_integer_lmeh` is the reader of the Japanese LM Evaluation Harness MGSM task (5-shot):
  the last match of ``-?[0-9.,]+``, dots stripped from both ends and commas removed, kept only
  when it is a whole number.

``\\d`` in Python's ``re`` matches every Unicode decimal digit, so full-width digits ("１２") are
read by the first two readers as they are by the reference; the harness reader sees ASCII digits
only, as the harness does.
"""

from __future__ import annotations

import math
import re

_REFERENCE = re.compile(r"\d*\.?\d+")
# a leading minus only where it cannot be a subtraction ("10-3"); a thousands group must be
# followed by a non-digit, so "12,3456" does not read as 12,345
_STRICT = re.compile(r"(?:(?<![\d.,])-)?(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d*\.?\d+)")
_LMEH = re.compile(r"-?[0-9.,]+")


def last_number(completion: str, strict: bool = False) -> float | None:
    """The last number in ``completion`` as a float, or None when there is none.

    ``strict=False`` is the MGSM-JA reference reader (last ``\\d*\\.?\\d+``; no sign, no
    separators); ``strict=True`` also reads thousands separators and a leading minus sign.
    """
    pattern = _STRICT if strict else _REFERENCE
    matches = pattern.findall(completion)
    if not matches:
        return None
    return float(matches[-1].replace(",", ""))


def gold_number(value: int | float | str) -> float:
    """A gold answer as a float: numbers as they are, strings with thousands commas allowed.

    ``"2,125"`` → 2125.0, ``" 18 "`` → 18.0, ``7`` → 7.0. Raises ValueError naming the value when
    it is not a finite number (a bool is refused too: it is no answer).
    """
    if isinstance(value, bool):
        raise ValueError(f"gold answer {value!r} is a bool, not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"gold answer {value!r} is not a number") from None
    else:
        raise ValueError(f"gold answer {value!r} is a {type(value).__name__}, not a number")
    if not math.isfinite(number):
        raise ValueError(f"gold answer {value!r} is not finite")
    return number


def number_match(prediction: float | None, gold: int | float | str) -> bool:
    """True when the extracted ``prediction`` equals the gold number exactly (None never matches).

    The reference compares floats for equality; both sides here are parsed from short decimal
    strings, so 11.0 == 11 and 0.5 == 0.50 hold and no tolerance is applied.
    """
    if prediction is None:
        return False
    return float(prediction) == gold_number(gold)


def last_integer_lmeh(completion: str) -> int | None:
    """The answer as the Japanese LM Evaluation Harness MGSM task reads it, or None (invalid).

    Last match of ``-?[0-9.,]+``; dots stripped from both ends, commas removed; the result must
    parse as a float with an integral value, which is returned as an int. Anything else (no match,
    "1.5", a bare "-") is None: the harness scores it as wrong, even when an earlier match would
    have been a valid number.
    """
    matches = _LMEH.findall(completion)
    if not matches:
        return None
    text = matches[-1].strip(".").replace(",", "")
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None
