"""One batch of generation through transformers' ``generate``: beam search, repetition penalty, images.

The engine's own greedy loop (:mod:`evobench.scoring.decode`) serves plain greedy text requests;
requests with beams, a repetition penalty or images come here. All rows of a batch share their
decoding settings. Prompts are left-padded; ``extra`` holds the other model inputs of the batch
(a VLM's ``pixel_values`` and ``image_sizes``).

Decoding is deterministic (``do_sample=False``) with ``num_beams``, ``repetition_penalty``,
``max_new_tokens`` and the engine's EOS and padding ids; settings not given here come from the
model's ``generation_config`` and then transformers' defaults (length penalty 1.0,
``early_stopping=False``), as with keyword arguments to ``generate``. Every candidate of a family
carries its template's ``generation_config``, so all decode alike. A row ends at its first EOS
token or after ``max_new_tokens``; its text is the decoded new tokens (special tokens skipped) cut
before the first stop string (generation does not stop early at one). NaN or ``+inf`` in the
scores of any step raise :class:`~evobench.errors.NonFiniteError` (``-inf`` is a masked token).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import torch

from evobench.errors import NonFiniteError
from evobench.scoring.decode import Greedy, _first_stop, left_pad

Tokens = tuple[int, ...]


def _finite_check():
    """A logits processor that raises NonFiniteError on NaN or +inf scores (built on first use)."""
    from transformers import LogitsProcessor

    class FiniteScores(LogitsProcessor):
        def __init__(self) -> None:
            self.step = 0

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            if bool(torch.isnan(scores).any()) or bool(torch.isposinf(scores).any()):
                raise NonFiniteError(f"non-finite logits from the model (generation step {self.step})")
            self.step += 1
            return scores

    return FiniteScores()


def generate_batch(model, prompts: Sequence[Tokens], *, max_new_tokens: int, num_beams: int,
                   repetition_penalty: float, stops: Sequence[Sequence[str]], pad_id: int,
                   eos_ids: Collection[int], decode: Callable[[list[int]], str], device: torch.device,
                   extra: Mapping[str, Any] | None = None) -> list[Greedy]:
    """Generate for every prompt (left-padded into one batch) with ``model.generate``."""
    from transformers import GenerationConfig, LogitsProcessorList

    n, width = len(prompts), max(len(p) for p in prompts)
    ids, mask = left_pad(prompts, pad_id)
    eos = sorted(int(t) for t in eos_ids)
    config = GenerationConfig(do_sample=False, num_beams=int(num_beams), repetition_penalty=float(repetition_penalty),
                              max_new_tokens=int(max_new_tokens), eos_token_id=eos or None, pad_token_id=int(pad_id),
                              num_return_sequences=1)
    out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config,
                         logits_processor=LogitsProcessorList([_finite_check()]), **dict(extra or {}))
    results = []
    for i in range(n):
        new = [int(t) for t in out[i, width:].tolist()]
        at = next((j for j, t in enumerate(new) if t in eos_ids), None)
        if at is not None:
            new, reason, body = new[:at + 1], "eos", new[:at]
        else:
            reason, body = "length", new
        text = decode(body)
        cut, which = _first_stop(text, stops[i])
        if cut >= 0:
            text, reason = text[:cut], "stop"
        results.append(Greedy(tuple(new), text, reason, which))
    return results
