"""Helpers for the LM task tests: the released files, a saved tiny model, fake scoring engines."""

from __future__ import annotations

from pathlib import Path

from evobench.scoring import Generation, Loglikelihood

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def save_tiny_model(folder: Path) -> Path:
    """A tiny Llama and its tokenizer saved as a Hugging Face directory (safetensors)."""
    from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer

    tok = tiny_tokenizer()
    model = tiny_llama(tiny_llama_config(tok), seed=3, std=0.2)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


class FakeEngine:
    """Answers requests from fixed tables: completions in request order, log-probs by continuation."""

    def __init__(self, completions=(), logprobs=None):
        self.completions = list(completions)
        self.logprobs = logprobs or {}
        self.requests: list = []

    def generate(self, model, requests):
        self.requests += list(requests)
        return [Generation(self.completions[i], 10, 5, "stop", "\n\n") for i in range(len(requests))]

    def loglikelihood(self, model, requests):
        self.requests += list(requests)
        return [Loglikelihood(self.logprobs[r.continuation], False, 1) for r in requests]
