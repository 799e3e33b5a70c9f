"""Japanese visual question answering rows: JA-VG-VQA-500 and JA-VLM-Bench-In-the-Wild.

Rows come out as ``{"id", "question", "answer", "image"}`` with ``image`` an
:class:`~evobench.lmdata.images.ImageInput`, whichever the source:

- **JA-VG-VQA-500** (``SakanaAI/JA-VG-VQA-500``; splits ``test``, 500 images, and ``train``): one
  row per image with ``image``, ``image_id`` and ``qas`` (a list of ``{"qa_id", "question",
  "answer"}``). Only the first question/answer pair of each image is used, as the EvoVLM-JP
  evaluation does; ``id`` is the ``image_id`` (the row number when the column is absent).
- **JA-VLM-Bench-In-the-Wild** (``SakanaAI/JA-VLM-Bench-In-the-Wild``, split ``test``): 50 rows with
  ``question``, ``answer`` and ``image`` (42 images, some asked about twice); ``id`` is the row number.

A local copy is a folder (a download of the hub repository, e.g. ``huggingface-cli download
SakanaAI/JA-VG-VQA-500 --repo-type dataset --local-dir <folder>``) holding the split as parquet
(``data/<split>-*.parquet`` or ``<split>-*.parquet``; images stored as ``{"bytes", "path"}``) or as
JSON lines (``<split>.jsonl``, images as file paths relative to that file), or one such file. With
no path the hub is read through ``datasets``; offline without a copy the error names the data set
to download. Rows are checked on the way in (one-line :class:`DataFormatError` naming the file, row
and column: a missing or empty question or answer, no question/answer pair, a missing, unreadable,
unsupported or degenerate image); only the first ``limit`` rows are read and checked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from evobench.lmdata.images import checked_image
from evobench.lmdata.source import (
    DataFormatError,
    DataUnavailableError,
    check_row,
    hub_source,
    load_hub,
    present,
    read_json_lines,
    row_error,
    text,
)

VG_HUB = "SakanaAI/JA-VG-VQA-500"
WILD_HUB = "SakanaAI/JA-VLM-Bench-In-the-Wild"


def _qas(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return f"expected a non-empty list of question/answer pairs, got {value!r}"
    return None if isinstance(value[0], dict) else f"expected question/answer objects, got {value[0]!r}"


VG_SCHEMA = {"image": present, "qas": _qas}
WILD_SCHEMA = {"image": present, "question": text, "answer": text}


def split_files(folder: Path, split: str) -> list[Path]:
    """The files of ``split`` in a local copy: parquet shards (sorted) or one JSON-lines file."""
    for pattern in (f"data/{split}-*.parquet", f"{split}-*.parquet", f"{split}.parquet"):
        found = sorted(folder.glob(pattern))
        if found:
            return found
    return [folder / f"{split}.jsonl"] if (folder / f"{split}.jsonl").is_file() else []


def _read_parquet(files: list[Path], limit: int | None) -> list[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[tuple[int, dict[str, Any]]] = []
    for f in files:
        try:
            table = pq.read_table(f)
        except (pa.ArrowInvalid, OSError) as e:
            raise DataFormatError(f"{f}: not a readable parquet file ({' '.join(str(e).split())})") from None
        for row in table.to_pylist():
            if limit is not None and len(rows) >= limit:
                return rows
            rows.append((len(rows) + 1, row))
    if not rows and limit != 0:
        raise DataFormatError(f"{files[0]}: no rows")
    return rows


def _local_rows(path: Path, split: str, name: str, hub_id: str,
                limit: int | None) -> tuple[list[tuple[int, dict[str, Any]]], str, Path]:
    """``(numbered rows, source name, folder for relative image paths)`` of a local copy."""
    files = [path] if path.is_file() else split_files(path, split) if path.is_dir() else []
    if not files:
        if not path.exists():
            raise DataUnavailableError(f"{name}: no file or folder at {path}")
        raise DataUnavailableError(
            f"{name}: no {split} split in {path} (expected data/{split}-*.parquet or {split}.jsonl); download "
            f"{hub_id} there (huggingface-cli download {hub_id} --repo-type dataset --local-dir {path})")
    if files[0].suffix == ".jsonl":
        rows = read_json_lines(files[0])
        return (rows if limit is None else rows[:limit]), str(files[0]), files[0].parent
    return _read_parquet(files, limit), str(files[0] if len(files) == 1 else files[0].parent), files[0].parent


def _keep_image_bytes(dataset: Any) -> Any:
    import datasets

    return dataset.cast_column("image", datasets.Image(decode=False))


def _rows(path: str | os.PathLike | None, split: str, name: str, hub_id: str,
          limit: int | None) -> tuple[list[tuple[int, dict[str, Any]]], str, Path | None]:
    if path is not None:
        return _local_rows(Path(path).expanduser(), split, name, hub_id, limit)
    hint = f"{hub_id} (a folder holding data/{split}-*.parquet)"
    rows = load_hub(name, hub_id, None, split, hint, prepare=_keep_image_bytes)
    numbered = list(enumerate(rows, start=1))
    return (numbered if limit is None else numbered[:limit]), hub_source(hub_id, None, split), None


def load_ja_vg_vqa(path: str | os.PathLike | None = None, split: str = "test",
                   limit: int | None = None) -> list[dict[str, Any]]:
    """JA-VG-VQA-500 rows of ``split`` (first question/answer pair of each image; see the module docstring)."""
    rows, source, folder = _rows(path, split, "JA-VG-VQA-500", VG_HUB, limit)
    out = []
    for n, row in rows:
        row = check_row(row, VG_SCHEMA, source, n)
        qa = row["qas"][0]
        for column in ("question", "answer"):
            if (problem := text(qa.get(column))) is not None:
                raise row_error(source, n, f"qas[0].{column}", problem)
        image_id = row.get("image_id")
        out.append({"id": str(image_id if image_id is not None else n), "question": qa["question"],
                    "answer": qa["answer"], "image": checked_image(row["image"], source, n, folder=folder)})
    return out


def load_ja_vlm_wild(path: str | os.PathLike | None = None, split: str = "test",
                     limit: int | None = None) -> list[dict[str, Any]]:
    """JA-VLM-Bench-In-the-Wild rows of ``split`` (see the module docstring)."""
    rows, source, folder = _rows(path, split, "JA-VLM-Bench-In-the-Wild", WILD_HUB, limit)
    out = []
    for n, row in rows:
        row = check_row(row, WILD_SCHEMA, source, n)
        out.append({"id": str(n), "question": row["question"], "answer": row["answer"],
                    "image": checked_image(row["image"], source, n, folder=folder)})
    return out
