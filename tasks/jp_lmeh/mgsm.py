"""MGSM (ja) as the Japanese LM Evaluation Harness scores it: 5-shot CoT by generation, ``acc``.

Test = the 250 MGSM ``ja`` problems; search = a translated-GSM8K JSON-lines file (``search_path``)
or the generated set of :mod:`evobench.tasks.mgsm_search`; shots = the eight MGSM exemplars
("問題：" and "ステップごとの答え：" dropped from their text). The answer is the harness's reader
(:func:`evobench.metrics.last_integer_lmeh`: last ``-?[0-9.,]+``, whole numbers only).
"""

from __future__ import annotations

from evobench.tasks.jp_lmeh.base import Spec, splits_from_exemplars
from evobench.tasks.jp_lmeh.data import mgsm_folder
from evobench.tasks.jp_lmeh.factory import make_factory
from evobench.tasks.lm_common import optional_path


def _text(doc: dict) -> str:
    question = doc["question"].replace("問題：", "")
    return f"### 指示：\n与えられた問題に対して、ステップごとに答えを導き出してください。\n\n### 入力：\n{question}\n\n### 応答："


def read_lmeh(completion: str, doc: dict) -> tuple[int | None, float]:
    """The harness's integer answer (None: invalid) and 1.0 when it equals ``answer_number``."""
    from evobench.metrics import last_integer_lmeh

    pred = last_integer_lmeh(completion)
    return pred, float(pred is not None and pred == doc["answer_number"])


SPEC = Spec(key="mgsm", title="MGSM (ja)", shots=5, metric="acc", text=_text,
            target=lambda d: (d["answer"] or "").replace("ステップごとの答え：", ""),
            gold=lambda d: d["answer_number"], read=read_lmeh)


def load(data_dir=None, search_path=None):
    from evobench.lmdata import load_gsm8k_ja, load_mgsm, load_mgsm_exemplars
    from evobench.tasks.mgsm_search import generated_search_set

    search_file = optional_path("search_path", search_path, "file")
    tsv, exemplars = mgsm_folder(data_dir, SPEC.name)
    search = load_gsm8k_ja(search_file) if search_file is not None else generated_search_set()
    return splits_from_exemplars(search, load_mgsm(tsv), load_mgsm_exemplars(exemplars), SPEC.shots)


mgsm = make_factory(SPEC, load, takes_search_path=True)
