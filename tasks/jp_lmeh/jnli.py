"""JNLI v1.1 (JGLUE): 3-shot multiple choice among 含意 / 矛盾 / 中立, ``acc``."""

from __future__ import annotations

from evobench.tasks.jp_lmeh.base import Spec, splits_from_pool
from evobench.tasks.jp_lmeh.data import jglue_file
from evobench.tasks.jp_lmeh.factory import make_factory

CHOICES = ["含意", "矛盾", "中立"]  # the order of the label indices (entailment, contradiction, neutral)


def _text(doc: dict) -> str:
    return ("### 指示：\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
            f"含意\n矛盾\n中立\n\n### 入力：\n前提：{doc['sentence1']}\n仮説：{doc['sentence2']}\n\n### 応答：")


SPEC = Spec(key="jnli", title="JNLI v1.1", shots=3, metric="acc", text=_text, target=lambda d: CHOICES[d["label"]],
            choices=lambda d: list(CHOICES), label=lambda d: d["label"])


def load(data_dir=None, search_path=None):
    from evobench.lmdata import load_jnli

    return splits_from_pool(load_jnli(jglue_file(data_dir, "jnli", SPEC.name)), SPEC.shots)


jnli = make_factory(SPEC, load)
