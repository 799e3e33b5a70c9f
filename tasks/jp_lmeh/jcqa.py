"""JCommonsenseQA v1.1 (JGLUE): 3-shot multiple choice over five choices, ``acc``."""

from __future__ import annotations

from evobench.tasks.jp_lmeh.base import Spec, splits_from_pool
from evobench.tasks.jp_lmeh.data import jglue_file
from evobench.tasks.jp_lmeh.factory import make_factory


def _choices(doc: dict) -> list[str]:
    return [doc[f"choice{i}"] for i in range(5)]


def _text(doc: dict) -> str:
    listed = "".join(f"- {c}\n" for c in _choices(doc))
    return f"### 指示：\n出力は以下から選択してください：\n{listed}\n### 入力：\n{doc['question']}\n\n### 応答："


SPEC = Spec(key="jcqa", title="JCommonsenseQA v1.1", shots=3, metric="acc", text=_text,
            target=lambda d: _choices(d)[d["label"]], choices=_choices, label=lambda d: d["label"])


def load(data_dir=None, search_path=None):
    from evobench.lmdata import load_jcommonsenseqa

    return splits_from_pool(load_jcommonsenseqa(jglue_file(data_dir, "jcqa", SPEC.name)), SPEC.shots)


jcqa = make_factory(SPEC, load)
