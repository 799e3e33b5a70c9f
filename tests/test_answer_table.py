"""The answer table of a comparison: a task that offers answers gets answers/<task>.{md,html,json} and
the example images (rows: the first test examples; an answer column per source and per baseline's
recommended model of the first seed), in the results folder and in the tracker, with answers equal to
the ones the models give when scored."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
import torch

from evobench.answer_table import check_answers, markdown, table_data
from evobench.compare import ANSWER_ROWS, run_comparison
from evobench.config import validate
from evobench.lmdata.images import ImageInput
from evobench.problem import Problem
from evobench.registry import TASKS
from evobench.task import TEST
from evobench.tasks.digits import DigitsTask, specialists_blocks
from tests.tracking_helpers import ArtifactRecorder

PIL = pytest.importorskip("PIL.Image")
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def digit_png(x: np.ndarray) -> bytes:
    """An 8 x 8 digit (intensities 0-16) as grey PNG bytes (value x 15)."""
    buf = io.BytesIO()
    PIL.fromarray((x.reshape(8, 8) * 15).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


class AnsweringDigits(DigitsTask):
    """digits whose answers hook names the predicted digit in words (argmax of the model's logits)."""

    def answers(self, model, split, limit=None):
        x, y = self.data[split]
        x, y = x[:limit], y[:limit]
        with torch.no_grad():
            pred = model(x).argmax(1).numpy()
        out = []
        for xi, yi, p in zip(x.numpy(), y.numpy(), pred, strict=True):
            data = digit_png(xi)
            out.append({"image": ImageInput(hashlib.sha256(data).hexdigest(), data, (8, 8)),
                        "question": "Which digit | is it?", "reference": WORDS[int(yi)],
                        "answer": WORDS[int(p)], "score": float(p == yi)})
        return out

    def images(self, model, split, limit=None):
        """The test digits themselves (for the image grid), whatever the model."""
        x = self.data[split][0][:limit]
        return [PIL.open(io.BytesIO(digit_png(xi))).convert("RGB") for xi in x.numpy()]


def answering_digits() -> Problem:
    """Block-stacked digit specialists (layer paths can be searched) with the answers hook."""
    p = specialists_blocks()
    return Problem("answering-digits", AnsweringDigits(), p.pool)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    TASKS.register("answering-digits", answering_digits)
    try:
        out = tmp_path_factory.mktemp("answers")
        tracker = ArtifactRecorder()
        cfg = validate({"tasks": ["answering-digits"], "baselines": ["random-search", "m2n2", "cmaes-dfs"], "budget": 6,
                        "seeds": [3, 4], "out": str(out)})
        comp = run_comparison(cfg, tracker=tracker, progress=False)
        yield comp, tracker
    finally:
        TASKS._entries.pop("answering-digits")


def _predictions(path) -> list[int]:
    return [int(json.loads(line)["prediction"]) for line in path.read_text(encoding="utf-8").splitlines()]


def test_table_answers_are_the_models_scored_answers(compared):
    comp, _ = compared
    data = json.loads((comp.out_dir / "answers" / "answering-digits.json").read_text(encoding="utf-8"))
    assert data["models"] == ["digits-0to4", "digits-5to9", "random-search", "m2n2", "cmaes-dfs"]  # dfs: a path
    _, y = AnsweringDigits().data[TEST]
    assert len(data["examples"]) == ANSWER_ROWS
    assert [e["reference"] for e in data["examples"]] == [WORDS[int(v)] for v in y[:ANSWER_ROWS]]
    # every column against the predictions the model's full test evaluation recorded
    recorded = {}
    for folder in sorted((comp.out_dir / "sources" / "answering-digits").iterdir()):
        recorded[folder.name.split("-", 1)[1]] = _predictions(folder / "records" / "answering-digits.jsonl")
    for folder in sorted((comp.out_dir / "runs").iterdir()):
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        if run["seed"] == 3:
            recorded[run["baseline"]] = _predictions(folder / "records" / "answering-digits.jsonl")
    assert set(recorded) == set(data["models"])
    for col, model in enumerate(data["models"]):
        answers = [e["answers"][col] for e in data["examples"]]
        assert all(a["model"] == model for a in answers)
        assert [a["answer"] for a in answers] == [WORDS[p] for p in recorded[model][:ANSWER_ROWS]]
        assert [a["score"] for a in answers] == [float(WORDS[p] == e["reference"]) for p, e in
                                                 zip(recorded[model], data["examples"], strict=False)]
    # the two specialists answer differently somewhere (the columns are not copies of one another)
    assert [a["answers"][0]["answer"] for a in data["examples"]] != [a["answers"][1]["answer"]
                                                                      for a in data["examples"]]


def test_table_files_show_the_images_and_text(compared):
    comp, tracker = compared
    root = comp.out_dir / "answers"
    x, y = AnsweringDigits().data[TEST]
    data = json.loads((root / "answering-digits.json").read_text(encoding="utf-8"))
    for i, ex in enumerate(data["examples"]):
        assert ex["image"] == f"answering-digits/{i + 1}.png"
        with PIL.open(root / ex["image"]) as im:
            assert np.array_equal(np.asarray(im.convert("L")), (x[i].numpy().reshape(8, 8) * 15).astype(np.uint8))
    md = (root / "answering-digits.md").read_text(encoding="utf-8").splitlines()
    assert md[2] == ("| # | image | question | reference | digits-0to4 | digits-5to9 | random-search | m2n2 | "
                     "cmaes-dfs |")
    first = data["examples"][0]
    cells = " | ".join(f"{a['answer']} ({a['score']:.2f})" for a in first["answers"])
    assert md[4] == (f"| 1 | ![1](answering-digits/1.png) | Which digit \\| is it? | {WORDS[int(y[0])]} | "
                     f"{cells} |")
    page = (root / "answering-digits.html").read_text(encoding="utf-8")
    assert page.count("<tr>") == ANSWER_ROWS + 1 and '<img src="answering-digits/1.png"' in page
    logged = {(p.split(comp.out_dir.name + "/", 1)[1], a) for p, a in tracker.artifacts}
    assert ("answers/answering-digits.md", "answers") in logged
    assert ("answers/answering-digits/8.png", "answers/answering-digits") in logged
    # the image grid shows the layer-path baseline's recommended model too
    legend = json.loads((comp.out_dir / "images" / "answering-digits.json").read_text(encoding="utf-8"))
    assert legend["rows"] == data["models"]


def test_no_table_for_a_task_without_the_hook(tmp_path):
    cfg = validate({"tasks": ["digits-specialists-shared"], "baselines": ["random-search"], "budget": 2,
                    "seeds": [0], "out": str(tmp_path)})
    comp = run_comparison(cfg, progress=False)
    assert comp.answers == {} and not (comp.out_dir / "answers").exists()


def test_markdown_escapes_cells_and_checks_rows():
    rows = [("a", [{"question": "q\nx", "reference": "r", "answer": "", "score": 0.5}]),
            ("b", [{"question": "q\nx", "reference": "r", "answer": "x|y", "score": 1.0}])]
    text = markdown(table_data("t", rows))
    assert text.splitlines()[4] == "| 1 |  | q<br>x | r | (empty) (0.50) | x\\|y (1.00) |"
    with pytest.raises(ValueError, match="'b' example 1 is not the first model's example"):
        check_answers("b", [{"question": "other", "reference": "r", "answer": "", "score": 0}], rows[0][1])
    with pytest.raises(ValueError, match="lacks \\['score'\\]"):
        check_answers("c", [{"question": "q", "reference": "r", "answer": ""}], None)
