"""Metrics for the language-model tasks: pure functions of predictions and references.

They know no model and no prompt. ``numbers`` reads numeric answers (MGSM), ``text`` holds
exact match and Japanese normalisation/word split, ``rouge`` ROUGE on Japanese words,
``language`` language id, ``classification`` accuracy and MCC. The Japanese parts need the
optional ``evobench[ja]`` extra and import it only when called.
"""

from evobench.metrics.classification import accuracy, matthews_corrcoef
from evobench.metrics.numbers import gold_number, last_integer_lmeh, last_number, number_match
from evobench.metrics.text import exact_match, strip_edges

__all__ = [
    "accuracy",
    "exact_match",
    "gold_number",
    "last_integer_lmeh",
    "last_number",
    "matthews_corrcoef",
    "number_match",
    "strip_edges",
]
