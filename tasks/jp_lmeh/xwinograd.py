"""XWinograd (ja): zero-shot choice between two full sentences by log-likelihood, ``acc``.

Rows as the hub's ``polm-stability/xwinograd-ja`` (``sentence1``, ``sentence2``, ``answer`` 1 or
2), from ``xwinograd_ja-test.jsonl`` under ``data_dir`` (or its ``xwinograd/`` folder). No
description, no prompt: each (stripped) sentence is scored after the model's prefix token alone.
"""

from __future__ import annotations

from evobench.lmdata.source import one_of
from evobench.tasks.jp_lmeh.base import Spec, splits_from_pool
from evobench.tasks.jp_lmeh.data import hub_schema_rows
from evobench.tasks.jp_lmeh.factory import make_factory


def _choices(doc: dict) -> list[str]:
    return [doc["sentence1"].strip(), doc["sentence2"].strip()]


SPEC = Spec(key="xwinograd", title="XWinograd (ja)", shots=0, metric="acc", text=lambda d: "",
            target=lambda d: _choices(d)[int(d["answer"]) - 1], choices=_choices,
            label=lambda d: int(d["answer"]) - 1, description="", target_delimiter="")
SCHEMA = {"sentence1": lambda v: None if isinstance(v, str) and v.strip() else "expected a non-empty string",
          "sentence2": lambda v: None if isinstance(v, str) and v.strip() else "expected a non-empty string",
          "answer": one_of("1", "2", 1, 2)}


def load(data_dir=None, search_path=None):
    rows = hub_schema_rows(data_dir, SPEC.name, "xwinograd_ja-test.jsonl", "xwinograd",
                           "polm-stability/xwinograd-ja test", "polm-stability/xwinograd-ja", None, "test", SCHEMA)
    return splits_from_pool(rows, SPEC.shots)


xwinograd = make_factory(SPEC, load)
