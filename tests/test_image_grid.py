"""The image grid of a comparison: a task that offers images gets ``images/<task>.png`` (rows: the
sources, then each baseline's recommended model of the first seed; columns: the first test examples)
in the results folder and in the tracker, with tiles equal to the images the task's hook draws."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evobench.compare import run_comparison
from evobench.config import validate
from evobench.image_grid import grid
from evobench.problem import Problem
from evobench.registry import TASKS
from evobench.task import TEST
from evobench.tasks.digits import DigitsTask, specialists_shared
from tests.tracking_helpers import ArtifactRecorder

PIL = pytest.importorskip("PIL.Image")


class PaintedDigits(DigitsTask):
    """digits whose hook paints each test digit with the model's probability p of its true class:
    RGB = (x * p, x * (1 - p), x) for the 8 x 8 pixel intensities x (0-16 -> 0-255)."""

    def images(self, model, split, limit=None):
        x, y = self.data[split]
        x, y = x[:limit], y[:limit]
        with torch.no_grad():
            p = torch.softmax(model(x), 1)[torch.arange(len(y)), y].numpy()
        out = []
        for xi, pi in zip(x.numpy(), p, strict=True):
            g = xi.reshape(8, 8) / 16.0
            rgb = np.stack([g * pi, g * (1 - pi), g], axis=-1)
            out.append(PIL.fromarray((rgb * 255).round().astype(np.uint8)))
        return out

    def image_captions(self, split, limit=None):
        return [f"digit {int(v)}" for v in self.data[split][1][:limit]]


def painted_digits() -> Problem:
    """The shared-init digit specialists, with painted test images."""
    p = specialists_shared()
    return Problem("painted-digits", PaintedDigits(), p.pool)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    TASKS.register("painted-digits", painted_digits)
    try:
        out = tmp_path_factory.mktemp("grid")
        tracker = ArtifactRecorder()
        cfg = validate({"tasks": ["painted-digits"], "baselines": ["random-search", "m2n2"], "budget": 6,
                        "seeds": [3, 4], "out": str(out)})
        comp = run_comparison(cfg, tracker=tracker, progress=False)
        yield comp, tracker
    finally:
        TASKS._entries.pop("painted-digits")


def test_grid_file_has_the_right_size_and_legend(compared):
    comp, tracker = compared
    png = comp.out_dir / "images" / "painted-digits.png"
    legend = json.loads(png.with_suffix(".json").read_text(encoding="utf-8"))
    assert legend["rows"] == ["digits-0to4", "digits-5to9", "random-search", "m2n2"]
    assert legend["columns"][:3] == [f"digit {int(v)}" for v in PaintedDigits().data[TEST][1][:3]]
    assert len(legend["columns"]) == 8
    # 8 columns of 8 px tiles x 3 + 4 px gaps after a 150 px label column; 4 rows under a 14 px header
    assert PIL.open(png).size == (150 + 4 + 8 * (24 + 4), 14 + 4 + 4 * (24 + 4))
    assert (str(png), "images") in tracker.artifacts
    assert (str(png.with_suffix(".json")), "images") in tracker.artifacts


def _tile(grid_pixels, row, col):
    x, y = 154 + col * 28, 18 + row * 28
    return grid_pixels[y:y + 24, x:x + 24]


def test_tiles_are_the_images_of_the_sources_and_recommended_models(compared):
    from safetensors.torch import load_file

    comp, _ = compared
    pixels = np.asarray(PIL.open(comp.out_dir / "images" / "painted-digits.png").convert("RGB"))
    problem = painted_digits()
    family = problem.pool.family
    models = [family.build(s) for _, s in problem.pool.sources]
    for label in ("random-search", "m2n2"):  # first seed (3) of each baseline, rebuilt from its saved weights
        run = next(r for r in comp.results if r.baseline == label and r.seed == 3)
        models.append(family.build(load_file(str(comp.out_dir / run.record / "best_model.safetensors"))))
    for row, model in enumerate(models):
        for col, im in enumerate(problem.task.images(model, TEST, limit=8)):
            expected = np.kron(np.asarray(im), np.ones((3, 3, 1), dtype=np.uint8))
            assert np.array_equal(_tile(pixels, row, col), expected), (row, col)
    # the rows differ: the tiles show the models, not one picture
    assert not np.array_equal(_tile(pixels, 0, 0), _tile(pixels, 1, 0))


def test_grid_refuses_ragged_rows():
    a = PIL.new("RGB", (4, 4))
    with pytest.raises(ValueError, match="row 'b' has 1 images, the first row 2"):
        grid([("a", [a, a]), ("b", [a])])
    with pytest.raises(ValueError, match="expected RGB of \\(4, 4\\)"):
        grid([("a", [a, PIL.new("RGB", (5, 4))])])
