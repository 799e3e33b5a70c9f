"""The causal-LM family on tiny Llamas: in-place builds, PS merges checked by hand, spaces, refusals."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from evobench.models.base import ModelPool  # noqa: E402
from evobench.models.causal_lm import (  # noqa: E402
    CausalLMFamily,
    IncompatibleModelsError,
    check_compatible,
    pool_from_models,
)
from evobench.models.lm_loading import resolve_device  # noqa: E402
from evobench.models.mlp import MLPFamily  # noqa: E402
from evobench.models.tiny_lm import perturbed_states, tiny_llama, tiny_llama_config, tiny_tokenizer  # noqa: E402
from evobench.problem import Problem  # noqa: E402
from evobench.spaces import SpaceError, make_space  # noqa: E402
from evobench.task import Task, TaskResult  # noqa: E402

PROMPTS = ["Tom has 3 apples and buys", "太郎はりんごを"]
OTHER_CORPUS = ("The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9",
                "東京は日本の首都です。大阪は大きな町です。")


class NoTask(Task):
    name, primary_metric = "none", "score"

    def split_sizes(self):
        return {"search": 1, "test": 1}

    def evaluate(self, model, split, limit=None):
        return TaskResult(scores=np.zeros(1), metrics={"score": 0.0}, primary=0.0)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def cfg(tok):
    return tiny_llama_config(tok)


@pytest.fixture(scope="module")
def base_pool(cfg, tok):
    """A base model and two seeded perturbations of it (stand-ins for two fine-tunes)."""
    base = tiny_llama(copy.deepcopy(cfg), seed=0, std=0.2)
    a, b = perturbed_states(base, [1, 2], scale=0.05)
    return pool_from_models({"a": a, "b": b}, base=base, tokenizers=tok)


def logits(model, tok, texts=PROMPTS):
    ids = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**ids).logits


def ties_by_hand(base, states, weights):
    """base + the sum of the weighted task vectors that agree with the sign of their total."""
    vs = [w * (s - base) for s, w in zip(states, weights, strict=True)]
    elected = torch.sign(sum(vs))
    return base + sum(torch.where((torch.sign(v) == elected) & (v != 0), v, 0.0) for v in vs)


def test_tied_head_is_one_tensor(tok):
    m = tiny_llama(tiny_llama_config(tok, tie_embeddings=True), seed=3)
    fam = CausalLMFamily(m, tokenizer=tok)
    assert "lm_head.weight" not in fam.shapes and fam.aliases == {"lm_head.weight": "model.embed_tokens.weight"}
    state = {k: v + 1.0 for k, v in fam.state_of(m).items()}
    live = fam.build(state)
    assert live.lm_head.weight is live.model.embed_tokens.weight
    assert torch.equal(live.lm_head.weight, state["model.embed_tokens.weight"])
    assert fam.n_params == sum(p.numel() for p in m.parameters())


def test_build_writes_into_one_live_model(base_pool, tok):
    fam, (_, a), (_, b) = base_pool.family, *base_pool.sources
    live = fam.build(a)
    ptrs = {k: p.data_ptr() for k, p in live.named_parameters()}
    assert all(torch.equal(p, a[k]) for k, p in live.named_parameters())
    assert all(p.data_ptr() != a[k].data_ptr() for k, p in live.named_parameters())  # a copy, not a view
    again = fam.build(b)
    assert again is live and {k: p.data_ptr() for k, p in again.named_parameters()} == ptrs
    assert all(torch.equal(p, b[k]) for k, p in again.named_parameters())
    assert not torch.equal(a["model.norm.weight"], b["model.norm.weight"])  # the sources stay untouched


def test_ps_dare_ties_at_density_one_equals_the_merge_by_hand(base_pool, tok):
    problem = Problem("tiny", NoTask(), base_pool)
    space = make_space("ps", problem)
    w = (0.7, 0.4)
    model = space.build(np.array([w[0], w[1], 1.0, 1.0]))  # genes: weights, then densities (1.0 -> 1.0)
    assert model is base_pool.family.live_model()
    states = [s for _, s in base_pool.sources]
    for name, p in model.named_parameters():
        expected = ties_by_hand(base_pool.base[name], [s[name] for s in states], w)
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-6)
    assert not torch.equal(model.model.norm.weight, states[0]["model.norm.weight"])


def test_ps_layer_granularity_gives_each_layer_its_knobs(base_pool, tok):
    problem = Problem("tiny", NoTask(), base_pool)
    space = make_space("ps", problem, granularity="layer")
    groups = [g["tensors"] for g in space.decode(np.full(space.dim, 0.5))["groups"]]
    assert groups == [f"model.layers.{i}" for i in range(4)] + ["outside layers"]
    weights = {g: (0.2 * j, 1.0 - 0.2 * j) for j, g in enumerate(groups)}
    x = np.concatenate([[*weights[g], 1.0, 1.0] for g in groups])  # per group: weights, densities
    model = space.build(x)
    states = [s for _, s in base_pool.sources]
    for name, p in model.named_parameters():
        group = ".".join(name.split(".")[:3]) if name.startswith("model.layers.") else "outside layers"
        expected = ties_by_hand(base_pool.base[name], [s[name] for s in states], weights[group])
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-6)
    # layer 0's first model has weight 0: its tensors are B's task vector alone, on the base
    k = "model.layers.0.mlp.up_proj.weight"
    torch.testing.assert_close(model.get_parameter(k).detach(), states[1][k], rtol=0, atol=1e-6)


def test_layer_granularity_needs_decoder_layers():
    fam = MLPFamily(2, 3, 2)
    pool = ModelPool(fam, sources=[(n, {k: torch.zeros(s) for k, s in fam.shapes.items()}) for n in "ab"])
    with pytest.raises(SpaceError, match="granularity 'layer' needs a model family with decoder layers") as e:
        make_space("ps", Problem("mlp", NoTask(), pool), granularity="layer")
    assert "\n" not in str(e.value)


def test_dare_drops_are_seeded(base_pool):
    problem = Problem("tiny", NoTask(), base_pool)
    x = np.array([0.6, 0.6, 0.5, 0.5])
    first = make_space("ps", problem, seed=1).state_dict(x)
    same = make_space("ps", problem, seed=1).state_dict(x)
    other = make_space("ps", problem, seed=2).state_dict(x)
    k = "model.layers.1.self_attn.q_proj.weight"
    assert torch.equal(first[k], same[k]) and not torch.equal(first[k], other[k])


def test_problem_with_a_tiny_lm_pool_offers_every_space(cfg, tok):
    a, b = tiny_llama(copy.deepcopy(cfg), seed=0, std=0.2), tiny_llama(copy.deepcopy(cfg), seed=1, std=0.2)
    expected = logits(a, tok)
    problem = Problem("tiny", NoTask(), pool_from_models({"a": a, "b": b}, tokenizers={"a": tok, "b": tok}))
    assert problem.space_kinds() == ["ps", "params", "dfs", "ps+dfs"]
    rng = np.random.default_rng(0)
    dfs = make_space("dfs", problem)
    assert torch.equal(logits(dfs.build(dfs.initial(rng)[0]), tok), expected)
    params = make_space("params", problem)
    genome = params.initial(rng)[0]
    assert genome.size == problem.pool.family.n_params
    assert torch.equal(logits(params.build(genome), tok), expected)  # float32 vector -> the same model
    both = make_space("ps+dfs", problem)
    out = logits(both.build(both.initial(rng)[0]), tok)
    assert torch.isfinite(out).all() and not torch.equal(out, expected)  # PS half averages A and B


@pytest.mark.parametrize("change, words", [
    ({"layers": 2}, "num_hidden_layers differs (4 vs 2)"),
    ({"hidden": 48}, "hidden_size differs (32 vs 48)"),
])
def test_models_of_other_shapes_are_refused(cfg, tok, change, words):
    a = tiny_llama(copy.deepcopy(cfg))
    b = tiny_llama(tiny_llama_config(tok, **change))
    with pytest.raises(IncompatibleModelsError) as e:
        pool_from_models({"a": a, "b": b}, tokenizers=tok)
    assert str(e.value) == f"cannot merge 'a' and 'b': {words}"


def test_other_vocabularies_are_refused(cfg, tok):
    bigger = tiny_tokenizer(vocab_size=330)
    a, b = tiny_llama(copy.deepcopy(cfg)), tiny_llama(tiny_llama_config(bigger))
    with pytest.raises(IncompatibleModelsError, match=r"^cannot merge 'a' and 'b': vocab_size differs \(320 vs 330\)$"):
        pool_from_models({"a": a, "b": b})
    other = tiny_tokenizer(corpus=OTHER_CORPUS)
    assert len(other) == len(tok)
    with pytest.raises(IncompatibleModelsError, match="^cannot merge 'a' and 'b': tokenizer vocabularies differ") as e:
        check_compatible({"a": a, "b": copy.deepcopy(a)}, {"a": tok, "b": other})
    assert "\n" not in str(e.value)
    check_compatible({"a": a, "b": a.config}, {"a": tok, "b": tiny_tokenizer()})  # equal ones pass


def test_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be one of cpu, cuda, auto"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_other_architectures_are_refused(cfg, tok):
    from transformers import MistralConfig, MistralForCausalLM

    a = tiny_llama(copy.deepcopy(cfg))
    m = MistralForCausalLM(MistralConfig(**{k: getattr(cfg, k) for k in (
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads")}))
    with pytest.raises(IncompatibleModelsError,
                       match=r"^cannot merge 'a' and 'b': architecture differs \(LlamaForCausalLM vs Mistral"):
        check_compatible({"a": a, "b": m})
    check_compatible({"a": a, "b": cfg})  # a config naming no architecture is compared on its fields
