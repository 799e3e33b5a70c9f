"""MARC-ja v1.1 (JGLUE): 3-shot multiple choice ポジティブ / ネガティブ, ``acc``.

Rows as the hub's ``Rakuten/JGLUE`` config ``MARC-ja`` (``sentence``, ``label``: 0 positive,
1 negative), from ``marc_ja-valid.jsonl`` under ``data_dir`` (or its ``marc_ja/`` folder).
"""

from __future__ import annotations

from evobench.lmdata.source import one_of, text
from evobench.tasks.jp_lmeh.base import Spec, splits_from_pool
from evobench.tasks.jp_lmeh.data import hub_schema_rows
from evobench.tasks.jp_lmeh.factory import make_factory

CHOICES = ["ポジティブ", "ネガティブ"]


def _text(doc: dict) -> str:
    return ("### 指示：\n以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"
            f"\n\n### 入力：\n{doc['sentence']}\n\n### 応答：")


SPEC = Spec(key="marc_ja", title="MARC-ja v1.1", shots=3, metric="acc", text=_text,
            target=lambda d: CHOICES[d["label"]], choices=lambda d: list(CHOICES), label=lambda d: d["label"])
SCHEMA = {"sentence": text, "label": one_of(0, 1)}


def load(data_dir=None, search_path=None):
    rows = hub_schema_rows(data_dir, SPEC.name, "marc_ja-valid.jsonl", "marc_ja", "Rakuten/JGLUE MARC-ja validation",
                           "Rakuten/JGLUE", "MARC-ja", "validation", SCHEMA)
    return splits_from_pool(rows, SPEC.shots)


marc_ja = make_factory(SPEC, load)
