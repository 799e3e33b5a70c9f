"""``LMEngine``: scores generation and log-likelihood requests for one causal language model at a time.

The engine knows no task, merge or metric. It owns a tokenizer and a tokenisation cache that
outlive the models it scores: the runner passes a different candidate model to every call, and the
same requests are tokenised only once. Within a call, distinct requests are sorted by token length,
longest first (as lm-evaluation-harness's ``Collator`` does in ``lm_eval/models/huggingface.py``),
scored in batches of ``batch_size`` and returned in the order they were given.

Semantics matched with lm-evaluation-harness's HF model (``HFLM.generate_until``,
``HFLM._loglikelihood_tokens``), for greedy decoding:

* generation: the prompt is cut from the left to ``max_length - max_new_tokens`` tokens; the text
  is the decoded new tokens (special tokens skipped) cut before the first occurrence of any stop
  string; generation ends at EOS, a stop string or ``max_new_tokens``;
* requests with beams, a repetition penalty or images (a vision-language model's; the engine then
  needs a ``processor``) are decoded by transformers' ``generate`` (:mod:`evobench.scoring.generate`),
  batched among requests with the same settings; a prompt with images is never truncated (one that
  does not fit is a ``ValueError``), and its text is cut at stop strings after generation;
* log-likelihood: the model reads ``(context + continuation)[:-1]`` cut from the left to its last
  ``max_length`` tokens; the result is the sum of the continuation tokens' log-probabilities and
  whether the per-position argmax equals the continuation.

``max_length`` left at ``None`` is read from the model's config (``n_positions``,
``max_position_embeddings`` or ``n_ctx``), else from the tokenizer's ``model_max_length`` when set;
with neither, inputs are never truncated. Models are scored as given: put them in eval mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import torch

from evobench.scoring.decode import greedy_batch, loglikelihood_batch
from evobench.scoring.generate import generate_batch
from evobench.scoring.progress import bar as _bar
from evobench.scoring.requests import GenerateRequest, Generation, Loglikelihood, LoglikelihoodRequest
from evobench.scoring.tokens import Tokenization
from evobench.scoring.vision import VisionInputs

R = TypeVar("R")
_UNSET_MODEL_MAX_LENGTH = int(1e29)  # transformers' "no limit" value is about 1e30


def _distinct(requests: Sequence[R]) -> tuple[list[R], list[int]]:
    """The distinct requests in first-seen order, and for each input the index of its distinct one."""
    where: dict[R, int] = {}
    index = [where.setdefault(r, len(where)) for r in requests]
    return list(where), index


class LMEngine:
    """Batched greedy generation and continuation log-likelihoods with a tokenisation cache.

    ``tokenizer`` is a Hugging Face tokenizer (``encode``, ``decode``, ``bos/eos/pad_token_id``);
    ``add_bos`` prepends its BOS token to every prompt and context (``None``: the tokenizer's
    default, see :mod:`evobench.scoring.tokens`); ``eos_token_ids`` end a generation (default: the
    tokenizer's EOS); ``device`` is where inputs go (``None``: the model's ``device``, else CPU);
    ``processor`` (a Hugging Face processor with ``tokenizer`` and ``image_processor``) encodes
    requests with images (:mod:`evobench.scoring.vision`).
    """

    def __init__(self, tokenizer, batch_size: int = 8, max_length: int | None = None, device=None,
                 add_bos: bool | None = None, eos_token_ids: Iterable[int] | None = None, processor=None):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if max_length is not None and int(max_length) < 2:
            raise ValueError(f"max_length must be at least 2, got {max_length}")
        self.tokenizer = tokenizer
        self.tokens = Tokenization(tokenizer, add_bos)
        self.batch_size = int(batch_size)
        self.max_length = None if max_length is None else int(max_length)
        self.device = None if device is None else torch.device(device)
        eos = [tokenizer.eos_token_id] if eos_token_ids is None else list(eos_token_ids)
        self.eos_token_ids = frozenset(int(t) for t in eos if t is not None)
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else self.tokens.prefix_token_id)
        self.forward_passes = 0  # model calls made by this engine, over its lifetime
        self.vision = None if processor is None else VisionInputs(processor)

    @property
    def add_bos(self) -> bool:
        """Whether a BOS token is prepended to prompts and contexts."""
        return self.tokens.add_bos

    def resolve_max_length(self, model) -> int | None:
        """The context window used for ``model``: the engine's, the model config's, or the tokenizer's."""
        if self.max_length is not None:
            return self.max_length
        config = getattr(model, "config", None)
        config = getattr(config, "text_config", None) or config
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        value = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(value, int) and 0 < value < _UNSET_MODEL_MAX_LENGTH:
            return value
        return None

    def _device(self, model) -> torch.device:
        if self.device is not None:
            return self.device
        return torch.device(getattr(model, "device", None) or "cpu")

    def _batches(self, lengths: Sequence[tuple]) -> list[list[int]]:
        """Indices sorted by the given keys (longest first), cut into batches of ``batch_size``."""
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def generate(self, model, requests: Sequence[GenerateRequest]) -> list[Generation]:
        """Generations for ``requests``, in their order (left-padded batches, KV cache): greedy ones by
        the engine's own loop, the others (beams, repetition penalty, images) by ``model.generate``."""
        unique, index = _distinct(list(requests))
        if not unique:
            return []
        max_length = self.resolve_max_length(model)
        prompts = [self._prompt(r, max_length) for r in unique]
        device = self._device(model)
        out: list[Generation | None] = [None] * len(unique)
        plain = [i for i, r in enumerate(unique) if r.plain]
        with torch.inference_mode():
            self._greedy(model, unique, prompts, plain, device, out)
            self._search(model, unique, prompts, [i for i, r in enumerate(unique) if not r.plain], device, out)
        return [out[i] for i in index]

    def _prompt(self, r: GenerateRequest, max_length: int | None) -> tuple[int, ...]:
        if r.images:
            if self.vision is None:
                raise ValueError("a generation request with images needs an engine built with a processor")
            ids = self.vision.prompt(r)
            if max_length is not None and len(ids) + r.max_new_tokens > max_length:
                raise ValueError(f"a prompt of {len(ids)} tokens (images included) and max_new_tokens="
                                 f"{r.max_new_tokens} exceed the context window of {max_length} tokens")
            return ids
        ids = self.tokens.prompt(r)
        if max_length is not None:
            room = max_length - r.max_new_tokens
            if room < 1:
                raise ValueError(f"max_new_tokens={r.max_new_tokens} leaves no room for a prompt "
                                 f"within max_length={max_length}")
            ids = ids[-room:]
        return ids

    def _greedy(self, model, unique, prompts, which: list[int], device, out: list) -> None:
        """The engine's greedy loop over the requests ``which`` (sorted by length, batched)."""
        if not which:
            return
        bar = _bar(len(which), "generate")
        for part in self._batches([(-len(prompts[i]), prompts[i]) for i in which]):
            batch = [which[j] for j in part]
            rows = greedy_batch(model, [prompts[i] for i in batch], [unique[i].max_new_tokens for i in batch],
                                [unique[i].stop for i in batch], pad_id=self.pad_token_id,
                                eos_ids=self.eos_token_ids, decode=self._decode, device=device)
            self.forward_passes += max(len(g.new_tokens) for g in rows)
            for i, g in zip(batch, rows, strict=True):
                out[i] = Generation(g.text, len(prompts[i]), len(g.new_tokens), g.stopped_by, g.stop, g.new_tokens)
            bar.update(len(batch))
        bar.close()

    def _search(self, model, unique, prompts, which: list[int], device, out: list) -> None:
        """``model.generate`` over the requests ``which``: grouped by decoding settings, then sorted by
        length and batched."""
        groups: dict[tuple, list[int]] = {}
        for i in which:
            r = unique[i]
            groups.setdefault((r.num_beams, r.repetition_penalty, r.max_new_tokens, bool(r.images)), []).append(i)
        dtype = getattr(model, "dtype", None)
        bar = _bar(len(which), "generate")
        for (beams, penalty, budget, _), members in sorted(groups.items()):
            for part in self._batches([(-len(prompts[i]), prompts[i]) for i in members]):
                batch = [members[j] for j in part]
                reqs = [unique[i] for i in batch]
                extra = self.vision.pixels(reqs, device, dtype) if reqs[0].images else None
                rows = generate_batch(model, [prompts[i] for i in batch], max_new_tokens=budget, num_beams=beams,
                                      repetition_penalty=penalty, stops=[r.stop for r in reqs],
                                      pad_id=self.pad_token_id, eos_ids=self.eos_token_ids, decode=self._decode,
                                      device=device, extra=extra)
                self.forward_passes += max(len(g.new_tokens) for g in rows)
                for i, g in zip(batch, rows, strict=True):
                    out[i] = Generation(g.text, len(prompts[i]), len(g.new_tokens), g.stopped_by, g.stop,
                                        g.new_tokens)
                bar.update(len(batch))
        bar.close()

    def loglikelihood(self, model, requests: Sequence[LoglikelihoodRequest]) -> list[Loglikelihood]:
        """Log-likelihoods of each request's continuation given its context, in the requests' order."""
        unique, index = _distinct(list(requests))
        if not unique:
            return []
        max_length = self.resolve_max_length(model)
        pairs = [self.tokens.pair(r) for r in unique]
        device = self._device(model)
        out: list[Loglikelihood | None] = [None] * len(unique)
        bar = _bar(len(unique), "log-likelihood")
        with torch.inference_mode():
            for batch in self._batches([(-len(c) - len(x), c + x) for c, x in pairs]):
                rows = loglikelihood_batch(model, [pairs[i] for i in batch], max_length=max_length,
                                           pad_id=self.pad_token_id, device=device)
                self.forward_passes += 1
                for i, (logprob, greedy) in zip(batch, rows, strict=True):
                    out[i] = Loglikelihood(logprob, greedy, len(pairs[i][1]))
                bar.update(len(batch))
        bar.close()
        return [out[i] for i in index]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)
