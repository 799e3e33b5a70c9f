"""Loaders on small files built here: schema checks with one-line errors, the search set, the hub path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evobench.lmdata import (
    DataFormatError,
    DataUnavailableError,
    load_gsm8k_ja,
    load_jcola,
    load_jcommonsenseqa,
    load_jnli,
    load_jsquad,
    load_mgsm,
    load_mgsm_exemplars,
)

DATA = Path(__file__).parent / "data"
JCQA_ROW = {
    "q_id": 1, "question": "空の色は？", "choice0": "青", "choice1": "赤",
    "choice2": "緑", "choice3": "黒", "choice4": "白", "label": 0,
}  # fmt: skip


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows))
    return path


def one_line(e: pytest.ExceptionInfo) -> str:
    message = str(e.value)
    assert "\n" not in message
    return message


def test_search_set_sample_file():
    rows = load_gsm8k_ja(DATA / "gsm8k_ja_sample.jsonl")
    assert [r["answer_number"] for r in rows] == [72, 10, 5, 42, 624]
    assert rows[0]["id"] == 250 and rows[0]["question"].startswith("ナタリアは4月に48人の友達に")


@pytest.mark.parametrize(
    ("value", "problem"),
    [("12", "expected a number, got str '12'"), (True, "expected a number, got bool"), (None, "expected a number")],
)
def test_search_set_bad_answer_number(tmp_path, value, problem):
    f = write_lines(tmp_path / "s.jsonl", [{"question": "一足す一は？", "answer_number": 2}, {"question": "q", "answer_number": value}])
    with pytest.raises(DataFormatError) as e:
        load_gsm8k_ja(f)
    assert one_line(e).startswith(f"{f}: row 2: column 'answer_number': {problem}")


def test_search_set_missing_column(tmp_path):
    f = write_lines(tmp_path / "s.jsonl", [{"question": "一足す一は？"}])
    with pytest.raises(DataFormatError, match=r"row 1: column 'answer_number': missing$"):
        load_gsm8k_ja(f)


def test_jcqa_missing_and_bad_columns(tmp_path):
    missing = {k: v for k, v in JCQA_ROW.items() if k != "choice3"}
    f = write_lines(tmp_path / "jcqa.json", [JCQA_ROW, missing])
    with pytest.raises(DataFormatError) as e:
        load_jcommonsenseqa(f)
    assert one_line(e) == f"{f}: row 2: column 'choice3': missing"
    f = write_lines(tmp_path / "jcqa.json", [JCQA_ROW, "", {**JCQA_ROW, "label": 7}])
    with pytest.raises(DataFormatError, match=r"jcqa\.json: row 3: column 'label': expected one of \[0, 1, 2, 3, 4\], got 7"):
        load_jcommonsenseqa(f)
    f = write_lines(tmp_path / "jcqa.json", [{**JCQA_ROW, "label": True}])
    with pytest.raises(DataFormatError, match="column 'label'"):  # a bool is no class index
        load_jcommonsenseqa(f)


def test_bad_json_line(tmp_path):
    f = write_lines(tmp_path / "jcqa.json", [JCQA_ROW, JCQA_ROW, '{"q_id": 3,'])
    with pytest.raises(DataFormatError, match=r"jcqa\.json: row 3: not valid JSON"):
        load_jcommonsenseqa(f)
    f = write_lines(tmp_path / "list.json", [[1, 2]])
    with pytest.raises(DataFormatError, match=r"row 1: expected an object, got list"):
        load_jcommonsenseqa(f)


def test_jnli_bad_label(tmp_path):
    row = {"sentence_pair_id": "0", "yjcaptions_id": "1-2-3", "sentence1": "猫がいる。", "sentence2": "動物がいる。"}
    f = write_lines(tmp_path / "jnli.json", [{**row, "label": "entailment"}, {**row, "label": "maybe"}])
    with pytest.raises(DataFormatError, match=r"row 2: column 'label': expected one of \['entailment'"):
        load_jnli(f)


def test_jcola_bad_label(tmp_path):
    row = {"uid": 1, "source": "X_2000", "label": 2, "diacritic": "*", "sentence": "猫が走る。", "original": "猫が走る。"}
    write_lines(tmp_path / "in_domain_valid-v1.0.json", [row])
    with pytest.raises(DataFormatError, match=r"row 1: column 'label': expected one of \[0, 1\], got 2"):
        load_jcola(tmp_path)


def test_mgsm_tsv_errors(tmp_path):
    f = tmp_path / "mgsm_ja.tsv"
    f.write_text("一足す一は？\t2\n二足す二は？\t4\textra\n")
    with pytest.raises(DataFormatError) as e:
        load_mgsm(f)
    assert one_line(e) == f"{f}: row 2: expected 2 tab-separated columns (question, answer), got 3"
    f.write_text("一足す一は？\t二\n")
    with pytest.raises(DataFormatError, match=r"row 1: column 'answer': gold answer '二' is not a number"):
        load_mgsm(tmp_path)
    f.write_text("\t2\n")
    with pytest.raises(DataFormatError, match=r"row 1: column 'question': empty string"):
        load_mgsm(f)
    f.write_text("三足す四は？\t7\n\n半分は？\t0.5\n")  # blank lines are skipped
    assert [r["answer_number"] for r in load_mgsm(f)] == [7, 0.5]


def test_not_utf8(tmp_path):
    f = tmp_path / "mgsm_ja.tsv"
    f.write_bytes("一足す一は？\t2\n".encode("shift_jis"))
    with pytest.raises(DataFormatError, match="not UTF-8 text"):
        load_mgsm(f)


def test_exemplars_errors(tmp_path):
    f = tmp_path / "ex.json"
    f.write_text(json.dumps({"ja": {"1": {"q": "問題：a", "a": "答え"}, "2": {"q": "問題：b"}}, "EXEMPLAR_NUMBER_ANSWERS": [1, 2]}))
    with pytest.raises(DataFormatError, match=r"ex\.json \[ja\]: row 2: column 'a': missing"):
        load_mgsm_exemplars(f)
    f.write_text(json.dumps({"ja": {"1": {"q": "問題：a", "a": "答え"}}, "EXEMPLAR_NUMBER_ANSWERS": [1, 2]}))
    with pytest.raises(DataFormatError, match="EXEMPLAR_NUMBER_ANSWERS must list 1 numbers"):
        load_mgsm_exemplars(f)


def jsquad_doc(answers) -> dict:
    qa = {"question": "梅雨とは何季の一種か?", "id": "q1", "answers": answers, "is_impossible": False}
    return {"data": [{"title": "梅雨", "paragraphs": [{"context": "梅雨 [SEP] 雨季の一種である。", "qas": [qa]}]}]}


def test_jsquad_errors(tmp_path):
    f = tmp_path / "jsquad.json"
    f.write_text(json.dumps(jsquad_doc([{"text": "雨季", "answer_start": 7}])))
    assert load_jsquad(f)[0]["answers"] == {"text": ["雨季"], "answer_start": [7]}
    f.write_text(json.dumps(jsquad_doc([])))
    with pytest.raises(DataFormatError, match=r"jsquad\.json: row 1: column 'answers': expected one or more answers"):
        load_jsquad(f)
    f.write_text(json.dumps(jsquad_doc([{"text": "雨季"}])))
    with pytest.raises(DataFormatError, match=r"row 1: column 'answer_start': missing"):
        load_jsquad(f)
    f.write_text(json.dumps({"data": [{"title": "梅雨", "paragraphs": [{"qas": []}]}]}))
    with pytest.raises(DataFormatError) as e:
        load_jsquad(f)
    assert one_line(e) == f"{f}: article 1: column 'context': missing"
    f.write_text(json.dumps({"version": 1}))
    with pytest.raises(DataFormatError, match="expected an object with a 'data' list"):
        load_jsquad(f)
    f.write_text("{")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_jsquad(f)


def test_missing_local_copy(tmp_path):
    with pytest.raises(DataUnavailableError, match=r"JNLI: no file at .*nope\.json"):
        load_jnli(tmp_path / "nope.json")
    with pytest.raises(DataUnavailableError, match=r"JSQuAD: none of \['jsquad-valid-v1\.3\.json'"):
        load_jsquad(tmp_path)
    with pytest.raises(DataUnavailableError, match="JCoLA: no local file given and no hub copy configured"):
        load_jcola()


# ---- the hub path (datasets' load_dataset replaced: this machine may be offline) -----------------


@pytest.fixture
def hub(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def install(rows=None, error=None):
        def load_dataset(path, name=None, split=None):
            calls.append((path, name, split))
            if error is not None:
                raise error
            return datasets.Dataset.from_list(rows)

        monkeypatch.setattr(datasets, "load_dataset", load_dataset)
        return calls

    return install


def test_hub_rows_are_plain_dicts(hub):
    row = {"sentence_pair_id": "0", "yjcaptions_id": "1-2-3", "sentence1": "猫がいる。", "sentence2": "動物がいる。", "label": 1}
    calls = hub([row])
    rows = load_jnli()
    assert calls == [("Rakuten/JGLUE", "JNLI", "validation")]
    assert rows == [row] and type(rows[0]) is dict


def test_hub_mgsm_and_jsquad(hub):
    calls = hub([{"question": "問題", "answer": None, "answer_number": 18, "equation_solution": None}])
    assert load_mgsm()[0]["answer_number"] == 18
    assert calls[-1] == ("juletxara/mgsm", "ja", "test")
    qa = {"id": "q1", "title": "梅雨", "context": "梅雨 [SEP] 雨季", "question": "何？",
          "answers": {"text": ["雨季"], "answer_start": [5]}, "is_impossible": False}  # fmt: skip
    hub([qa])
    assert load_jsquad() == [qa]


def test_hub_row_checked(hub):
    hub([{**JCQA_ROW, "label": 9}])
    with pytest.raises(DataFormatError, match=r"^hub:Rakuten/JGLUE/JCommonsenseQA/validation: row 1: column 'label'"):
        load_jcommonsenseqa()


def test_offline_hub_is_one_line(hub):
    hub(error=ConnectionError("Couldn't reach 'Rakuten/JGLUE' on the Hub (OfflineModeIsEnabled)"))
    with pytest.raises(DataUnavailableError) as e:
        load_jnli()
    message = one_line(e)
    assert message.startswith("JNLI: Rakuten/JGLUE (config JNLI), split validation cannot be loaded from the hub")
    assert message.endswith(
        "; pass path= the file jnli-valid-v1.3.json (yahoojapan/JGLUE, datasets/jnli-v1.3/valid-v1.3.json) "
        "or a folder holding it"
    )
    assert e.value.__suppress_context__


def test_no_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DataUnavailableError, match="needs the optional package datasets"):
        load_mgsm()


def test_real_offline_hub_error(tmp_path):
    pytest.importorskip("datasets")
    code = (
        "from evobench.lmdata import load_jsquad, DataUnavailableError\n"
        "try:\n    load_jsquad()\nexcept DataUnavailableError as e:\n    print(e)\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("JSQuAD: Rakuten/JGLUE (config JSQuAD), split validation cannot")
    assert "jsquad-valid-v1.3.json" in lines[0]
