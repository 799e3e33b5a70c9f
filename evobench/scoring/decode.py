"""One batch of greedy generation and one batch of continuation log-likelihoods, on token ids.

Both take a model with the call signature of a Hugging Face causal LM (transformers 5):
``model(input_ids=..., attention_mask=..., position_ids=..., cache=..., use_cache=...)`` returning
an object with ``.logits`` (and ``.cache`` when ``use_cache`` is true; a model whose ``forward``
takes ``past_key_values`` instead gets and returns the cache under that name). When ``forward``
accepts ``logits_to_keep``, only the logits that are read are asked for. Logits that are read and
turn out NaN or infinite raise :class:`~evobench.errors.NonFiniteError`; logits at padding
positions are never read.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import torch

from evobench.errors import NonFiniteError

Tokens = tuple[int, ...]


@dataclass(frozen=True)
class Greedy:
    """The raw outcome of one row of greedy generation."""

    new_tokens: Tokens  # the generated ids, EOS included when it ended the row
    text: str  # decoded (special tokens skipped) and cut before the first stop string
    stopped_by: str  # "stop", "eos" or "length"
    stop: str | None  # the stop string that cut ``text``


def _parameters(model) -> Collection[str]:
    try:
        return inspect.signature(model.forward if hasattr(model, "forward") else model).parameters
    except (TypeError, ValueError):
        return ()


def _cache_names(params: Collection[str]) -> tuple[str, str]:
    """The (argument, output attribute) that carry the KV cache: ``cache`` since transformers 5.x
    renamed it, ``past_key_values`` for models that still take the older name."""
    if "cache" not in params and "past_key_values" in params:
        return "past_key_values", "past_key_values"
    return "cache", "cache"


def _check_finite(logits: torch.Tensor, where: str) -> None:
    if not bool(torch.isfinite(logits).all()):
        raise NonFiniteError(f"non-finite logits from the model ({where})")


def left_pad(prompts: Sequence[Tokens], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids left-padded with ``pad_id`` into one (n, longest) batch, and its attention mask."""
    n, width = len(prompts), max(len(p) for p in prompts)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p):] = 1
    return ids, mask


def _first_stop(text: str, stops: Sequence[str], start: int = 0) -> tuple[int, str | None]:
    """The earliest index in ``text[start:]`` where a stop string begins, and that stop string."""
    best, which = -1, None
    for s in stops:
        i = text.find(s, start)
        if i >= 0 and (best < 0 or i < best):
            best, which = i, s
    return best, which


def greedy_batch(model, prompts: Sequence[Tokens], budgets: Sequence[int], stops: Sequence[Sequence[str]], *,
                 pad_id: int, eos_ids: Collection[int], decode: Callable[[list[int]], str],
                 device: torch.device) -> list[Greedy]:
    """Greedy-decode every prompt (left-padded into one batch) with a KV cache.

    Row ``i`` stops at its first EOS token, once its decoded text contains one of ``stops[i]``, or
    after ``budgets[i]`` new tokens; the batch stops when every row has stopped. Rows are
    independent: the attention mask hides padding and positions count from each row's first token.
    """
    n = len(prompts)
    ids, mask = left_pad(prompts, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    params = _parameters(model)
    cache_arg, cache_out = _cache_names(params)
    extra = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    new: list[list[int]] = [[] for _ in range(n)]
    texts = [""] * n
    done: list[tuple[str, str | None] | None] = [None] * n
    cache, step = None, 0
    while True:
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                    **{cache_arg: cache}, **extra)
        cache = getattr(out, cache_out, None)
        if cache is None:
            raise TypeError(f"the model returned no KV cache (`{cache_out}`) with use_cache=True")
        live = [i for i in range(n) if done[i] is None]
        last = out.logits[:, -1, :]
        _check_finite(last[live], f"generation step {step}")
        nxt = last.argmax(dim=-1)
        for i, tok in zip(live, nxt[live].tolist(), strict=True):
            new[i].append(tok)
            if tok in eos_ids:
                done[i] = ("eos", None)
                continue
            prev = len(texts[i])
            texts[i] = decode(new[i])
            longest = max((len(s) for s in stops[i]), default=0)
            at, which = _first_stop(texts[i], stops[i], max(0, prev - longest - 4))
            if at >= 0:
                done[i] = ("stop", which)
            elif len(new[i]) >= budgets[i]:
                done[i] = ("length", None)
        step += 1
        if all(d is not None for d in done):
            break
        ids = nxt.unsqueeze(-1)
        mask = torch.cat([mask, mask.new_ones((n, 1))], dim=-1)
        positions = positions[:, -1:] + 1

    results = []
    for i in range(n):
        reason, which = done[i]
        text = decode(new[i][:-1]) if reason == "eos" else texts[i]
        at, first = _first_stop(text, stops[i])
        if at >= 0:
            text, which = text[:at], first
        results.append(Greedy(tuple(new[i]), text, reason, which))
    return results


def loglikelihood_batch(model, pairs: Sequence[tuple[Tokens, Tokens]], *, max_length: int | None, pad_id: int,
                        device: torch.device) -> list[tuple[float, bool]]:
    """(sum of continuation log-probs, whether greedy decoding yields the continuation) per pair.

    The model reads ``(context + continuation)[:-1]``, cut from the left to its last ``max_length``
    tokens when longer; rows are right-padded, so padding never precedes a scored token.
    """
    inputs = []
    for ctx, cont in pairs:
        if max_length is not None and len(cont) > max_length:
            raise ValueError(f"continuation of {len(cont)} tokens exceeds max_length={max_length}")
        whole = ctx + cont
        if max_length is not None:
            whole = whole[-(max_length + 1):]
        inputs.append(whole[:-1])
    width = max(len(x) for x in inputs)
    ids = torch.full((len(inputs), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, x in enumerate(inputs):
        ids[i, :len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, :len(x)] = 1
    # only the last `keep` positions hold scored logits: ask for no more when the model allows it
    keep = max(width - len(x) + len(cont) for x, (_, cont) in zip(inputs, pairs, strict=True))
    extra = {"logits_to_keep": keep} if "logits_to_keep" in _parameters(model) else {}
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **extra).logits
    offset = width - logits.shape[1]  # positions before the first returned logit
    results = []
    for row, x, (_, cont) in zip(logits, inputs, pairs, strict=True):
        scored = row[len(x) - len(cont) - offset:len(x) - offset].float()
        _check_finite(scored, "log-likelihood")
        logp = torch.log_softmax(scored, dim=-1)
        target = torch.tensor(cont, dtype=torch.long, device=logp.device)
        total = float(logp.gather(-1, target.unsqueeze(-1)).sum())
        greedy = bool((scored.argmax(dim=-1) == target).all())
        results.append((total, greedy))
    return results
