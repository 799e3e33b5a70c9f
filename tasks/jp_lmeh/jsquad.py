"""JSQuAD v1.1 (JGLUE): 2-shot extractive QA by generation, ``exact_match``.

The context shown is the text after the file's "title [SEP] " (stripped); the completion is
stripped of edge whitespace (the harness's ``remove_whitespace`` filter) and must equal the first
reference answer once both lose their edge whitespace.
"""

from __future__ import annotations

from evobench.tasks.jp_lmeh.base import Spec, splits_from_pool
from evobench.tasks.jp_lmeh.data import jglue_file
from evobench.tasks.jp_lmeh.factory import make_factory


def _text(doc: dict) -> str:
    context = doc["context"].split("[SEP]")[-1].strip()
    return ("### 指示：\n与えられた文脈から、質問に対する答えを抜き出してください。\n\n### 入力：\n"
            f"文脈：{context}\n質問：{doc['question']}\n\n### 応答：")


def read_exact(completion: str, doc: dict) -> tuple[str, float]:
    """The stripped completion, and 1.0 when it equals the first answer (edge whitespace ignored)."""
    from evobench.metrics import exact_match

    pred = completion.strip()
    return pred, float(exact_match(pred, doc["answers"]["text"][0]))


SPEC = Spec(key="jsquad", title="JSQuAD v1.1", shots=2, metric="exact_match", text=_text,
            target=lambda d: d["answers"]["text"][0], gold=lambda d: d["answers"]["text"][0], read=read_exact)


def load(data_dir=None, search_path=None):
    from evobench.lmdata import load_jsquad

    return splits_from_pool(load_jsquad(jglue_file(data_dir, "jsquad", SPEC.name)), SPEC.shots)


jsquad = make_factory(SPEC, load)
