"""The UNet family: in-place builds into one live pipeline, exact reproduction of the sources through PS,
shared components, refusals of pipelines that cannot be merged, and loading saved pipelines."""

from __future__ import annotations

import numpy as np
import pytest

from tests.vision_helpers import VISION

pytestmark = VISION


@pytest.fixture(scope="module")
def tiny():
    from evobench.models.tiny_diffusion import tiny_sources

    return tiny_sources()


@pytest.fixture(scope="module")
def pool(tiny):
    from evobench.models.diffusion import pool_from_pipelines

    base, sources = tiny
    return pool_from_pipelines(sources, base)


def draw(pipe, prompt="ソファの上で眠る猫", seed=3):
    import torch

    return pipe(prompt, num_inference_steps=3, guidance_scale=5.0, generator=torch.Generator().manual_seed(seed),
                output_type="np").images[0]


def test_build_writes_one_live_unet_and_shares_the_rest(pool, tiny):
    base, sources = tiny
    family = pool.family
    first = family.build(pool.sources[0][1])
    ptrs = [p.data_ptr() for p in first.unet.parameters()]
    second = family.build(pool.sources[1][1])
    assert second is first and [p.data_ptr() for p in second.unet.parameters()] == ptrs
    assert first.unet is not sources["tiny-a"].unet and first.unet is not base.unet
    for comp in ("text_encoder", "vae", "tokenizer", "scheduler"):
        assert getattr(first, comp) is getattr(sources["tiny-a"], comp) is getattr(base, comp), comp
    # the pool's states are views of the sources' own UNets, and building never wrote into them
    a = dict(sources["tiny-a"].unet.named_parameters())
    assert all(t.data_ptr() == a[k].data_ptr() for k, t in pool.sources[0][1].items())
    live = dict(second.unet.named_parameters())
    assert all(np.array_equal(live[k].numpy(), t.numpy()) for k, t in pool.sources[1][1].items())
    assert not all(np.array_equal(live[k].numpy(), t.numpy()) for k, t in pool.sources[0][1].items())


def test_build_reproduces_each_source_and_the_sources_differ(pool, tiny):
    _, sources = tiny
    want = {n: draw(p) for n, p in sources.items()}
    assert np.abs(want["tiny-a"] - want["tiny-b"]).max() > 0.05
    for name, state in pool.sources:
        assert np.array_equal(draw(pool.family.build(state)), want[name]), name


@pytest.mark.parametrize("op", ["linear", "dare_ties"])
def test_ps_weight_one_on_a_source_draws_its_images_exactly(pool, tiny, op):
    from evobench.spaces.ps import PSSpace

    _, sources = tiny
    space = PSSpace(pool, op=op)
    for i, (name, _) in enumerate(pool.sources):
        got = draw(space.build(space.source_genome(i)))
        # linear: 1 * a + 0 * b is a bit for bit; dare_ties: base + (a - base) rounds back to a here
        assert np.array_equal(got, draw(sources[name])), (op, name)
    mid = draw(space.build(np.full(space.dim, 0.5)))
    assert not np.array_equal(mid, draw(sources["tiny-a"]))


def test_layer_groups_cover_every_tensor_once(pool):
    from evobench.spaces.ps import PSSpace

    groups = pool.family.layer_groups()
    assert list(groups) == ["down_blocks.0", "down_blocks.1", "up_blocks.0", "up_blocks.1", "mid_block", "outside blocks"]
    flat = [t for names in groups.values() for t in names]
    assert sorted(flat) == sorted(pool.family.param_names) and len(flat) == len(set(flat))
    assert "conv_in.weight" in groups["outside blocks"] and "time_embedding.linear_1.weight" in groups["outside blocks"]
    assert all(t.startswith("mid_block.") for t in groups["mid_block"])
    space = PSSpace(pool, granularity="layer")
    assert space.dim == 6 * 2 * 2  # groups x (weight, density) x models


def _variant(base, **replace):
    from evobench.models.diffusion import rebuild_pipeline

    return rebuild_pipeline(base, **replace)


def test_pipelines_that_differ_outside_the_unet_or_in_its_config_are_refused(tiny):
    import copy

    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel

    from evobench.models.causal_lm import IncompatibleModelsError
    from evobench.models.diffusion import pool_from_pipelines
    from evobench.models.tiny_diffusion import tiny_pipeline

    base, sources = tiny
    cfg = dict(base.unet.config)
    cfg["attention_head_dim"] = 16
    other_unet = UNet2DConditionModel.from_config(cfg)
    other_text = copy.deepcopy(base.text_encoder)
    with __import__("torch").no_grad():
        next(other_text.parameters()).add_(1.0)
    cases = [
        (_variant(base, unet=other_unet), r"UNet config 'attention_head_dim' differs \(8 vs 16\)"),
        (tiny_pipeline(seed=5), r"their text_encoder differs \(tensor '.*' differs\); only UNets are merged"),
        (_variant(base, text_encoder=other_text), r"their text_encoder differs \(tensor 'embeddings\.token_embedding\.weight' differs\)"),
        (_variant(base, scheduler=EulerDiscreteScheduler.from_config(base.scheduler.config)),
         r"their scheduler differs \(DDIMScheduler vs EulerDiscreteScheduler\)"),
    ]
    for other, match in cases:
        with pytest.raises(IncompatibleModelsError, match=match) as info:
            pool_from_pipelines({"tiny-a": sources["tiny-a"], "other": other})
        assert "cannot merge 'tiny-a' and 'other'" in str(info.value) and "\n" not in str(info.value)


def test_saved_pipeline_loads_and_draws_the_same_images(tmp_path, tiny):
    from evobench.models.diffusion import load_pool

    _, sources = tiny
    for name, pipe in sources.items():
        pipe.save_pretrained(tmp_path / name, safe_serialization=True)
    pool = load_pool([str(tmp_path / "tiny-a"), str(tmp_path / "tiny-b")])
    got = draw(pool.family.build(pool.sources[1][1]))
    assert np.array_equal(got, draw(sources["tiny-b"]))


def test_bad_pipeline_sources_are_one_line_errors(tmp_path, tiny, monkeypatch):
    from huggingface_hub import constants

    from evobench.models.diffusion import load_pipeline
    from evobench.models.lm_loading import ModelLoadError

    _, sources = tiny
    sources["tiny-a"].save_pretrained(tmp_path / "pickled", safe_serialization=False)
    (tmp_path / "plain").mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    cases = [
        (str(tmp_path / "nowhere"), "does not exist"),
        (str(tmp_path / "plain"), r"is not a diffusers pipeline folder \(no model_index\.json\)"),
        (str(tmp_path / "pickled"), r"has only pickled UNet weights \(diffusion_pytorch_model\.bin\); evobench loads "
                                    "safetensors only"),
        ("evobench-test/no-such-pipeline", "is not available offline: no copy in the Hugging Face cache"),
    ]
    for source, match in cases:
        with pytest.raises(ModelLoadError, match=match) as info:
            load_pipeline(source, local_files_only=True)
        assert "\n" not in str(info.value)
