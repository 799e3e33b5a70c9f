"""The image-prompt task: the task contract, scores pinned by an independent computation, the prompt-file
loader's one-line errors, and the task through the CLI (plan errors, a comparison, evobench eval)."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from evobench.task_contract import TaskContract
from tests.vision_helpers import OPTIONS, VISION, data_folder, save_image

pytestmark = VISION


def image_prompt(**options):
    from evobench.tasks.image_prompt import image_prompt as factory

    return factory(**options)


class TestImagePromptContract(TaskContract):
    limit = 3

    @pytest.fixture
    def task_factory(self):
        return image_prompt, dict(OPTIONS)

    @pytest.fixture
    def changed_task_factory(self):
        return image_prompt, {**OPTIONS, "limit_test": 7}


@pytest.fixture(scope="module")
def problem():
    return image_prompt(**OPTIONS)


def by_hand(problem, pipe, prompt, seed, reference=None):
    """Generate with the pipeline's own call, round to 8 bits, embed with the open_clip model directly."""
    import torch
    from PIL import Image

    out = pipe(prompt, num_inference_steps=OPTIONS["steps"], guidance_scale=OPTIONS["guidance_scale"],
               generator=torch.Generator().manual_seed(seed), output_type="np").images[0]
    image = Image.fromarray(np.round(out * 255).astype(np.uint8))
    scorer = problem.task.scorer
    with torch.no_grad():
        fi = scorer.model.encode_image(scorer.preprocess(image)[None])[0].double().numpy()
        ft = scorer.model.encode_text(scorer.tokenizer([prompt]))[0].double().numpy()
        fr = None if reference is None else \
            scorer.model.encode_image(scorer.preprocess(reference)[None])[0].double().numpy()
    cos = fi @ ft / np.linalg.norm(fi) / np.linalg.norm(ft)
    sim = None if fr is None else fi @ fr / np.linalg.norm(fi) / np.linalg.norm(fr)
    return image, max(cos, 0.0), sim


def test_scores_are_clip_scores_over_100_computed_by_hand(problem):
    from evobench.tasks.image_prompt import pixels_sha256
    from evobench.tasks.image_prompt_data import builtin_splits

    pipe = problem.pool.family.build(problem.pool.sources[1][1])
    r = problem.task.evaluate(pipe, "test", limit=4)
    examples = builtin_splits()["test"][:4]
    want = [by_hand(problem, pipe, ex.prompt, ex.seed)[1] for ex in examples]
    np.testing.assert_allclose(r.scores, want, rtol=1e-9, atol=1e-12)
    assert r.primary == pytest.approx(np.mean(want), abs=1e-12)
    assert r.metrics["clip_score_ja"] == pytest.approx(np.mean(want[1::2]), abs=1e-12)  # ja prompts: 2nd, 4th
    assert r.metrics["clip_score_en"] == pytest.approx(np.mean(want[0::2]), abs=1e-12)
    np.testing.assert_allclose(r.descriptors, [np.mean(want[1::2]), np.mean(want[0::2])], atol=1e-12)
    assert "image_similarity" not in r.metrics  # no reference images
    shas = [pixels_sha256(im) for im in problem.task.images(pipe, "test", limit=2)]
    assert shas == [p["image_sha256"] for p in r.predictions[:2]]
    assert shas[0] == pixels_sha256(by_hand(problem, pipe, examples[0].prompt, examples[0].seed)[0])
    rec = r.predictions[1]
    assert rec["prompt"] == "浜辺を走る犬" and rec["seed"] == 22
    assert rec["clip_score"] == pytest.approx(100 * want[1], abs=1e-9)


def test_merging_changes_the_images_and_sources_score_apart(problem):
    from evobench.spaces.ps import PSSpace

    space = PSSpace(problem.pool)
    a, b = (problem.task.evaluate(problem.pool.family.build(s), "search") for _, s in problem.pool.sources)
    mid = problem.task.evaluate(space.build(np.full(space.dim, 0.5)), "search")
    shas = [[p["image_sha256"] for p in r.predictions] for r in (a, b, mid)]
    assert all(len({x[i] for x in shas}) == 3 for i in range(len(shas[0])))
    assert not np.array_equal(a.scores, b.scores)


