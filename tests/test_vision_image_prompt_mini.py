"""image-prompt-mini: the synthetic world, cached deterministic training, a CLIP that reads the world,
and the merge story (a task-arithmetic merge of the two specialists beats both on the test prompts)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.vision_helpers import VISION

pytestmark = VISION


def _mini():
    from evobench.tasks import image_prompt_mini

    return image_prompt_mini


def test_world_images_and_captions_by_hand():
    m = _mini()
    img = m.render("red", "circle")
    assert img.shape == (32, 32, 3) and img.dtype == np.float32
    assert np.allclose(img[16, 16], (0.90, 0.12, 0.10))  # the centre is the shape's colour
    assert np.allclose(img[0, 0], 0.08)  # the corner is background
    # a circle of radius 10 at (16, 16): pixel centres with (x + .5 - 16)^2 + (y + .5 - 16)^2 <= 100
    yy, xx = np.mgrid[0:32, 0:32] + 0.5
    inside = (xx - 16) ** 2 + (yy - 16) ** 2 <= 100
    assert int((img[..., 2] == np.float32(0.10)).sum()) == int(inside.sum())
    cross = m.render("blue", "cross")
    assert np.allclose(cross[16, 16], (0.15, 0.30, 0.95)) and np.allclose(cross[8, 8], 0.08)
    assert m.caption("red", "circle", "en") == "a red circle"
    assert m.caption("yellow", "triangle", "ja") == "黄色い三角"
    with pytest.raises(ValueError, match="language must be 'en' or 'ja'"):
        m.caption("red", "circle", "fr")


def test_prompts_cover_both_languages_and_test_pairs_are_unseen_in_search():
    m = _mini()
    splits = m.mini_splits()
    assert [len(v) for v in splits.values()] == [8, 8]
    for exs in splits.values():
        assert sorted(ex.language for ex in exs) == ["en"] * 4 + ["ja"] * 4
    search = {(c, s) for c, s, _, _ in m.SEARCH_PROMPTS}
    assert not search & {(c, s) for c, s, _, _ in m.TEST_PROMPTS}
    assert splits["test"][1].prompt == "赤い三角"


TINY = dict(n_images=32, clip_steps=2, vae_steps=2, base_steps=2, ft_steps=2, batch_size=4, clip_batch=8, unet_batch=4)


def test_training_is_cached_and_deterministic(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    m = _mini()
    recipe = m.Recipe(**TINY)
    monkeypatch.setenv("EVOBENCH_CACHE", str(tmp_path / "a"))
    before = m.TRAINING_RUNS["count"]
    a = m.load_or_train(recipe)
    assert m.TRAINING_RUNS["count"] - before == 5  # CLIP, VAE, base, en, ja
    assert m.load_or_train(recipe) == a and m.TRAINING_RUNS["count"] - before == 5  # cached: no training
    assert a.parent == tmp_path / "a" / "image-prompt-mini" and a.name == recipe.key()
    monkeypatch.setenv("EVOBENCH_CACHE", str(tmp_path / "b"))
    b = m.load_or_train(recipe)
    for name in ("clip", "vae", "base", "en", "ja"):
        sa, sb = load_file(str(a / f"{name}.safetensors")), load_file(str(b / f"{name}.safetensors"))
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name
    ea, eb = load_file(str(a / "en.safetensors")), load_file(str(a / "base.safetensors"))
    assert any(not torch.equal(ea[k], eb[k]) for k in ea)  # the fine-tune moved the base
    assert m.Recipe(**{**TINY, "ft_steps": 3}).key() != recipe.key()


def test_mini_option_errors():
    from evobench.tasks.image_prompt import image_prompt

    with pytest.raises(ValueError, match="mini: true brings its own pipelines and prompts; models cannot be given"):
        image_prompt(mini=True, models=["x"])
    with pytest.raises(ValueError, match="mini must be true or false"):
        image_prompt(mini="yes")


# --- the default recipe (trained once per machine, then read from the cache) -----------------------

@pytest.fixture(scope="module")
def problem():
    from evobench.tasks.image_prompt import image_prompt

    return image_prompt(mini=True)


@pytest.mark.slow
def test_clip_reads_the_world_in_both_languages(problem):
    """On unseen jitters, the right caption out of all 32 has the highest CLIPScore for nearly every image."""
    from PIL import Image

    m = _mini()
    scorer = problem.task.scorer
    images, pairs = m.world_sample(64, seed=12345)
    feats = scorer.image_features([Image.fromarray(im) for im in images])
    for lang in ("en", "ja"):
        texts = [m.caption(c, s, lang) for c, s in m.combos()]
        t = scorer.text_features(texts)
        cos = (feats / np.linalg.norm(feats, axis=1, keepdims=True)) @ (t / np.linalg.norm(t, axis=1, keepdims=True)).T
        right = np.mean([cos[i].argmax() == m.combos().index(p) for i, p in enumerate(pairs)])
        assert right >= 0.9, (lang, right)


@pytest.mark.slow
def test_a_merge_beats_both_specialists_on_the_test_prompts(problem):
    """Task arithmetic base + (en - base) + (ja - base) vs the specialists, test split: each specialist
    serves its own language only; the merge serves both."""
    task, pool = problem.task, problem.pool
    src = dict(pool.sources)
    scores = {name: task.evaluate(pool.family.build(state), "test") for name, state in src.items()}
    merged = {k: pool.base[k] + (src["mini-en"][k] - pool.base[k]) + (src["mini-ja"][k] - pool.base[k])
              for k in pool.base}
    scores["merge"] = task.evaluate(pool.family.build(merged), "test")
    scores["base"] = task.evaluate(pool.family.build(pool.base), "test")
    en, ja, mg = (scores[k].metrics for k in ("mini-en", "mini-ja", "merge"))
    assert en["clip_score_en"] > en["clip_score_ja"] and ja["clip_score_ja"] > ja["clip_score_en"]
    assert mg["clip_score"] > max(en["clip_score"], ja["clip_score"]) > scores["base"].metrics["clip_score"]


@pytest.mark.slow
def test_preset_runs_every_applicable_baseline(problem):
    """The preset's baselines are exactly those that `baselines: all` would run on the mini task."""
    from evobench.compare import plan
    from evobench.config import build_config

    cfg = build_config(preset="image-prompt-mini")
    assert cfg.tasks[0].options == {"mini": True} and cfg.seeds == [0, 1, 2]
    named = {p.spec.name for p in plan(cfg)[0]}
    every = {p.spec.name for p in plan(cfg.model_copy(update={"baselines": None}))[0]}
    assert named == every
