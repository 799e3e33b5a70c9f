"""mgsm-ja: the prompt of a real problem, answer reading and acc/acc_ja on fixed completions, options."""

from __future__ import annotations

import pytest

from evobench.task import SEARCH, TEST
from evobench.tasks.mgsm_ja import STOP, MGSMJATask, load_splits, mgsm_ja, prompt
from evobench.tasks.mgsm_search import generated_search_set
from tests.lm_task_helpers import REAL, FakeEngine

needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"no released benchmark files at {REAL}")


@needs_real
def test_prompt_of_the_first_real_problem():
    splits = load_splits(REAL)
    assert len(splits[TEST]) == 250 and len(splits[SEARCH]) == 32
    assert prompt(splits[TEST][0]["question"]) == (
        "以下に、あるタスクを説明する指示があります。リクエストを適切に完了するための回答を日本語で記述してください。"
        "一歩一歩考えましょう。\n\n### 指示:\nジャネットのアヒルは1日に16個の卵を生みます。ジャネットは毎朝朝食の一環で3個を"
        "消費し、毎日4個使って友達向けにマフィンを焼きます。残りを市場で1個あたり2ドルの価格で売ります。彼女は毎日市場で"
        "いくら手に入れていますか？\n\n### 応答:")


def _task(strict=False):
    rows = [{"question": f"問題{i}", "answer_number": n} for i, n in enumerate([18, 18, 5600, 3, 7])]
    completions = ["卵は16-3-4=9個残ります。9*2=18ドルです。答えは18です。", "The answer is 18.", "合計は5,600円です。",
                   "答えは-3です。", "わかりません。"]
    engine = FakeEngine(completions)
    return MGSMJATask({SEARCH: rows[:1], TEST: rows}, engine, max_new_tokens=7, strict=strict), engine


def test_acc_and_acc_ja_on_fixed_completions():
    task, engine = _task()
    r = task.evaluate(None, TEST)
    # 18 read from Japanese (right); 18 in English (right, not Japanese); "5,600" read as 600 (wrong);
    # "-3" read as 3 (right: the reference ignores signs); no number (wrong)
    assert r.scores.tolist() == [1.0, 1.0, 0.0, 1.0, 0.0]
    assert r.metrics == {"acc": pytest.approx(0.6), "acc_ja": pytest.approx(0.4)}
    assert r.primary == pytest.approx(0.6)
    assert [p["prediction"] for p in r.predictions] == [18.0, 18.0, 600.0, 3.0, None]
    assert [p["japanese"] for p in r.predictions] == [True, False, True, True, True]
    assert engine.requests[0].stop == STOP == ("Instruction:", "Instruction", "Response:", "Response")
    assert engine.requests[0].max_new_tokens == 7
    assert engine.requests[0].prompt.endswith("### 指示:\n問題0\n\n### 応答:")


def test_strict_reader_reads_separators_and_signs():
    task, _ = _task(strict=True)
    r = task.evaluate(None, TEST)
    assert r.scores.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert [p["prediction"] for p in r.predictions][2:4] == [5600.0, -3.0]


def test_limit_and_ids():
    task, _ = _task()
    r = task.evaluate(None, TEST, limit=2)
    assert r.scores.tolist() == [1.0, 1.0] and len(r.predictions) == 2
    ids = task.example_ids(TEST)
    assert len(set(ids)) == 5 and r.predictions[1]["id"] == ids[1]
    with pytest.raises(ValueError, match="unknown split 'train'"):
        task.evaluate(None, "train")


def test_generated_search_set_is_fixed_and_well_formed():
    rows = generated_search_set()
    assert len(rows) == 32 and rows == generated_search_set()
    assert rows != generated_search_set(seed=1)
    for row in rows:
        assert set(row) == {"question", "answer", "answer_number", "equation_solution"}
        assert isinstance(row["answer_number"], int) and row["answer_number"] >= 0
        assert row["answer"].endswith(f"答えは{row['answer_number']}です。")
    # the equation evaluates to the answer
    assert all(eval(r["equation_solution"].split("=")[0].replace("/", "//")) == r["answer_number"] for r in rows)


@pytest.mark.parametrize("options, message", [
    ({"models": []}, "models must be"),
    ({"models": ["a", "a"]}, "lists a model twice"),
    ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer"),
    ({"dtype": "float64"}, "dtype must be one of"),
    ({"limit_search": -1}, "limit_search must be a positive integer or None"),
    ({"strict": "yes"}, "strict must be true or false"),
    ({"data_dir": "/nonexistent/mgsm"}, "data_dir: no such file"),
    ({"search_path": "/nonexistent.jsonl"}, "search_path: no such file"),
])
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(ValueError, match=message) as e:
        mgsm_ja(**{"models": ["m"], **options})
    assert "\n" not in str(e.value)


def test_data_dir_without_the_file_names_it(tmp_path):
    from evobench.lmdata import DataUnavailableError

    with pytest.raises(DataUnavailableError, match="no mgsm_ja.tsv in .*download") as e:
        mgsm_ja(models=["m"], data_dir=tmp_path)
    assert "\n" not in str(e.value)


@needs_real
def test_search_path_replaces_the_generated_set(tmp_path):
    path = tmp_path / "gsm8k_ja.jsonl"
    path.write_text('{"question": "1たす1は？", "answer_number": 2}\n', encoding="utf-8")
    splits = load_splits(REAL, path, limit_test=3)
    assert [r["answer_number"] for r in splits[SEARCH]] == [2]
    assert [r["answer_number"] for r in splits[TEST]] == [18, 3, 70000]


def test_offline_without_data_is_one_line_naming_the_file(monkeypatch):
    from evobench.lmdata import DataUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match="give data_dir= a folder holding the file mgsm_ja.tsv") as e:
        mgsm_ja(models=["m"])
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value)
