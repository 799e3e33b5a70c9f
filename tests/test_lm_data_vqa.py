"""JA-VG-VQA-500 and JA-VLM-Bench-In-the-Wild rows from generated copies in the hub schema; bad rows and
bad images are one-line errors naming file, row and column."""

from __future__ import annotations

import hashlib
import re

import pytest

pytest.importorskip("PIL")
pytest.importorskip("pyarrow")

from evobench.lmdata import DataFormatError, DataUnavailableError  # noqa: E402
from evobench.lmdata.images import ImageInput, checked_image  # noqa: E402
from evobench.lmdata.vqa import load_ja_vg_vqa, load_ja_vlm_wild  # noqa: E402
from tests.vlm_helpers import (  # noqa: E402
    ANSWERS,
    QUESTIONS,
    encoded_image,
    vg_rows,
    wild_rows,
    write_jsonl,
    write_parquet,
)


def test_vg_rows_from_a_hub_download(tmp_path):
    write_parquet(vg_rows(3, 7), tmp_path / "data" / "test-00000-of-00001.parquet")
    rows = load_ja_vg_vqa(tmp_path, "test")
    assert [r["id"] for r in rows] == ["7", "8", "9"]
    assert [r["question"] for r in rows] == QUESTIONS[:3]  # the first pair of each image only
    assert [r["answer"] for r in rows] == ANSWERS[:3]
    data = encoded_image(8)
    assert rows[1]["image"] == ImageInput(hashlib.sha256(data).hexdigest(), data)
    assert rows[1]["image"].size == (60, 40)
    assert rows[1]["image"].open().mode == "RGB"
    assert len(load_ja_vg_vqa(tmp_path, "test", limit=2)) == 2


def test_wild_rows_from_json_lines_with_image_files(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(encoded_image(1, fmt="JPEG"))
    rows = [{"question": q, "answer": a, "image": "img/a.jpg"} for q, a in zip(QUESTIONS, ANSWERS, strict=True)]
    write_jsonl(rows, tmp_path / "test.jsonl")
    got = load_ja_vlm_wild(tmp_path, "test")
    assert [(r["id"], r["question"], r["answer"]) for r in got] == \
        [(str(i + 1), q, a) for i, (q, a) in enumerate(zip(QUESTIONS, ANSWERS, strict=True))]
    assert len({r["image"].sha256 for r in got}) == 1  # one image asked about four times


def test_wild_rows_from_parquet_shards_in_order(tmp_path):
    rows = wild_rows(6)
    write_parquet(rows[:4], tmp_path / "data" / "test-00000-of-00002.parquet")
    write_parquet(rows[4:], tmp_path / "data" / "test-00001-of-00002.parquet")
    got = load_ja_vlm_wild(tmp_path, "test")
    assert [r["question"] for r in got] == [r["question"] for r in rows]
    assert [r["id"] for r in got] == ["1", "2", "3", "4", "5", "6"]


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["qas"][0].update(answer=""), r"row 2: column 'qas\[0\].answer': empty string"),
    (lambda r: r["qas"][0].pop("question"), r"row 2: column 'qas\[0\].question': expected a string, got NoneType"),
    (lambda r: r.update(qas=[]), r"row 2: column 'qas': expected a non-empty list"),
    (lambda r: r.update(image={"bytes": b"not an image", "path": None}), r"row 2: column 'image': unreadable image"),
    (lambda r: r.update(image={"bytes": None, "path": None}), r"row 2: column 'image': expected image bytes"),
    (lambda r: r.update(image={"bytes": encoded_image(0, mode="F", fmt="TIFF"), "path": None}),
     r"row 2: column 'image': image mode 'F' is not supported"),
    (lambda r: r.update(image={"bytes": encoded_image(0, size=(2, 300)), "path": None}),
     r"row 2: column 'image': image of 300 x 2 pixels has an aspect ratio above 20:1"),
    (lambda r: r.update(image={"bytes": encoded_image(0)[:60], "path": None}), r"row 2: column 'image': unreadable"),
])
def test_bad_vg_rows_are_one_line_errors(tmp_path, change, message):
    rows = vg_rows(3)
    change(rows[1])
    path = write_parquet(rows, tmp_path / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(DataFormatError) as e:
        load_ja_vg_vqa(tmp_path, "test")
    assert _one_line(e).startswith(f"{path}: ")
    assert re.search(message, str(e.value)), str(e.value)


def test_rows_past_the_limit_are_not_read(tmp_path):
    rows = vg_rows(3)
    rows[2]["qas"][0]["answer"] = ""
    write_parquet(rows, tmp_path / "data" / "test-00000-of-00001.parquet")
    assert len(load_ja_vg_vqa(tmp_path, "test", limit=2)) == 2
    with pytest.raises(DataFormatError, match="row 3"):
        load_ja_vg_vqa(tmp_path, "test")


def test_missing_image_file_and_empty_wild_answer(tmp_path):
    write_jsonl([{"question": "何？", "answer": "犬", "image": "gone.png"}], tmp_path / "test.jsonl")
    with pytest.raises(DataFormatError) as e:
        load_ja_vlm_wild(tmp_path, "test")
    assert _one_line(e) == (f"{tmp_path / 'test.jsonl'}: row 1: column 'image': image file "
                            f"{str(tmp_path / 'gone.png')!r} does not exist")
    write_jsonl([{"question": "何？", "answer": " ", "image": "gone.png"}], tmp_path / "test.jsonl")
    with pytest.raises(DataFormatError, match=r"row 1: column 'answer': empty string"):
        load_ja_vlm_wild(tmp_path, "test")


def test_a_folder_without_the_split_says_what_to_download(tmp_path):
    with pytest.raises(DataUnavailableError) as e:
        load_ja_vg_vqa(tmp_path, "train")
    assert _one_line(e) == (f"JA-VG-VQA-500: no train split in {tmp_path} (expected data/train-*.parquet or "
                            f"train.jsonl); download SakanaAI/JA-VG-VQA-500 there (huggingface-cli download "
                            f"SakanaAI/JA-VG-VQA-500 --repo-type dataset --local-dir {tmp_path})")


def test_image_modes_are_converted_to_rgb():
    for mode in ("L", "P", "RGBA", "CMYK", "1"):
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        image = checked_image({"bytes": encoded_image(3, mode=mode, fmt=fmt)}, "src", 1)
        assert image.open().mode == "RGB", mode
