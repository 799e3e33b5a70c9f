"""The tiny in-code language models: deterministic, real HF classes, Japanese round-trips."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from evobench.models.tiny_lm import perturbed_states, tiny_llama, tiny_llama_config, tiny_tokenizer  # noqa: E402


def test_tokenizer_is_deterministic_and_round_trips_japanese():
    a, b = tiny_tokenizer(), tiny_tokenizer()
    text = "太郎はりんごを3個持っています。 Tom has 7 pens."
    assert a(text).input_ids == b(text).input_ids
    assert a.decode(a(text).input_ids) == text
    assert len(a) == 320 and a.pad_token_id != a.eos_token_id and a.padding_side == "left"


def test_llama_is_seeded_and_generates():
    tok = tiny_tokenizer()
    m1, m2, m3 = (tiny_llama(tiny_llama_config(tok), seed=s) for s in (0, 0, 1))
    s1, s2, s3 = m1.state_dict(), m2.state_dict(), m3.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not torch.equal(s1["model.layers.0.mlp.up_proj.weight"], s3["model.layers.0.mlp.up_proj.weight"])
    ids = tok(["Tom has"], return_tensors="pt")
    out = m1.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape == (1, ids.input_ids.shape[1] + 4)
    assert torch.equal(out, m2.generate(**ids, max_new_tokens=4, do_sample=False))


def test_perturbed_states_differ_by_seeded_noise():
    m = tiny_llama(tiny_llama_config(tiny_tokenizer()))
    a, b, a2 = perturbed_states(m, [1, 2, 1], scale=0.1)
    k = "model.embed_tokens.weight"
    base = m.state_dict()[k]
    assert torch.equal(a[k], a2[k]) and not torch.equal(a[k], b[k])
    assert 0.05 < float((a[k] - base).std()) < 0.15
