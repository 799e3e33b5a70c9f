"""Answer tables of a comparison: for a task that offers answers (e.g. visual question answering),
one table per task of image / question / reference / answer, an answer column for each source model
and each baseline's recommended model (first seed), one row per test example, so that a user reads
what the merges say about the images.

A task offers answers by having a method ``answers(model, split, limit=None)`` that returns, for the
split's first ``limit`` examples, one dict per example with ``question``, ``reference``, ``answer``
(the model's answer as the task scores it), ``score`` (its per-example score) and optionally
``image`` (an :class:`~evobench.lmdata.images.ImageInput`). :func:`task_answers` finds the hook;
:func:`write_tables` writes, per task, ``answers/<task>.md`` (Markdown), ``answers/<task>.html`` (the
same table as a page with the images inline), ``answers/<task>.json`` (the table as data) and the
images as ``answers/<task>/<n>.png`` (n = 1, 2, ... the example's row), every file atomically.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evobench.image_grid import file_name, write_png
from evobench.jsonio import write_json, write_text

KEYS = ("question", "reference", "answer", "score")


def task_answers(task: Any) -> Callable | None:
    """The task's ``answers(model, split, limit=None)`` hook, or None when it offers none."""
    hook = getattr(task, "answers", None)
    return hook if callable(hook) else None


def check_answers(label: str, answers: Sequence[dict[str, Any]], first: Sequence[dict[str, Any]] | None) -> None:
    """ValueError (one line) unless every answer has :data:`KEYS` and, when ``first`` (the first
    model's answers) is given, the same examples (question, reference and image) in the same order."""
    for i, a in enumerate(answers):
        missing = [k for k in KEYS if k not in a]
        if missing:
            raise ValueError(f"answer table: {label!r} example {i + 1} lacks {missing}")
    if first is None:
        return
    if len(answers) != len(first):
        raise ValueError(f"answer table: {label!r} has {len(answers)} answers, the first model {len(first)}")
    for i, (a, b) in enumerate(zip(answers, first, strict=True)):
        same_image = getattr(a.get("image"), "sha256", None) == getattr(b.get("image"), "sha256", None)
        if a["question"] != b["question"] or a["reference"] != b["reference"] or not same_image:
            raise ValueError(f"answer table: {label!r} example {i + 1} is not the first model's example")


def table_data(task: str, rows: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> dict[str, Any]:
    """The table as JSON data: ``models`` (labels, in column order) and ``examples``, each with
    ``image`` (file name relative to the table or None), ``question``, ``reference`` and ``answers``
    (``{"model", "answer", "score"}`` per model)."""
    first = rows[0][1]
    examples = []
    for i, ex in enumerate(first):
        examples.append({"image": f"{file_name(task)}/{i + 1}.png" if ex.get("image") is not None else None,
                         "question": ex["question"], "reference": ex["reference"],
                         "answers": [{"model": label, "answer": answers[i]["answer"],
                                      "score": float(answers[i]["score"])} for label, answers in rows]})
    return {"task": task, "models": [label for label, _ in rows], "examples": examples}


def _md_cell(text: str) -> str:
    """``text`` fit for one Markdown table cell: pipes escaped, newlines as ``<br>``, empty as ``(empty)``."""
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")
    return text if text.strip() else "(empty)"


def markdown(data: dict[str, Any]) -> str:
    """The table in Markdown: ``# | image | question | reference | <model> ...``; each answer cell is
    the answer and its score in parentheses (2 decimals)."""
    head = ["#", "image", "question", "reference", *data["models"]]
    lines = [f"# Answers: {data['task']}", "",
             "| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    for i, ex in enumerate(data["examples"]):
        image = f"![{i + 1}]({ex['image']})" if ex["image"] else ""
        cells = [str(i + 1), image, _md_cell(ex["question"]), _md_cell(ex["reference"]),
                 *(f"{_md_cell(a['answer'])} ({a['score']:.2f})" for a in ex["answers"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def html_page(data: dict[str, Any]) -> str:
    """The table as an HTML page (images inline, 4x nearest-neighbour scaled; text escaped)."""
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in ["#", "image", "question", "reference", *data["models"]])
    body = []
    for i, ex in enumerate(data["examples"]):
        image = (f'<img src="{e(ex["image"])}" width="128" style="image-rendering: pixelated">'
                 if ex["image"] else "")
        answers = "".join(f"<td>{e(a['answer'])}<br><small>{a['score']:.2f}</small></td>" for a in ex["answers"])
        body.append(f"<tr><td>{i + 1}</td><td>{image}</td><td>{e(ex['question'])}</td>"
                    f"<td>{e(ex['reference'])}</td>{answers}</tr>")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Answers: " + e(data["task"]) +
            "</title></head><body>\n<h1>Answers: " + e(data["task"]) + "</h1>\n<table border=\"1\">\n<tr>" + head +
            "</tr>\n" + "\n".join(body) + "\n</table></body></html>\n")


def write_tables(tables: dict[str, list[tuple[str, list[dict[str, Any]]]]], folder: Path) -> list[Path]:
    """``answers/<task>.{md,html,json}`` and ``answers/<task>/<n>.png`` per task with rows; returns the
    files written (images first)."""
    out: list[Path] = []
    for task, rows in tables.items():
        if not rows:
            continue
        data = table_data(task, rows)
        root = folder / "answers"
        (root / file_name(task)).mkdir(parents=True, exist_ok=True)
        for ex, src in zip(data["examples"], rows[0][1], strict=True):
            if ex["image"]:
                write_png(root / ex["image"], src["image"].open())
                out.append(root / ex["image"])
        stem = root / file_name(task)
        out.append(write_text(stem.with_suffix(".md"), markdown(data)))
        out.append(write_text(stem.with_suffix(".html"), html_page(data)))
        out.append(write_json(stem.with_suffix(".json"), data))
    return out