def test_image_fitness_scores_the_cosine_with_the_reference(tmp_path, problem):
    """A reference that IS the image a source draws for the prompt scores 1; another scores its cosine."""
    pipe = problem.pool.family.build(problem.pool.sources[0][1])
    image, _, _ = by_hand(problem, pipe, "a cat", 5)
    image.save(tmp_path / "same.png")
    other = save_image(tmp_path / "other.jpg", size=(64, 48), seed=1)
    data_folder(tmp_path, [{"prompt": "a cat", "seed": 5, "reference": "same.png"},
                           {"prompt": "猫", "seed": 6, "reference": "other.jpg"}],
                [{"prompt": "a dog", "seed": 7, "reference": "other.jpg"},
                 {"prompt": "犬", "seed": 8, "reference": "same.png"}])
    p = image_prompt(**OPTIONS, data_dir=str(tmp_path), fitness="image")
    assert p.task.primary_metric == "image_similarity" and p.task.descriptor_bounds == ((-1.0, 1.0),) * 2
    r = p.task.evaluate(p.pool.family.build(p.pool.sources[0][1]), "search")
    from PIL import Image

    with Image.open(other) as im:
        _, clip2, sim2 = by_hand(problem, pipe, "猫", 6, reference=im.convert("RGB"))
    assert r.scores[0] == pytest.approx(1.0, abs=1e-12)
    assert r.scores[1] == pytest.approx(sim2, abs=1e-9) and sim2 < 0.999
    assert r.predictions[1]["clip_score"] == pytest.approx(100 * clip2, abs=1e-9)
    assert r.primary == pytest.approx(np.mean([1.0, sim2]), abs=1e-9)
    assert r.metrics["image_similarity"] == r.primary and "clip_score" in r.metrics


def test_converted_modes_score_like_the_rgb_image(tmp_path):
    from PIL import Image

    from evobench.tasks.image_prompt_data import load_folder

    src = save_image(tmp_path / "rgb.png", size=(40, 40), seed=2)
    with Image.open(src) as im:
        for mode in ("L", "P", "RGBA", "LA", "CMYK"):
            suffix = "jpg" if mode == "CMYK" else "png"
            im.convert(mode).save(tmp_path / f"m-{mode}.{suffix}")
    rows = [{"prompt": mode, "seed": i, "reference": f"m-{mode}.{'jpg' if mode == 'CMYK' else 'png'}"}
            for i, mode in enumerate(("L", "P", "RGBA", "LA", "CMYK"))]
    data_folder(tmp_path, rows, [{"prompt": "x", "seed": 9}])
    data = load_folder(tmp_path)
    for ex in data["search"]:
        assert ex.image.mode == "RGB" and ex.image.size == (40, 40)
        with Image.open(tmp_path / ex.reference) as im:
            want = (im.convert("RGBA") if im.mode in ("P", "PA") else im).convert("RGB")
        assert np.array_equal(np.asarray(ex.image), np.asarray(want)), ex.prompt


def _bad_folder(tmp_path, case):
    save_image(tmp_path / "ok.png")
    ok = {"prompt": "a cat", "seed": 1}
    search, test = [ok], [{"prompt": "a dog", "seed": 2}]
    if case == "missing image":
        search = [ok, {"prompt": "x", "seed": 3, "reference": "gone.png"}]
    elif case == "unreadable image":
        (tmp_path / "junk.png").write_bytes(b"not an image at all")
        search = [ok, {"prompt": "x", "seed": 3, "reference": "junk.png"}]
    elif case == "16-bit image":
        save_image(tmp_path / "deep.png", mode="I;16")
        search = [ok, {"prompt": "x", "seed": 3, "reference": "deep.png"}]
    elif case == "small image":
        save_image(tmp_path / "small.png", size=(8, 8))
        search = [ok, {"prompt": "x", "seed": 3, "reference": "small.png"}]
    elif case == "strip":
        save_image(tmp_path / "strip.png", size=(200, 20))
        search = [ok, {"prompt": "x", "seed": 3, "reference": "strip.png"}]
    elif case == "misspelt column":
        search = [ok, {"prompt": "x", "seed": 3, "refrence": "ok.png"}]
    elif case == "bad seed":
        search = [ok, {"prompt": "x", "seed": -1}]
    elif case == "empty prompt":
        search = [ok, {"prompt": " ", "seed": 3}]
    elif case == "overlap":
        test = [{"prompt": "a dog", "seed": 2}, dict(ok)]
    data_folder(tmp_path, search, test)
    if case == "no test file":
        (tmp_path / "test.jsonl").unlink()
    return tmp_path


