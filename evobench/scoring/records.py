"""Per-request records: plain JSON-ready dicts built from a request and its result."""

from __future__ import annotations

import hashlib

from evobench.scoring.requests import GenerateRequest, Generation, Loglikelihood, LoglikelihoodRequest


def prompt_hash(text: str) -> str:
    """The SHA-256 hex digest of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _decoding(request: GenerateRequest) -> dict:
    """The decoding settings a request adds to its record (none for plain greedy text generation)."""
    if request.plain:
        return {}
    out = {"num_beams": request.num_beams, "repetition_penalty": request.repetition_penalty}
    if request.images:
        out["image_sha256"] = [getattr(im, "sha256", None) for im in request.images]
    return out


def record(request: GenerateRequest | LoglikelihoodRequest, result: Generation | Loglikelihood) -> dict:
    """One flat, JSON-ready record of a scored request (the prompt or context kept as its hash)."""
    if isinstance(request, GenerateRequest) and isinstance(result, Generation):
        return {"kind": "generate", "prompt_sha256": prompt_hash(request.prompt), "stop": list(request.stop),
                "max_new_tokens": request.max_new_tokens, "text": result.text,
                "n_prompt_tokens": result.n_prompt_tokens, "n_new_tokens": result.n_new_tokens,
                "stopped_by": result.stopped_by, "stop_string": result.stop, **_decoding(request)}
    if isinstance(request, LoglikelihoodRequest) and isinstance(result, Loglikelihood):
        return {"kind": "loglikelihood", "prompt_sha256": prompt_hash(request.context),
                "continuation": request.continuation, "logprob": result.logprob, "is_greedy": result.is_greedy,
                "n_tokens": result.n_tokens}
    raise TypeError(f"no record for a {type(request).__name__} with a {type(result).__name__}")
