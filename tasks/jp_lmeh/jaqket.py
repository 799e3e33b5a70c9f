"""JAQKET v2: 1-shot extractive QA by generation over the given passages, ``exact_match``.

Rows as the hub's ``kumapo/JAQKET`` config ``v2.0`` (``question``, ``answers.text``,
``ctxs.text``: the passages, joined by newlines), from ``jaqket_v2-valid.jsonl`` under
``data_dir`` (or its ``jaqket/`` folder). Scored as JSQuAD.
"""

from __future__ import annotations

from evobench.lmdata.source import text
from evobench.tasks.jp_lmeh.base import Spec, splits_from_pool
from evobench.tasks.jp_lmeh.data import hub_schema_rows, texts
from evobench.tasks.jp_lmeh.factory import make_factory
from evobench.tasks.jp_lmeh.jsquad import read_exact


def _text(doc: dict) -> str:
    context = "\n".join(doc["ctxs"]["text"])
    return ("### 指示：\n与えられた文脈から、質問に対する答えを抜き出してください。\n\n### 入力：\n"
            f"文脈：{context}\n質問：{doc['question']}\n\n### 応答：")


SPEC = Spec(key="jaqket", title="JAQKET v2", shots=1, metric="exact_match", text=_text,
            target=lambda d: d["answers"]["text"][0], gold=lambda d: d["answers"]["text"][0], read=read_exact)
SCHEMA = {"question": text, "answers": texts, "ctxs": texts}


def load(data_dir=None, search_path=None):
    rows = hub_schema_rows(data_dir, SPEC.name, "jaqket_v2-valid.jsonl", "jaqket", "kumapo/JAQKET v2.0 validation",
                           "kumapo/JAQKET", "v2.0", "validation", SCHEMA)
    return splits_from_pool(rows, SPEC.shots)


jaqket = make_factory(SPEC, load)
