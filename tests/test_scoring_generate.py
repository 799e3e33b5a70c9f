"""The engine's beam search, repetition penalty and images: what transformers' generate gives for each
request alone; plain greedy requests unchanged."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

from evobench.errors import NonFiniteError  # noqa: E402
from evobench.scoring import GenerateRequest, LMEngine, record  # noqa: E402

PROMPTS = ["Tom has 3 apples.", "太郎はりんごを3個持っています。", "Question: what is 7 plus 6?", "今日は"]


@pytest.fixture(scope="module")
def lm():
    from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer

    tok = tiny_tokenizer()
    return tiny_llama(tiny_llama_config(tok), seed=3, std=0.2), tok


def _alone(model, ids, **settings):
    """transformers' generate on one unpadded prompt: the new token ids."""
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             do_sample=False, **settings)
    return out[0, len(ids):].tolist()


def _cut_at_eos(ids, eos):
    return ids[:ids.index(eos) + 1] if eos in ids else ids


@pytest.mark.parametrize("batch_size", [1, 4])
def test_beams_and_penalty_match_generate_on_each_prompt_alone(lm, batch_size):
    model, tok = lm
    engine = LMEngine(tok, batch_size=batch_size)
    reqs = [GenerateRequest(p, (), 6, num_beams=3, repetition_penalty=1.5) for p in PROMPTS]
    gens = engine.generate(model, reqs)
    for p, g in zip(PROMPTS, gens, strict=True):
        ids = engine.tokens.encode(p)
        want = _cut_at_eos(_alone(model, list(ids), num_beams=3, repetition_penalty=1.5, max_new_tokens=6,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id), tok.eos_token_id)
        assert list(g.token_ids) == want
        assert g.text == tok.decode([t for t in want if t != tok.eos_token_id], skip_special_tokens=True)
        assert g.stopped_by == ("eos" if want[-1] == tok.eos_token_id else "length")
        assert g.n_prompt_tokens == len(ids) and g.n_new_tokens == len(want)


def test_the_penalty_changes_greedy_decoding(lm):
    model, tok = lm
    engine = LMEngine(tok, batch_size=2)
    plain = engine.generate(model, [GenerateRequest(p, (), 12) for p in PROMPTS])
    penalised = engine.generate(model, [GenerateRequest(p, (), 12, repetition_penalty=1.5) for p in PROMPTS])
    for p, g in zip(PROMPTS, penalised, strict=True):
        want = _alone(model, list(engine.tokens.encode(p)), repetition_penalty=1.5, max_new_tokens=12,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        assert list(g.token_ids) == _cut_at_eos(want, tok.eos_token_id)
    assert [g.token_ids for g in plain] != [g.token_ids for g in penalised]


def test_plain_requests_are_decoded_and_recorded_as_before(lm):
    model, tok = lm
    engine = LMEngine(tok, batch_size=3)
    plain = [GenerateRequest(p, ("。",), 8) for p in PROMPTS]
    alone = engine.generate(model, plain)
    mixed = engine.generate(model, [*plain, GenerateRequest(PROMPTS[0], (), 8, num_beams=2)])
    assert mixed[:4] == alone
    assert set(record(plain[0], alone[0])) == {"kind", "prompt_sha256", "stop", "max_new_tokens", "text",
                                              "n_prompt_tokens", "n_new_tokens", "stopped_by", "stop_string"}
    beam = record(GenerateRequest(PROMPTS[0], (), 8, num_beams=2), mixed[4])
    assert beam["num_beams"] == 2 and beam["repetition_penalty"] == 1.0


def test_stop_strings_cut_the_text_of_a_beam_search(lm):
    model, tok = lm
    engine = LMEngine(tok, batch_size=2)
    free = engine.generate(model, [GenerateRequest(PROMPTS[1], (), 10, num_beams=2)])[0]
    assert len(free.text) >= 3, "the test needs a completion of a few characters"
    stop = free.text[1:3]
    cut = engine.generate(model, [GenerateRequest(PROMPTS[1], (stop,), 10, num_beams=2)])[0]
    assert cut.text == free.text[:free.text.index(stop)] and cut.stopped_by == "stop" and cut.stop == stop


def test_nan_weights_fail_a_beam_search(lm):
    from evobench.models.tiny_lm import tiny_llama, tiny_llama_config

    _, tok = lm
    bad = tiny_llama(tiny_llama_config(tok), seed=0)
    with torch.no_grad():
        bad.model.norm.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="non-finite logits"):
        LMEngine(tok).generate(bad, [GenerateRequest("a", (), 4, num_beams=3)])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_beams": 0}, "num_beams must be a positive integer"),
    ({"num_beams": 2.0}, "num_beams must be a positive integer"),
    ({"repetition_penalty": 0.0}, "repetition_penalty must be a positive number"),
    ({"repetition_penalty": float("inf")}, "repetition_penalty must be a positive number"),
    ({"images": ("not an image",)}, "images must be objects with an open"),
])
def test_bad_decoding_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenerateRequest("a", (), 4, **kwargs)


# ---- images --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vlm():
    pytest.importorskip("PIL")
    from tests.vlm_helpers import tiny_models

    model, processor, _, _ = tiny_models()
    return model, processor


def _image(seed, size=(40, 60)):
    import hashlib

    from evobench.lmdata.images import ImageInput
    from tests.vlm_helpers import encoded_image

    data = encoded_image(seed, size)
    return ImageInput(hashlib.sha256(data).hexdigest(), data)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_image_requests_match_generate_on_the_processors_inputs(vlm, batch_size):
    from PIL import Image

    model, processor = vlm
    tok = processor.tokenizer
    engine = LMEngine(tok, batch_size=batch_size, processor=processor)
    sizes = [(40, 60), (64, 30), (32, 32)]  # LLaVA-NeXT: a different number of image tokens each
    reqs = [GenerateRequest(f"<image>\n{p} [/INST]", (), 5, num_beams=3, repetition_penalty=1.5,
                            images=(_image(i, s),)) for i, (p, s) in enumerate(zip(PROMPTS, sizes, strict=False))]
    gens = engine.generate(model, reqs)
    for r, g in zip(reqs, gens, strict=True):
        image = Image.open(io.BytesIO(r.images[0].data)).convert("RGB")
        enc = processor(text=[r.prompt], images=[image], return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**enc, do_sample=False, num_beams=3, repetition_penalty=1.5, max_new_tokens=5,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        want = _cut_at_eos(out[0, enc["input_ids"].shape[1]:].tolist(), tok.eos_token_id)
        assert list(g.token_ids) == want
        assert g.n_prompt_tokens == enc["input_ids"].shape[1]
    assert len(engine.vision) == len(reqs)  # each prompt encoded once, then cached
    engine.generate(model, reqs)
    assert len(engine.vision) == len(reqs)


def test_image_requests_need_a_processor_and_room(vlm):
    model, processor = vlm
    req = GenerateRequest("<image>\nx", (), 4, images=(_image(0),))
    with pytest.raises(ValueError, match="needs an engine built with a processor"):
        LMEngine(processor.tokenizer).generate(model, [req])
    with pytest.raises(ValueError, match=r"a prompt of \d+ tokens \(images included\) and max_new_tokens=4 exceed "
                                         r"the context window of 20 tokens"):
        LMEngine(processor.tokenizer, max_length=20, processor=processor).generate(model, [req])
