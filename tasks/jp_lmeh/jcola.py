"""JCoLA (Japanese CoLA, in-domain validation set): 3-shot acceptability by log-likelihood, ``mcc``.

The harness's ``japanese_leaderboard`` group has no JCoLA task; the prompt is that of the Japanese
harness that introduced the task (JCoLA v0.2, prompt version 0.0): no description, each document as
``{sentence}\\n質問: この文は文法的ですか？\\n答え:``, the answer `` はい`` (acceptable) or `` いいえ``
(unacceptable) after one space, shots joined by a blank line. The choice is the answer of higher
log-likelihood (a tie reads as unacceptable). Shots come from the last-100 pool with the sampler
of the other subtasks (that harness drew JCoLA's shots stratified by label; this one does not).

Per-example score: 1 when the prediction is the label. The subtask's score is the Matthews
correlation coefficient of the predictions and labels (in [-1, 1]; x 100 in the suite), a function
of the per-example scores and the documents' labels, since a wrong binary prediction is the other
label. JCoLA is optional in JP-LMEH: the suite's default eight subtasks leave it out.
"""

from __future__ import annotations

import numpy as np

from evobench.tasks.jp_lmeh.base import Spec, splits_from_pool
from evobench.tasks.jp_lmeh.data import data_root
from evobench.tasks.jp_lmeh.factory import make_factory
from evobench.tasks.lm_common import find_data

CHOICES = ["いいえ", "はい"]  # index = the label (0 unacceptable, 1 acceptable)
FILE = "in_domain_valid-v1.0.json"


def _text(doc: dict) -> str:
    return f"{doc['sentence']}\n質問: この文は文法的ですか？\n答え:"


def mcc_of_scores(scores: np.ndarray, docs: list[dict]) -> float:
    """MCC of the binary predictions implied by per-example correctness and the labels."""
    from evobench.metrics.classification import matthews_corrcoef

    labels = [int(d["label"]) for d in docs]
    preds = [y if s == 1.0 else 1 - y for s, y in zip(np.asarray(scores, dtype=float), labels, strict=True)]
    return matthews_corrcoef(preds, labels)


SPEC = Spec(key="jcola", title="JCoLA v1.0 (in domain)", shots=3, metric="mcc", text=_text,
            target=lambda d: CHOICES[d["label"]], choices=lambda d: list(CHOICES), label=lambda d: d["label"],
            description="", target_delimiter=" ", aggregate=mcc_of_scores)


def load(data_dir=None, search_path=None):
    from evobench.lmdata import load_jcola

    path = find_data(data_root(data_dir), SPEC.name, [FILE], ["jcola"], f"osekilab/JCoLA data/jcola-v1.0/{FILE}")
    return splits_from_pool(load_jcola(path), SPEC.shots)


jcola = make_factory(SPEC, load)
