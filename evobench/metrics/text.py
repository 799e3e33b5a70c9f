"""Text normalisation: exact match for extractive QA, and Japanese words for ROUGE.

Exact match (JSQuAD, JAQKET v2) follows the Japanese LM Evaluation Harness: the generation is
stripped of leading and trailing whitespace (its ``remove_whitespace`` filter), then leading and
trailing whitespace is removed from both the prediction and the reference (the metric's
``regexes_to_ignore: ['^\\s+', '\\s+$']``), and the two strings must be equal: case, punctuation
and inner spaces count. The reference is the dataset's first answer (``answers['text'][0]``).

Japanese text for ROUGE is normalised as the harness's XL-Sum metric does (emoji removed,
``neologdn`` normalisation, runs of whitespace collapsed to one space) and split into words by
MeCab in wakati mode (``fugashi`` with the ``unidic-lite`` dictionary). Those three packages and
``emoji`` are optional (``evobench[ja]``) and imported on first use.
"""

from __future__ import annotations

import functools
import re
from typing import Any

_LEADING = re.compile(r"^\s+")
_TRAILING = re.compile(r"\s+$")
# the code-point ranges the harness removes besides what ``emoji.is_emoji`` recognises
_EMOJI_RANGES = re.compile(
    "[\U0001f600-\U0001f64f\U0001f300-\U0001f5ff\U0001f680-\U0001f6ff\U0001f1e0-\U0001f1ff\u2702-\u27b0]+"
)


def _optional(module: str) -> Any:
    try:
        return __import__(module)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"Japanese text normalisation needs the optional package {module}: pip install 'evobench[ja]'"
        ) from None


def strip_edges(text: str) -> str:
    """``text`` without leading and trailing whitespace (Unicode whitespace, e.g. U+3000, included)."""
    return _TRAILING.sub("", _LEADING.sub("", text))


def exact_match(prediction: str, reference: str) -> bool:
    """True when prediction and reference are equal once their edge whitespace is removed."""
    return strip_edges(prediction.strip()) == strip_edges(reference)


def remove_emoji(text: str) -> str:
    """``text`` without emoji: every character ``emoji.is_emoji`` recognises, then the emoticon,
    pictograph, transport, flag and dingbat (U+2702-U+27B0) ranges."""
    emoji = _optional("emoji")
    text = "".join("" if emoji.is_emoji(c) else c for c in text)
    return _EMOJI_RANGES.sub("", text)


def normalize_ja(text: str) -> str:
    """Emoji removed, ``neologdn.normalize`` (width, repeated marks, spaces between Japanese
    characters), whitespace runs collapsed to one space and the ends stripped."""
    neologdn = _optional("neologdn")
    return " ".join(neologdn.normalize(remove_emoji(text)).split())


@functools.lru_cache(maxsize=1)
def _tagger() -> Any:
    fugashi = _optional("fugashi")
    _optional("unidic_lite")
    return fugashi.Tagger("-Owakati")


def wakati(text: str) -> list[str]:
    """MeCab words of ``text`` as it is (no normalisation), whitespace-separated in wakati mode."""
    return _tagger().parse(text).split()


def ja_tokens(text: str) -> list[str]:
    """The words ROUGE compares: :func:`wakati` of :func:`normalize_ja` of ``text``."""
    return wakati(normalize_ja(text))
