"""Time to build one in-memory candidate from a genome, against the size of the model.

Run: ``pytest benchmarks/test_merge_build.py --benchmark-only``. Llama models of four sizes are made
in code (random weights, no download), up to SmolLM2-135M's own configuration (576 wide, 30
layers, a 49,152-token vocabulary, tied embeddings: 134.5M parameters). Each pool has a base and two
sources (the base plus seeded noise). One round is one ``space.build(genome)`` -- what the runner
does before scoring each candidate:

* ``ps-task_arithmetic`` and ``ps-dare_ties``: the PS space (one weight, and one density, per model)
  merging every tensor and copying the result into the family's live model;
* ``dfs``: a layer path through the two sources' decoder layers (views, no copies);
* ``params``: a flattened float64 parameter vector written into the live model (M2N2, GA).

``extra_info`` holds the parameter count and milliseconds per build (the mean of the rounds).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")

# name -> (hidden, layers, heads, kv heads, intermediate, vocabulary, tied embeddings)
SIZES = {
    "0.3M": (64, 4, 4, 2, 128, 1024, False),
    "5M": (192, 8, 6, 2, 512, 8192, False),
    "31M": (384, 16, 6, 2, 1024, 16384, False),
    "smollm2-135M": (576, 30, 9, 3, 1536, 49152, True),
}
ROUNDS = {"0.3M": 20, "5M": 10, "31M": 5, "smollm2-135M": 3}


def _config(hidden, layers, heads, kv_heads, intermediate, vocab, tied):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                       max_position_embeddings=2048, tie_word_embeddings=tied, initializer_range=0.02)


@pytest.fixture(scope="module", params=list(SIZES))
def pool(request):
    from evobench.models.causal_lm import pool_from_models
    from evobench.models.tiny_lm import perturbed_states, tiny_llama

    base = tiny_llama(_config(*SIZES[request.param]), seed=0)
    a, b = perturbed_states(base, [1, 2], scale=0.01)
    p = pool_from_models({"a": a, "b": b}, base.state_dict(), template=base)
    return request.param, p


def _genome(space, name: str) -> np.ndarray:
    if name == "params":
        return space.starting_genomes([s for _, s in space.pool.sources])[1][0]
    return np.random.default_rng(0).uniform(0.2, 0.8, space.dim)


def _space(kind: str, pool):
    from evobench.spaces.dfs import DFSSpace
    from evobench.spaces.params import ParamSpace
    from evobench.spaces.ps import PSSpace

    if kind.startswith("ps-"):
        return PSSpace(pool, op=kind[3:])
    return {"dfs": DFSSpace, "params": ParamSpace}[kind](pool)


@pytest.mark.parametrize("kind", ["ps-task_arithmetic", "ps-dare_ties", "dfs", "params"])
def test_build(benchmark, pool, kind):
    size, p = pool
    space = _space(kind, p)
    x = _genome(space, kind)
    space.build(x)  # the live model (or the layer-path model) is made once, on first use
    benchmark.pedantic(lambda: space.build(x), rounds=ROUNDS[size], iterations=1)
    benchmark.extra_info["n_params"] = p.family.n_params
    benchmark.extra_info["ms_per_build"] = 1000 * benchmark.stats.stats.mean
