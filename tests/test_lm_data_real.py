"""Loaders on the released benchmark files (read from ../shared/realdata when it is there)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from evobench.lmdata import (
    JNLI_LABELS,
    load_jcola,
    load_jcommonsenseqa,
    load_jnli,
    load_jsquad,
    load_mgsm,
    load_mgsm_exemplars,
    split_fewshot_pool,
)
from tests.lm_task_helpers import REAL

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"no released benchmark files at {REAL}")


def test_mgsm_tsv():
    rows = load_mgsm(REAL / "mgsm" / "mgsm_ja.tsv")
    assert len(rows) == 250
    assert rows[0]["question"].startswith("ジャネットのアヒルは1日に16個の卵を生みます。")
    assert rows[0]["answer_number"] == 18 and isinstance(rows[0]["answer_number"], int)
    assert rows[2]["answer_number"] == 70000
    assert set(rows[0]) == {"question", "answer", "answer_number", "equation_solution"}
    # the four answers written with thousands commas, read here straight from the file
    raw = [line.split("\t")[1] for line in (REAL / "mgsm" / "mgsm_ja.tsv").read_text("utf-8").splitlines()]
    with_commas = {i: a for i, a in enumerate(raw) if "," in a}
    assert sorted(with_commas.values()) == ["114,200", "2,125", "276,000", "5,600"]
    for i, a in with_commas.items():
        assert rows[i]["answer_number"] == int(a.replace(",", ""))


def test_mgsm_folder_is_the_same_file():
    assert load_mgsm(REAL / "mgsm") == load_mgsm(REAL / "mgsm" / "mgsm_ja.tsv")


def test_mgsm_exemplars():
    rows = load_mgsm_exemplars(REAL / "mgsm" / "mgsm_exemplars_ja_en.json")
    assert [r["answer_number"] for r in rows] == [11, 29, 39, 9, 33, 8, 8, 5]
    assert rows[0]["question"].startswith("問題：ロジャーは5個のテニスボールがあります。")
    assert rows[0]["answer"].startswith("ステップごとの答え：") and rows[0]["answer"].endswith("答えは11です。")
    assert rows[0]["equation_solution"] == "5 + 6 = 11."
    english = load_mgsm_exemplars(REAL / "mgsm" / "mgsm_exemplars_ja_en.json", lang="en")
    assert len(english) == 8 and english[0]["question"] != rows[0]["question"]


def test_jcommonsenseqa():
    rows = load_jcommonsenseqa(REAL / "jglue")
    assert len(rows) == 1119
    first = rows[0]
    assert first["q_id"] == 8939 and first["label"] == 2 and first["choice2"] == "マザーボード"
    assert rows[-1]["q_id"] == 10057
    assert {r["label"] for r in rows} <= set(range(5))


def test_jnli_labels_become_indices():
    rows = load_jnli(REAL / "jglue" / "jnli-valid-v1.3.json")
    assert len(rows) == 2434
    assert rows[0]["label"] == 2 and rows[1]["label"] == 0  # neutral, entailment
    assert rows[0]["sentence2"] == "屋根の上に看板があり時計もついています。"
    lines = (REAL / "jglue" / "jnli-valid-v1.3.json").read_text("utf-8").splitlines()
    raw = Counter(json.loads(line)["label"] for line in lines)
    assert Counter(JNLI_LABELS[r["label"]] for r in rows) == raw
    assert JNLI_LABELS == ("entailment", "contradiction", "neutral")


def test_jsquad_flattened():
    rows = load_jsquad(REAL / "jglue")
    assert len(rows) == 4442
    first = rows[0]
    assert first["id"] == "a10336p0q0" and first["title"] == "梅雨"
    assert first["context"].startswith("梅雨 [SEP] 梅雨（つゆ、ばいう）は")
    assert first["question"] == "日本で梅雨がないのは北海道とどこか。"
    assert first["answers"] == {"text": ["小笠原諸島", "小笠原諸島を除く日本", "小笠原諸島"], "answer_start": [25, 25, 25]}
    assert first["is_impossible"] is False
    assert rows[-1]["id"] == "a95156p6q3"
    assert all(" [SEP] " in r["context"] for r in rows)
    assert len({r["id"] for r in rows}) == 4442


def test_jcola_both_domains():
    in_domain = load_jcola(REAL / "jcola")
    out_of_domain = load_jcola(REAL / "jcola", domain="out_of_domain")
    assert (len(in_domain), len(out_of_domain)) == (865, 685)
    assert in_domain[0] == {
        "uid": 2733, "source": "Kuno_1973", "label": 0, "diacritic": "*",
        "sentence": "ここは寒すぎている。", "original": "ここは寒すぎている。",
    }  # fmt: skip
    assert out_of_domain[0]["uid"] == 9109 and out_of_domain[0]["label"] == 1
    assert {r["label"] for r in in_domain + out_of_domain} == {0, 1}


def test_fewshot_pool_of_a_file_without_train_split():
    rows = load_jsquad(REAL / "jglue")
    evaluated, pool = split_fewshot_pool(rows)
    assert (len(evaluated), len(pool)) == (4342, 100)
    assert pool[0]["id"] == rows[4342]["id"] and pool[-1]["id"] == "a95156p6q3"
    assert not {r["id"] for r in pool} & {r["id"] for r in evaluated}
