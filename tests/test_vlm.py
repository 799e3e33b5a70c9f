"""The VLM family: merges touch only the language model inside a tiny LLaVA(-NeXT); checks before search."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("PIL")

import torch  # noqa: E402

from evobench.models.causal_lm import IncompatibleModelsError  # noqa: E402
from evobench.models.vlm import pool_from_vlm  # noqa: E402
from evobench.problem import Problem  # noqa: E402
from evobench.spaces import make_space  # noqa: E402
from tests.vlm_helpers import encoded_image, tiny_models  # noqa: E402


def _inputs(processor, seed: int = 0):
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(encoded_image(seed))).convert("RGB")
    return processor(text=["<image>\n空は何色ですか？ [/INST]"], images=[image], return_tensors="pt")


@pytest.fixture(scope="module", params=[True, False], ids=["llava-next", "llava"])
def setup(request):
    vlm, processor, lm, lm_tok = tiny_models(next=request.param)
    pool = pool_from_vlm(vlm, {"lm": lm}, processor=processor, tokenizers={"lm": lm_tok}, vlm_name="vlm")
    with torch.no_grad():
        ref = vlm(**_inputs(processor)).logits
    return vlm, processor, lm, pool, ref


def test_family_holds_the_language_model_only(setup):
    vlm, _, lm, pool, _ = setup
    family = pool.family
    lm_names = {k for k, _ in vlm.named_parameters() if k.startswith(("model.language_model.", "lm_head."))}
    assert set(family.shapes) == lm_names
    assert not any("vision_tower" in k or "projector" in k or "image_newline" in k for k in family.shapes)
    # the outside LM's tensors are renamed into the VLM's naming and shared, not copied
    (_, own), (_, other) = pool.sources
    assert other["model.language_model.layers.1.mlp.up_proj.weight"].data_ptr() == \
        lm.model.layers[1].mlp.up_proj.weight.data_ptr()
    assert other["lm_head.weight"].data_ptr() == lm.lm_head.weight.data_ptr()
    assert own["model.language_model.embed_tokens.weight"].data_ptr() == \
        vlm.model.language_model.embed_tokens.weight.data_ptr()


def test_weight_one_on_the_vlms_own_lm_reproduces_its_logits_exactly(setup):
    vlm, processor, _, pool, ref = setup
    space = make_space("ps", Problem("p", None, pool))
    _, genomes = space.starting_genomes([s for _, s in pool.sources])
    model = space.build(genomes[0])
    with torch.no_grad():
        out = model(**_inputs(processor)).logits
    assert torch.equal(out, ref)
    # the other source's genome gives another model (the merge really writes the LM)
    other = space.build(genomes[1])
    with torch.no_grad():
        assert not torch.equal(other(**_inputs(processor)).logits, ref)


def test_vision_tower_and_projector_are_shared_and_untouched(setup):
    vlm, processor, _, pool, _ = setup
    family = pool.family
    before = {k: v.detach().clone() for k, v in vlm.named_parameters() if not family.in_lm(k)}
    space = make_space("ps", Problem("p", None, pool))
    live = space.build(np.full(space.dim, 0.3))
    theirs = dict(vlm.named_parameters())
    for k, p in live.named_parameters():
        if family.in_lm(k):
            assert p.data_ptr() != theirs[k].data_ptr(), f"{k}: the live model writes into the source VLM"
        else:
            assert p.data_ptr() == theirs[k].data_ptr(), f"{k}: the vision part was copied"
            assert torch.equal(p, before[k]), f"{k}: the vision part was changed"
    assert sum(family.in_lm(k) for k, _ in live.named_parameters()) == len(family.shapes)


def test_layer_paths_through_the_lms_share_tensors_and_reproduce_the_vlm(setup):
    vlm, processor, lm, pool, ref = setup
    family = pool.family
    states = [s for _, s in pool.sources]
    own = family.build_path(states, [(0, 0), (0, 1)], [1.0, 1.0])
    with torch.no_grad():
        assert torch.equal(own(**_inputs(processor)).logits, ref)
    mixed = family.build_path(states, [(0, 0), (1, 1), (1, 0), (0, 1)], [1.0, 1.0, 0.5, 1.0])
    assert mixed.model.vision_tower.embeddings.patch_embedding.weight.data_ptr() == \
        vlm.model.vision_tower.embeddings.patch_embedding.weight.data_ptr()
    step = mixed.model.language_model.layers[1]
    assert step.block.mlp.up_proj.weight.data_ptr() == lm.model.layers[1].mlp.up_proj.weight.data_ptr()
    with torch.no_grad():  # a four-step path with a cache slot per step generates with beams
        out = mixed.generate(**_inputs(processor), max_new_tokens=3, num_beams=2, do_sample=False,
                             pad_token_id=processor.tokenizer.pad_token_id)
    assert out.shape[1] == _inputs(processor)["input_ids"].shape[1] + 3
    assert {"ps", "dfs", "ps+dfs"} <= set(Problem("p", None, pool).space_kinds())


def test_layer_granularity_groups_the_decoder_layers(setup):
    groups = setup[3].family.layer_groups()
    assert list(groups)[:2] == ["model.language_model.layers.0", "model.language_model.layers.1"]
    assert set(groups["outside layers"]) == {"model.language_model.embed_tokens.weight",
                                              "model.language_model.norm.weight", "lm_head.weight"}


def test_an_lm_of_another_hidden_size_is_refused_in_one_line():
    vlm, processor, _, lm_tok = tiny_models()
    _, _, wide, _ = tiny_models(hidden=48)
    with pytest.raises(IncompatibleModelsError, match=r"^cannot merge the language model of 'vlm' with 'wide': "
                                                      r"hidden_size differs \(32 vs 48\)$"):
        pool_from_vlm(vlm, {"wide": wide}, processor=processor, tokenizers={"wide": lm_tok}, vlm_name="vlm")


def test_an_lm_of_another_vocabulary_is_refused():
    from evobench.models.tiny_vlm import tiny_text_lm

    vlm, processor, _, lm_tok = tiny_models()
    cfg = vlm.config.text_config.__class__(**{**vlm.config.text_config.to_dict(), "vocab_size": 400})
    small = tiny_text_lm(cfg)
    with pytest.raises(IncompatibleModelsError, match=r"vocab_size differs \(321 vs 400\)"):
        pool_from_vlm(vlm, {"lm": small}, processor=processor, tokenizers={"lm": lm_tok})


def test_a_tokenizer_with_other_ids_is_refused():
    from evobench.models.tiny_lm import tiny_tokenizer

    vlm, processor, lm, _ = tiny_models()
    other = tiny_tokenizer(corpus=["まったく別の語彙で学習したトークナイザー", "another corpus entirely"])
    with pytest.raises(IncompatibleModelsError, match=r"^cannot merge the language model of 'vlm' with 'lm': "
                                                      r"tokenizer ids differ \(e\.g\. 'an': 306 in the VLM, "
                                                      r"263 in the LM\)$"):
        pool_from_vlm(vlm, {"lm": lm}, processor=processor, tokenizers={"lm": other}, vlm_name="vlm")


def test_the_vlms_added_tokens_may_be_extra_but_special_tokens_must_agree():
    from evobench.models.tiny_lm import tiny_tokenizer
    from evobench.models.vlm import _tokenizer_difference

    _, processor, _, lm_tok = tiny_models()
    assert _tokenizer_difference(processor.tokenizer, lm_tok) is None  # only <image> is extra
    vlm_tok = tiny_tokenizer()
    vlm_tok.add_tokens(["ねこ"])  # a plain (not special) token only the VLM has
    vlm_tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    assert _tokenizer_difference(vlm_tok, lm_tok) is None  # added tokens are allowed
    assert "eos_token differs" in _tokenizer_difference(processor.tokenizer, _with_eos(lm_tok, "<|pad|>"))


def _with_eos(tok, eos):
    import copy

    t = copy.deepcopy(tok)
    t.eos_token = eos
    return t


def test_an_lm_with_a_smaller_vocabulary_merges_with_the_vlms_rows_for_its_extra_ids():
    """LLaVA-1.6-Mistral-7B has 32,064 rows for Mistral's 32,000 tokens: the LM's rows are extended."""
    from evobench.models.tiny_vlm import tiny_text_lm

    vlm, processor, _, lm_tok = tiny_models()
    n_vlm = vlm.config.text_config.vocab_size
    n_lm = len(lm_tok)
    assert n_lm < n_vlm  # the VLM adds <image>
    cfg = vlm.config.text_config.__class__(**{**vlm.config.text_config.to_dict(), "vocab_size": n_lm})
    small, base = tiny_text_lm(cfg, seed=5, std=0.2), tiny_text_lm(cfg, seed=6, std=0.2)
    with pytest.raises(IncompatibleModelsError, match=r"vocab_size differs \(321 vs 320\); a smaller vocabulary "
                                                      r"merges only when both tokenizers are given and agree$"):
        pool_from_vlm(vlm, {"lm": small}, processor=processor, vlm_name="vlm")
    pool = pool_from_vlm(vlm, {"lm": small}, base, processor=processor, tokenizers={"lm": lm_tok, "base": lm_tok},
                         vlm_name="vlm")
    (_, own), (_, other) = pool.sources
    for name, lm_weight in (("model.language_model.embed_tokens.weight", small.model.embed_tokens.weight),
                            ("lm_head.weight", small.lm_head.weight)):
        assert other[name].shape[0] == n_vlm
        assert torch.equal(other[name][:n_lm], lm_weight.detach())
        assert torch.equal(other[name][n_lm:], own[name][n_lm:])
        assert torch.equal(pool.base[name][n_lm:], own[name][n_lm:])
    # a task-arithmetic merge against the base keeps the VLM's rows of its extra ids
    space = make_space("ps", Problem("p", None, pool), op="task_arithmetic")
    genome = np.array([0.7, 0.6])
    w_own, w_lm = [m["weight"] for m in space.decode(genome)["groups"][0]["models"]]
    state = space.state_dict(genome)
    head = state["lm_head.weight"]
    assert torch.allclose(head[n_lm:], own["lm_head.weight"][n_lm:], atol=1e-6)
    expected = base.lm_head.weight + w_own * (own["lm_head.weight"][:n_lm] - base.lm_head.weight) \
        + w_lm * (small.lm_head.weight - base.lm_head.weight)
    assert torch.allclose(head[:n_lm], expected.detach(), atol=1e-5)


def test_a_layer_path_of_the_language_model_folds_into_a_plain_vlm(setup):
    """A DFS path through the VLM's LM and an outside LM, with scales, written as a plain VLM whose
    language model has one layer per step (evobench.merge.fold): the same logits (to the RMSNorm
    epsilon), the same greedy answer, and the template's own vision tower and projector."""
    from evobench.merge.fold import fold_state

    vlm, processor, lm, pool, ref = setup
    family = pool.family
    states = [s for _, s in pool.sources]
    path, scales = [(0, 0), (1, 1), (1, 0), (0, 1), (0, 1)], [1.0, 1.3, 0.6, 1.1, 0.8]
    inputs = _inputs(processor)
    with torch.no_grad():
        path_model = family.build_path(states, path, scales)
        want = path_model(**inputs).logits.clone()
        want_text = path_model.generate(**inputs, max_new_tokens=4, do_sample=False,
                                        pad_token_id=processor.tokenizer.pad_token_id).clone()
        state = fold_state(family.fold_rule(), states, path, scales)
        plain = family.for_state(state)
        plain.check_state(state, strict=True)
        model = plain.build(state)
        got = model(**inputs).logits
        got_text = model.generate(**inputs, max_new_tokens=4, do_sample=False,
                                  pad_token_id=processor.tokenizer.pad_token_id)
    assert plain.n_blocks() == len(path) and len(model.model.language_model.layers) == len(path)
    assert float((got - want).abs().max()) < 1e-4 * float(want.abs().max())
    assert torch.equal(got_text, want_text) and not torch.equal(got, ref)
    ours = dict(model.named_parameters())
    for name, p in vlm.named_parameters():
        if not family.in_lm(name):
            assert torch.equal(ours[name], p), name
