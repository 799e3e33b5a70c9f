"""JGLUE (JCommonsenseQA, JNLI, JSQuAD) and JCoLA rows, from the released files or the hub.

Rows come in the schema of the hub data set ``Rakuten/JGLUE`` (the one the Japanese LM Evaluation
Harness reads), whichever the source:

- JCommonsenseQA: ``q_id, question, choice0..choice4, label`` (label = index of the right choice).
- JNLI: ``sentence_pair_id, yjcaptions_id, sentence1, sentence2, label`` with ``label`` an index
  into :data:`JNLI_LABELS` (entailment, contradiction, neutral: the order of the harness's answer
  choices 含意, 矛盾, 中立); the released file spells the label out and is converted.
- JSQuAD: one row per question, ``id, title, context, question, answers, is_impossible`` with
  ``answers = {"text": [...], "answer_start": [...]}``; ``context`` is the file's "title [SEP] text".
- JCoLA: ``uid, source, label (0/1), diacritic, sentence, original`` (JSON lines as released).

The released validation files are JSON lines (JSQuAD: one SQuAD-style JSON document).
"""

from __future__ import annotations

import os
from typing import Any

from evobench.lmdata.source import (
    Check,
    DataFormatError,
    DataUnavailableError,
    check_row,
    hub_source,
    id_value,
    integer,
    load_hub,
    one_of,
    optional_text,
    present,
    read_json,
    read_json_lines,
    resolve,
    row_error,
    text,
)

JGLUE_HUB = "Rakuten/JGLUE"
JNLI_LABELS = ("entailment", "contradiction", "neutral")

_JCQA = {"q_id": integer, "question": text, **{f"choice{i}": text for i in range(5)}, "label": one_of(*range(5))}
_JNLI = {
    "sentence_pair_id": id_value,
    "yjcaptions_id": id_value,
    "sentence1": text,
    "sentence2": text,
    "label": one_of(*JNLI_LABELS, *range(len(JNLI_LABELS))),
}
_JCOLA = {"uid": integer, "source": text, "label": one_of(0, 1), "diacritic": optional_text, "sentence": text}
_QA = {"id": text, "question": text, "is_impossible": one_of(False, True)}
_JGLUE_HINT = "{file} (yahoojapan/JGLUE, datasets/{folder}/valid-v1.3.json)"


def _rows(
    path: str | os.PathLike | None,
    split: str,
    name: str,
    config: str | None,
    file_names: list[str],
    folder: str,
    schema: dict[str, Check],
    hub_id: str = JGLUE_HUB,
) -> list[dict[str, Any]]:
    if path is not None:
        file = resolve(path, name, file_names)
        return [check_row(row, schema, str(file), n) for n, row in read_json_lines(file)]
    hint = _JGLUE_HINT.format(file=file_names[0], folder=folder)
    rows = load_hub(name, hub_id, config, split, hint)
    source = hub_source(hub_id, config, split)
    return [check_row(row, schema, source, n) for n, row in enumerate(rows, start=1)]


def load_jcommonsenseqa(path: str | os.PathLike | None = None, *, split: str = "validation") -> list[dict[str, Any]]:
    """JCommonsenseQA from a JSON-lines file (or a folder holding it), else from the hub."""
    names = ["jcommonsenseqa-valid-v1.3.json", "valid-v1.3.json", "jcommonsenseqa-valid-v1.1.json"]
    return _rows(path, split, "JCommonsenseQA", "JCommonsenseQA", names, "jcommonsenseqa-v1.3", _JCQA)


def load_jnli(path: str | os.PathLike | None = None, *, split: str = "validation") -> list[dict[str, Any]]:
    """JNLI from a JSON-lines file (or a folder holding it), else from the hub; labels as indices."""
    names = ["jnli-valid-v1.3.json", "valid-v1.3.json", "jnli-valid-v1.1.json"]
    rows = _rows(path, split, "JNLI", "JNLI", names, "jnli-v1.3", _JNLI)
    for row in rows:
        if isinstance(row["label"], str):
            row["label"] = JNLI_LABELS.index(row["label"])
    return rows


