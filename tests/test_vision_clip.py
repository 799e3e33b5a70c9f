"""The open_clip scorer: CLIPScore and image similarity against features computed by hand from the model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.vision_helpers import VISION

pytestmark = VISION


@pytest.fixture(scope="module")
def scorer():
    from evobench.models.clip import tiny_clip

    return tiny_clip()


@pytest.fixture(scope="module")
def images():
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)) for _ in range(6)]


TEXTS = ["a cat sleeping on a red sofa", "ソファの上で眠る猫", "a bowl of ramen", "夜の東京の街並み",
         "a red bicycle", "抹茶と和菓子"]


def by_hand(scorer, images, texts):
    """Features straight from the model (encode_image / encode_text), cosines in numpy."""
    import torch

    with torch.no_grad():
        fi = np.stack([scorer.model.encode_image(scorer.preprocess(im)[None])[0].double().numpy() for im in images])
        ft = np.stack([scorer.model.encode_text(scorer.tokenizer([t]))[0].double().numpy() for t in texts])
    fi /= np.linalg.norm(fi, axis=1, keepdims=True)
    ft /= np.linalg.norm(ft, axis=1, keepdims=True)
    return fi, ft


def test_clip_score_is_max_100_cos_0(scorer, images):
    fi, ft = by_hand(scorer, images, TEXTS)
    cos = (fi * ft).sum(axis=1)
    got = scorer.clip_scores(images, TEXTS)
    np.testing.assert_allclose(got, np.where(cos > 0, 100 * cos, 0.0), rtol=1e-9, atol=1e-9)
    # the random tiny model gives both signs, so both branches of max(., 0) are checked
    assert (cos < 0).any() and (cos > 0).any(), cos
    assert np.all(got[cos < 0] == 0.0)


def test_image_similarity_is_the_cosine(scorer, images):
    fi, _ = by_hand(scorer, images, TEXTS)
    refs = images[::-1]
    np.testing.assert_allclose(scorer.image_similarities(images, refs), (fi * fi[::-1]).sum(axis=1), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(scorer.image_similarities(images[:2], images[:2]), [1.0, 1.0], atol=1e-12)


def test_features_do_not_depend_on_the_other_images(scorer, images):
    together = scorer.image_features(images[:3])
    for i in range(3):
        assert np.array_equal(scorer.image_features([images[i]])[0], together[i])


def test_tiny_scorer_is_seeded_and_leaves_the_global_rng_alone(scorer, images):
    import torch

    from evobench.models.clip import tiny_clip

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    again = tiny_clip()
    assert torch.equal(torch.rand(3), expected)
    assert np.array_equal(again.image_features(images[:1]), scorer.image_features(images[:1]))


def test_japanese_prompts_are_tokenised_like_stable_diffusion(scorer):
    """open_clip's tokenizer and the tiny pipelines' transformers CLIPTokenizer (built from the same BPE
    file) give the same ids, Japanese included; the Japanese ids are byte tokens, not unknowns."""
    from evobench.models.tiny_diffusion import clip_tokenizer

    tok = clip_tokenizer()
    for text in TEXTS:
        ids = tok(text).input_ids
        want = scorer.tokenizer([text])[0].tolist()
        assert want[:len(ids)] == ids and set(want[len(ids):]) == {0}, text
    ja = tok("猫").input_ids
    assert ja[0] == 49406 and ja[-1] == 49407 and len(ja) > 2


def test_named_model_with_local_safetensors_weights(tmp_path, scorer, images):
    import open_clip
    from safetensors.torch import save_file

    from evobench.models.clip import TINY_CONFIG, load_clip

    (tmp_path / "evobench-tiny-test.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(tmp_path)
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in scorer.model.state_dict().items()}, str(weights))
    loaded = load_clip(f"evobench-tiny-test:{weights}")
    np.testing.assert_allclose(loaded.clip_scores(images, TEXTS), scorer.clip_scores(images, TEXTS), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spec, error, match", [
    ("ViT-B-32:openai", "ModelLoadError", r"not available offline: download open_clip_model\.safetensors of the hub "
                                          r"repository timm/vit_base_patch32_clip_224\.openai"),
    ("ViT-B-32:no-such-tag", "ModelLoadError", r"no pretrained weights 'no-such-tag' for 'ViT-B-32' \(it has: .*openai"),
    ("No-Such-Model:openai", "ValueError", "open_clip has no model 'No-Such-Model'"),
    ("ViT-B-32:/nowhere/w.safetensors", "ModelLoadError", "does not exist"),
    ("ViT-B-32:/nowhere/w.bin", "ModelLoadError", "pickled checkpoints are not read"),
    ("ViT-B-32", "ValueError", "expected 'NAME:TAG'"),
    ("", "ValueError", "clip must be"),
])
def test_bad_specs_are_one_line_errors(spec, error, match, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from evobench.models import clip as clip_module
    from evobench.models.lm_loading import ModelLoadError

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache, whatever this machine holds
    exc = ModelLoadError if error == "ModelLoadError" else ValueError
    with pytest.raises(exc, match=match) as info:
        clip_module.load_clip(spec, local_files_only=True)
    assert "\n" not in str(info.value)
