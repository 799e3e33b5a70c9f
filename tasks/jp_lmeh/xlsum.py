"""XL-Sum (Japanese): 1-shot summarisation by generation, ROUGE-2 on MeCab words.

Rows as the hub's ``mkshing/xlsum_ja`` (``text``, ``summary``; the test split), from
``xlsum_ja-test.jsonl`` under ``data_dir`` (or its ``xlsum/`` folder). The completion is stripped;
the per-example score is its ROUGE-2 F-measure against the summary (0-1; text normalised and split
into words as the harness does); the primary metric is rouge-score's bootstrap "mid" of the
per-example scores (1,000 resamples, seed 0), as the harness aggregates them.
"""

from __future__ import annotations

import numpy as np

from evobench.lmdata.source import text
from evobench.tasks.jp_lmeh.base import Spec, splits_from_pool
from evobench.tasks.jp_lmeh.data import hub_schema_rows
from evobench.tasks.jp_lmeh.factory import make_factory


def _text(doc: dict) -> str:
    return f"### 指示：\n与えられたニュース記事を要約してください。\n\n### 入力：\nニュース記事：{doc['text']}\n\n### 応答："


def read_rouge2(completion: str, doc: dict) -> tuple[str, float]:
    """The stripped completion and its ROUGE-2 F-measure (0-1) against the summary."""
    from evobench.metrics.rouge import pair_scores

    pred = completion.strip()
    return pred, pair_scores(pred, doc["summary"], ("rouge2",))["rouge2"] / 100.0


def _mid(scores: np.ndarray, docs: list[dict]) -> float:
    from evobench.metrics.rouge import bootstrap_mid

    return bootstrap_mid(scores)


SPEC = Spec(key="xlsum", title="XL-Sum (ja)", shots=1, metric="rouge2", text=_text, target=lambda d: d["summary"],
            gold=lambda d: d["summary"], read=read_rouge2, aggregate=_mid)
SCHEMA = {"text": text, "summary": text}


def load(data_dir=None, search_path=None):
    rows = hub_schema_rows(data_dir, SPEC.name, "xlsum_ja-test.jsonl", "xlsum", "mkshing/xlsum_ja test",
                           "mkshing/xlsum_ja", None, "test", SCHEMA)
    return splits_from_pool(rows, SPEC.shots)


xlsum = make_factory(SPEC, load)