def load_jcola(
    path: str | os.PathLike | None = None,
    *,
    domain: str = "in_domain",
    split: str = "validation",
    hub_id: str | None = None,
    config: str | None = None,
) -> list[dict[str, Any]]:
    """JCoLA from a JSON-lines file (or a folder holding ``<domain>_valid-v1.0.json``).

    The hub is read only when ``hub_id`` is given (no copy is configured by default).
    """
    if domain not in ("in_domain", "out_of_domain"):
        raise ValueError(f"JCoLA domain must be 'in_domain' or 'out_of_domain', got {domain!r}")
    names = [f"{domain}_valid-v1.0.json"]
    if path is None and hub_id is None:
        raise DataUnavailableError(
            f"JCoLA: no local file given and no hub copy configured; pass path= the file {names[0]} "
            "(osekilab/JCoLA, data/jcola-v1.0/) or a folder holding it"
        )
    return _rows(path, split, "JCoLA", config, names, "jcola-v1.0", _JCOLA, hub_id=hub_id or JGLUE_HUB)


def _check_answers(answers: Any, source: str, n: int | str) -> dict[str, list]:
    """Hub form ``{"text": [...], "answer_start": [...]}`` from either form; at least one answer."""
    if isinstance(answers, list):  # the released file: [{"text": ..., "answer_start": ...}, ...]
        items = [check_row(a, {"text": text, "answer_start": integer}, source, n) for a in answers]
        answers = {"text": [a["text"] for a in items], "answer_start": [a["answer_start"] for a in items]}
    if not isinstance(answers, dict) or not isinstance(answers.get("text"), list):
        raise row_error(source, n, "answers", "expected a list of {text, answer_start} or {text: [...], ...}")
    starts = answers.get("answer_start")
    if not answers["text"] or not isinstance(starts, list) or len(starts) != len(answers["text"]):
        raise row_error(source, n, "answers", "expected one or more answers, each with an answer_start")
    for t, s in zip(answers["text"], starts, strict=True):
        if text(t) is not None or integer(s) is not None:
            raise row_error(source, n, "answers", f"bad answer {t!r} at {s!r}")
    return {"text": list(answers["text"]), "answer_start": list(starts)}


def read_jsquad(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The SQuAD-style JSQuAD file flattened to one row per question, in file order.

    Row numbers in messages count questions from 1 over the whole file; a fault above the
    questions names the article (counted from 1).
    """
    file = resolve(path, "JSQuAD", ["jsquad-valid-v1.3.json", "valid-v1.3.json", "jsquad-valid-v1.1.json"])
    data = read_json(file)
    source = str(file)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataFormatError(f"{file}: expected an object with a 'data' list of articles")
    rows: list[dict[str, Any]] = []
    for a, article in enumerate(data["data"], start=1):
        article = check_row(article, {"title": text}, source, a, unit="article")
        if not isinstance(article.get("paragraphs"), list):
            raise row_error(source, a, "paragraphs", "expected a list", unit="article")
        for paragraph in article["paragraphs"]:
            paragraph = check_row(paragraph, {"context": text}, source, a, unit="article")
            if not isinstance(paragraph.get("qas"), list):
                raise row_error(source, a, "qas", "expected a list", unit="article")
            for qa in paragraph["qas"]:
                n = len(rows) + 1
                qa = check_row(qa, {**_QA, "answers": present}, source, n)
                rows.append(
                    {
                        "id": qa["id"],
                        "title": article["title"],
                        "context": paragraph["context"],
                        "question": qa["question"],
                        "answers": _check_answers(qa["answers"], source, n),
                        "is_impossible": qa["is_impossible"],
                    }
                )
    if not rows:
        raise DataFormatError(f"{file}: no questions")
    return rows


def load_jsquad(path: str | os.PathLike | None = None, *, split: str = "validation") -> list[dict[str, Any]]:
    """JSQuAD questions from the SQuAD-style file (or a folder holding it), else from the hub."""
    if path is not None:
        return read_jsquad(path)
    hint = _JGLUE_HINT.format(file="jsquad-valid-v1.3.json", folder="jsquad-v1.3")
    source = hub_source(JGLUE_HUB, "JSQuAD", split)
    rows = []
    for n, row in enumerate(load_hub("JSQuAD", JGLUE_HUB, "JSQuAD", split, hint), start=1):
        row = check_row(row, {**_QA, "title": text, "context": text, "answers": present}, source, n)
        row["answers"] = _check_answers(row["answers"], source, n)
        rows.append(row)
    return rows