@pytest.mark.parametrize("case, match", [
    ("missing image", r"search\.jsonl: row 2: column 'reference': image file '.*gone\.png' does not exist"),
    ("unreadable image", r"search\.jsonl: row 2: column 'reference': '.*junk\.png': unreadable image"),
    ("16-bit image", r"row 2: column 'reference': '.*deep\.png': image mode 'I;16' is not 8-bit"),
    ("small image", r"row 2: column 'reference': .*8 x 8 pixels is smaller than 16 pixels on a side"),
    ("strip", r"row 2: column 'reference': .*200 x 20 pixels has an aspect ratio above 4:1"),
    ("misspelt column", r"row 2: column 'refrence': not a column of the schema \(prompt, seed, reference\)"),
    ("bad seed", r"row 2: column 'seed': expected an integer 0 <= seed < 2\*\*63, got -1"),
    ("empty prompt", r"row 2: column 'prompt': expected a non-empty string"),
    ("overlap", r"test\.jsonl: example 2 \(prompt 'a cat', seed 1\) is also example 1 of search\.jsonl"),
    ("no test file", r"has no test\.jsonl"),
])
def test_bad_data_is_one_line_naming_file_row_and_column(tmp_path, case, match):
    from evobench.lmdata.source import DataFormatError
    from evobench.tasks.image_prompt_data import load_folder

    with pytest.raises(DataFormatError, match=match) as info:
        load_folder(_bad_folder(tmp_path, case))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("options, match", [
    ({"fitness": "image"}, r"fitness 'image' needs a reference image for every example; search example 1 has none"),
    ({"fitness": "pixels"}, "fitness must be one of 'text', 'image'"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"height": 30}, "height must be a multiple of 8"),
    ({"guidance_scale": float("nan")}, "guidance_scale must be a finite number"),
    ({"models": "org/pipe"}, "models must be a non-empty list"),
    ({"base": "org/base"}, "base is given without models"),
    ({"clip": "ViT-B-32"}, "expected 'NAME:TAG'"),
    ({"dtype": "int8"}, "dtype must be a torch floating dtype name"),
    ({"models": ["org/pipe"], "base": 3}, "base must be a pipeline folder or hub id"),
])
def test_bad_options_are_one_line_value_errors(options, match):
    with pytest.raises(ValueError, match=match) as info:
        image_prompt(**{**OPTIONS, **options})
    assert "\n" not in str(info.value)


def test_cli_plan_error_is_one_line(tmp_path, capsys):
    from evobench.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"tasks": [{"name": "image-prompt", "options": {**OPTIONS, "data_dir": str(tmp_path)}}],
                               "baselines": ["random-search"], "budget": 2, "seeds": [0]}))
    assert main(["run", "--config", str(cfg), "--no-tracking", "--no-progress", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "image-prompt" in err and "has no search.jsonl" in err


@pytest.mark.slow
def test_comparison_and_eval_end_to_end(tmp_path, monkeypatch):
    """Two baselines head-to-head on the tiny pipelines; the recommended UNet re-scores exactly with
    evobench eval; a saved pipeline folder is scored by evobench eval."""
    from evobench.cli import main
    from evobench.registry import TASKS
    from evobench.tasks.image_prompt import image_prompt as factory

    cfg = tmp_path / "c.yaml"
    opts = {**OPTIONS, "limit_search": 3, "limit_test": 4}
    cfg.write_text(json.dumps({"tasks": [{"name": "image-prompt", "options": opts}], "name": "img",
                               "baselines": ["random-search", "cmaes-ps"], "budget": 3, "seeds": [0]}))
    assert main(["run", "--config", str(cfg), "--no-tracking", "--no-progress", "--out", str(tmp_path / "out")]) == 0
    (folder,) = (tmp_path / "out").glob("img-*")
    results = json.loads((folder / "results.json").read_text())
    runs = sorted(folder.glob("runs/*"))
    assert len(runs) == 2 and len(list(folder.glob("sources/image-prompt/*"))) == 2
    run = json.loads((runs[0] / "run.json").read_text())
    rec = [json.loads(line) for line in (runs[0] / "records" / "image-prompt.jsonl").read_text().splitlines()]
    assert len(rec) == 4 and {"prompt", "seed", "clip_score", "image_sha256", "example_id"} <= set(rec[0])
    assert "image-prompt" in json.dumps(results)

    monkeypatch.setitem(TASKS._entries, "image-prompt", functools.partial(factory, **opts))
    assert main(["eval", str(runs[0] / "best_model.safetensors"), "--tasks", "image-prompt", "--no-tracking",
                 "--out", str(tmp_path / "eval")]) == 0
    (ev,) = (tmp_path / "eval").glob("eval-*")
    again = json.loads((ev / "results.json").read_text())["tasks"]["image-prompt"]
    assert again["score"] == pytest.approx(run["test_score"], abs=1e-12)

    problem = factory(**opts)
    from evobench.models.tiny_diffusion import tiny_sources

    _, sources = tiny_sources()
    sources["tiny-b"].save_pretrained(tmp_path / "pipe-b", safe_serialization=True)
    assert main(["eval", str(tmp_path / "pipe-b"), "--tasks", "image-prompt", "--no-tracking",
                 "--out", str(tmp_path / "eval-b"), "--device", "cpu"]) == 0
    (ev_b,) = (tmp_path / "eval-b").glob("eval-*")
    got = json.loads((ev_b / "results.json").read_text())["tasks"]["image-prompt"]["score"]
    want = problem.task.evaluate(problem.pool.family.build(problem.pool.sources[1][1]), "test").primary
    assert got == pytest.approx(want, abs=1e-12)


def test_default_scorer_is_tiny_for_the_tiny_pipelines_and_clipscore_s_model_for_real_ones():
    from evobench.tasks.image_prompt import default_clip

    assert image_prompt(steps=1, limit_search=1, limit_test=1).task.scorer.name == "tiny"
    assert default_clip(["org/sd"]) == "ViT-B-32:openai" and default_clip(None) == "tiny"
