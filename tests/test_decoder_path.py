"""Decoder-layer paths (DFS) over tiny Llamas: exact identity, shared storage, KV cache, padding, scales."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from evobench.models.causal_lm import CausalLMFamily  # noqa: E402
from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer  # noqa: E402

PROMPTS = ["Tom has 3 apples and buys", "太郎はりんごを"]
REPEATING = [(0, 0), (1, 1), (0, 1), (0, 1), (1, 3), (0, 3)]  # layer (0, 1) runs twice in a row


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module", params=[False, True], ids=["untied", "tied"])
def setup(request, tok):
    cfg = tiny_llama_config(tok, tie_embeddings=request.param)
    a, b = tiny_llama(copy.deepcopy(cfg), seed=0, std=0.2), tiny_llama(copy.deepcopy(cfg), seed=1, std=0.2)
    family = CausalLMFamily(a, tokenizer=tok)
    return family, a, b, [family.state_of(a), family.state_of(b)]


def reconstruct(config, sources, path, scales):
    """An independent reference: a fresh model whose layer t holds copies of layer path[t], with the
    scales applied by forward pre-hooks."""
    from transformers import LlamaForCausalLM

    cfg = copy.deepcopy(config)
    cfg.num_hidden_layers = len(path)
    ref = LlamaForCausalLM(cfg).eval()
    new = {}
    for k in ref.state_dict():
        if k.startswith("model.layers."):
            t, rest = k[len("model.layers."):].split(".", 1)
            s, i = path[int(t)]
            new[k] = sources[s][f"model.layers.{i}.{rest}"].clone()
        else:
            new[k] = sources[0].get(k, sources[0]["model.embed_tokens.weight"]).clone()
    ref.load_state_dict(new)
    for layer, scale in zip(ref.model.layers, scales, strict=True):
        layer.register_forward_pre_hook(lambda m, args, kw, s=scale: ((args[0] * s, *args[1:]), kw),
                                        with_kwargs=True)
    return ref


def logits(model, tok, texts=PROMPTS, **kw):
    ids = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**ids, **kw).logits


def test_identity_path_reproduces_the_model_exactly(setup, tok):
    family, a, _, states = setup
    pm = family.build_path(states, [(0, i) for i in range(4)], [1.0] * 4)
    assert torch.equal(logits(pm, tok), logits(a, tok))


def test_path_layers_view_the_sources_storage(setup, tok):
    family, _, _, states = setup
    pm = family.build_path(states, REPEATING, [1.0] * len(REPEATING))
    pm2 = family.build_path(states, [(1, 2), (0, 0)], [1.0, 1.0])
    assert pm2 is pm and len(pm.model.layers) == 2 and pm.config.num_hidden_layers == 2
    pm = family.build_path(states, REPEATING, [1.0] * len(REPEATING))
    for step, (s, i) in zip(pm.model.layers, REPEATING, strict=True):
        for name, p in step.block.named_parameters():
            assert p.data_ptr() == states[s][f"model.layers.{i}.{name}"].data_ptr()
    emb = states[0]["model.embed_tokens.weight"].data_ptr()
    assert pm.model.embed_tokens.weight.data_ptr() == emb
    assert pm.model.norm.weight.data_ptr() == states[0]["model.norm.weight"].data_ptr()
    head = states[0].get("lm_head.weight", states[0]["model.embed_tokens.weight"]).data_ptr()
    assert pm.lm_head.weight.data_ptr() == head
    assert pm.model.layers[2].block is pm.model.layers[3].block  # the repeated layer is one module


def test_mixed_path_uses_each_sources_weights(setup, tok):
    family, a, b, states = setup
    scales = [1.0, 1.0, 0.5, 1.3, 1.0, 1.0]
    pm = family.build_path(states, REPEATING, scales)
    ref = reconstruct(a.config, states, REPEATING, scales)
    out = logits(pm, tok)
    torch.testing.assert_close(out, logits(ref, tok), rtol=0, atol=1e-5)
    swapped = reconstruct(a.config, states[::-1], REPEATING, scales)
    assert (out - logits(swapped, tok)).abs().max() > 1e-2  # B's layers are not A's


def test_a_scale_changes_the_output(setup, tok):
    family, a, _, states = setup
    scales = [1.0, 1.0, 1.5, 1.0]
    pm = family.build_path(states, [(0, i) for i in range(4)], scales)
    out = logits(pm, tok)
    assert (out - logits(a, tok)).abs().max() > 1e-2
    ref = reconstruct(a.config, states, [(0, i) for i in range(4)], scales)
    torch.testing.assert_close(out, logits(ref, tok), rtol=0, atol=1e-5)


@pytest.mark.parametrize("path", [[(0, 0), (0, 1), (0, 2), (0, 3)], REPEATING,
                                  [(1, 2), (1, 2), (1, 2), (0, 0)]], ids=["identity", "mixed", "triple"])
def test_cached_greedy_generation_equals_full_recompute(setup, tok, path):
    family, a, _, states = setup
    pm = family.build_path(states, path, [1.0] + [0.9] * (len(path) - 1))
    ids = tok(PROMPTS[:1], return_tensors="pt").input_ids
    out = pm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False,
                      min_new_tokens=10)
    seq = ids
    with torch.no_grad():
        for _ in range(10):
            nxt = pm(input_ids=seq, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert torch.equal(out, seq)
    assert len(set(seq[0, ids.shape[1]:].tolist())) > 1  # a real continuation, not one repeated token


def test_left_padded_batch_matches_unbatched(setup, tok):
    family, _, _, states = setup
    pm = family.build_path(states, REPEATING, [1.0, 1.1, 0.9, 1.0, 1.0, 1.0])
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    mask = batch.attention_mask
    assert mask[:, 0].tolist().count(0) == 1  # one prompt is left-padded
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        out = pm(**batch, position_ids=pos).logits
        for r, text in enumerate(PROMPTS):
            one = pm(**tok([text], return_tensors="pt")).logits[0]
            torch.testing.assert_close(out[r, mask[r].bool()], one, rtol=0, atol=1e-5)
    gen = pm.generate(**batch, max_new_tokens=6, min_new_tokens=6, do_sample=False)[:, batch.input_ids.shape[1]:]
    for r, text in enumerate(PROMPTS):
        one = tok([text], return_tensors="pt")
        alone = pm.generate(**one, max_new_tokens=6, min_new_tokens=6, do_sample=False)[0, one.input_ids.shape[1]:]
        assert torch.equal(gen[r], alone)


def test_bad_paths_are_refused_in_one_line(setup):
    family, _, _, states = setup
    for path, scales, words in [([(2, 0)], [1.0], "outside 2 models"), ([(0, 4)], [1.0], "x 4 layers"),
                                ([(0, 0)], [1.0, 1.0], "2 scales"), ([], [], "empty")]:
        with pytest.raises(ValueError, match=words) as e:
            family.build_path(states, path, scales)
        assert "\n" not in str(e.value)


def test_sliding_window_layers_keep_their_type_on_a_path():
    """Qwen2 with sliding-window attention in its last two layers (window 4, shorter than the prompt)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, use_sliding_window=True, sliding_window=4,
                      max_window_layers=2, initializer_range=0.2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        a, b = Qwen2ForCausalLM(copy.deepcopy(cfg)).eval(), Qwen2ForCausalLM(copy.deepcopy(cfg)).eval()
        ids = torch.randint(0, 100, (1, 9))
    family = CausalLMFamily(a)
    states = [family.state_of(a), family.state_of(b)]
    pm = family.build_path(states, [(0, i) for i in range(4)], [1.0] * 4)
    with torch.no_grad():
        assert torch.equal(pm(ids).logits, a(ids).logits)
    pm = family.build_path(states, [(0, 0), (1, 3), (0, 3), (0, 3), (1, 1)], [1.0] * 5)
    assert pm.config.layer_types == ["full_attention"] + ["sliding_attention"] * 3 + ["full_attention"]
    out = pm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, min_new_tokens=8,
                      do_sample=False)
    seq = ids
    with torch.no_grad():
        for _ in range(8):
            seq = torch.cat([seq, pm(seq, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, seq)
