"""MGSM (Japanese) test problems, its few-shot exemplars, and a translated-GSM8K search set.

Rows come in the schema of the hub data set ``juletxara/mgsm`` whichever the source: ``question``,
``answer`` (the worked answer, None where the source has none), ``answer_number`` (int when whole,
else float) and ``equation_solution`` (None where the source has none).

- Test problems: the MGSM TSV (no header, ``question<TAB>answer``, answers such as "2,125" read as
  2125), or the hub (``juletxara/mgsm``, config ``ja``, split ``test``).
- Exemplars: the JSON of the eight hand-translated exemplars (``{"ja": {"1": {"q": ..., "a": ...},
  ...}, "EXEMPLAR_NUMBER_ANSWERS": [...]}``), or the hub's ``train`` split (the same eight).
- Search set: JSON lines with at least ``question`` and a numeric ``answer_number`` (GSM8K train
  problems translated to Japanese); other columns are kept.
"""

from __future__ import annotations

import os
from typing import Any

from evobench.lmdata.source import (
    DataFormatError,
    check_row,
    hub_source,
    load_hub,
    number,
    optional_text,
    read_json,
    read_json_lines,
    read_text,
    resolve,
    row_error,
    text,
)
from evobench.metrics.numbers import gold_number

MGSM_HUB = "juletxara/mgsm"
_HUB_SCHEMA = {"question": text, "answer_number": number}


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _from_hub(name: str, lang: str, split: str, hint: str) -> list[dict[str, Any]]:
    source = hub_source(MGSM_HUB, lang, split)
    rows = load_hub(name, MGSM_HUB, lang, split, hint)
    out = []
    for n, row in enumerate(rows, start=1):
        row = check_row(row, _HUB_SCHEMA, source, n)
        for column in ("answer", "equation_solution"):
            if (problem := optional_text(row.get(column))) is not None:
                raise row_error(source, n, column, problem)
        out.append(row)
    return out


def read_mgsm_tsv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of an MGSM TSV file (no header; ``question<TAB>answer`` per line)."""
    file = resolve(path, "MGSM", ["mgsm_ja.tsv"])
    rows = []
    for n, line in enumerate(read_text(file).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataFormatError(
                f"{file}: row {n}: expected 2 tab-separated columns (question, answer), got {len(fields)}"
            )
        question, answer = fields
        if (problem := text(question)) is not None:
            raise row_error(file, n, "question", problem)
        try:
            answer_number = _whole(gold_number(answer))
        except ValueError as e:
            raise row_error(file, n, "answer", str(e)) from None
        rows.append(
            {"question": question, "answer": None, "answer_number": answer_number, "equation_solution": None}
        )
    if not rows:
        raise DataFormatError(f"{file}: no rows")
    return rows


def load_mgsm(path: str | os.PathLike | None = None, *, lang: str = "ja", split: str = "test") -> list[dict[str, Any]]:
    """MGSM test problems from a TSV file (or a folder holding ``mgsm_ja.tsv``), else from the hub."""
    if path is not None:
        return read_mgsm_tsv(path)
    hint = "mgsm_ja.tsv (google-research/url-nlp, mgsm/mgsm_ja.tsv)"
    return _from_hub("MGSM", lang, split, hint)


def load_mgsm_exemplars(path: str | os.PathLike | None = None, *, lang: str = "ja") -> list[dict[str, Any]]:
    """The MGSM few-shot exemplars in their numbered order, from the exemplar JSON or the hub's train split."""
    if path is None:
        hint = "mgsm_exemplars_ja_en.json (built from google-research/url-nlp, mgsm/exemplars.py)"
        return _from_hub("MGSM exemplars", lang, "train", hint)
    file = resolve(path, "MGSM exemplars", ["mgsm_exemplars_ja_en.json"])
    data = read_json(file)
    if not isinstance(data, dict) or not isinstance(data.get(lang), dict):
        raise DataFormatError(f"{file}: expected an object with a {lang!r} object of exemplars")
    numbers = data.get("EXEMPLAR_NUMBER_ANSWERS")
    solutions = data.get("EXEMPLAR_EQUATION_SOLUTIONS")
    keys = sorted(data[lang], key=lambda k: int(k) if k.isdigit() else -1)
    if [int(k) if k.isdigit() else None for k in keys] != list(range(1, len(keys) + 1)):
        raise DataFormatError(f"{file}: exemplar keys of {lang!r} must be 1..n, got {list(data[lang])}")
    if not isinstance(numbers, list) or len(numbers) != len(keys):
        raise DataFormatError(f"{file}: EXEMPLAR_NUMBER_ANSWERS must list {len(keys)} numbers")
    if solutions is not None and (not isinstance(solutions, list) or len(solutions) != len(keys)):
        raise DataFormatError(f"{file}: EXEMPLAR_EQUATION_SOLUTIONS must list {len(keys)} strings")
    rows = []
    for i, key in enumerate(keys):
        item = check_row(data[lang][key], {"q": text, "a": text}, f"{file} [{lang}]", key)
        if (problem := number(numbers[i])) is not None:
            raise row_error(file, key, "EXEMPLAR_NUMBER_ANSWERS", problem)
        solution = None if solutions is None else solutions[i]
        if (problem := optional_text(solution)) is not None:
            raise row_error(file, key, "EXEMPLAR_EQUATION_SOLUTIONS", problem)
        rows.append(
            {"question": item["q"], "answer": item["a"], "answer_number": numbers[i], "equation_solution": solution}
        )
    return rows


def load_gsm8k_ja(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The translated GSM8K search set: JSON lines with ``question`` and a numeric ``answer_number``."""
    file = resolve(path, "translated GSM8K", ["gsm8k_ja.jsonl"])
    return [check_row(row, _HUB_SCHEMA, str(file), n) for n, row in read_json_lines(file)]
