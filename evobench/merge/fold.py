"""A layer path written as a plain checkpoint: the path's input scales folded into the weights.

A layer-path model (:mod:`evobench.merge.layer_path`) runs steps ``t = 0 .. T-1``: the hidden state
is scaled, ``h <- s_t * h``, then block ``t`` runs. No architecture has a place for ``s_t``, but a
block that commutes with a positive scale does not need one: if ``block(c * h) = c * block_c(h)``,
where ``block_c`` is the same block with some of its tensors divided by ``c``, then with the
cumulative scale ``C_t = s_0 * s_1 * ... * s_t`` the path model's hidden state after step ``t`` is
``C_t`` times that of a plain model of ``T`` blocks whose block ``t`` is ``block_t`` with those
tensors divided by ``C_t``; the head then sees ``C_T`` times the plain model's last state, which a
:class:`FoldRule` either undoes by multiplying head tensors by ``C_T`` or does not need to (a head
behind a scale-invariant norm). Which tensors these are is the architecture's business:

* the residual MLP blocks of the digits suite, ``h + relu(h W + b)``: ``relu`` is positively
  homogeneous, so ``b`` is divided by ``C_t`` and the head's weight multiplied by ``C_T``. Exact up
  to float rounding.
* pre-norm transformer decoder layers (Llama, Mistral, Qwen2, Qwen3; also as a VLM's language model):
  ``h + attn(norm(h)) + mlp(norm(h + attn(...)))`` with RMSNorm, which ignores a positive scale of
  its input. The two projections that write into the residual stream (``o_proj``, ``down_proj``)
  are divided by ``C_t``; the final norm absorbs ``C_T``. Exact up to float rounding and the
  norm's epsilon (``x / sqrt(mean(x^2) + eps)`` sees ``eps / C^2`` in place of ``eps``).

A step with scale 0 wipes out everything before it. Where the rule names the stem tensors whose
zeroing makes the first block's input zero (the digits MLP: ``relu(0 x + 0) = 0``), the steps before
it are dropped and the plain model starts from zero there; otherwise (a language model, whose
embeddings also feed its tied head) such a path is refused with :class:`FoldError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from evobench.errors import FoldError

__all__ = ["DECODER_TYPES", "FoldError", "FoldRule", "FoldedStep", "blocks_in", "decoder_rule", "fold_state",
           "fold_steps", "fold_tensors"]


@dataclass(frozen=True)
class FoldRule:
    layers: str  # name prefix of the block list: block i's tensors are "{layers}.{i}.{suffix}"
    divide: tuple[str, ...]  # block tensor suffixes divided by the cumulative scale entering the block
    multiply: tuple[str, ...] = ()  # tensors outside the blocks multiplied by the final cumulative scale
    zero: tuple[str, ...] = ()  # tensors outside the blocks that, zeroed, make the first block's input 0


_DECODER = ("self_attn.o_proj.weight", "self_attn.o_proj.bias", "mlp.down_proj.weight", "mlp.down_proj.bias")
#: causal-LM model types whose decoder layers fold (pre-norm RMSNorm layers writing to the residual
#: stream through o_proj and down_proj only; checked in tests/test_fold.py on tiny models of each)
DECODER_TYPES = ("llama", "mistral", "qwen2", "qwen3")


def decoder_rule(model_type: str, layers: str = "model.layers") -> FoldRule:
    """The rule of a causal LM's decoder layers (``model_type`` as its config says); FoldError for an
    architecture evobench does not know how to fold. The fold holds up to float rounding and the
    RMSNorm epsilon (see the module docstring)."""
    if model_type not in DECODER_TYPES:
        raise FoldError(f"layer paths of {model_type!r} models are not written as checkpoints (evobench folds "
                        f"the path's scales into {', '.join(DECODER_TYPES)} decoder layers)")
    return FoldRule(layers, _DECODER)


@dataclass(frozen=True)
class FoldedStep:
    source: int  # index of the source model
    layer: int  # block index within it
    scale: float  # cumulative scale entering the block (the divisor of the rule's tensors)


def fold_steps(path: Sequence[tuple[int, int]], scales: Sequence[float],
               rule: FoldRule) -> tuple[list[FoldedStep], float, bool]:
    """``(steps, final cumulative scale, starts from zero)``: the plain model's blocks with their
    cumulative scales. Steps before the last scale-0 step are dropped (their output is multiplied by
    0); the plain model then starts from zero (the rule's ``zero`` tensors), or FoldError when the
    rule cannot make it start there."""
    if len(path) != len(scales) or not path:
        raise FoldError(f"layer path has {len(path)} steps and {len(scales)} scales")
    start, zeroed = 0, False
    for t, s in enumerate(scales):
        if not (math.isfinite(s) and s >= 0.0):
            raise FoldError(f"layer path step {t} has scale {s!r}; scales must be finite and >= 0")
        if s == 0.0:
            if not rule.zero:
                raise FoldError(f"layer path step {t} scales the hidden state by 0 (everything before it is "
                                "discarded), which this architecture's checkpoint cannot express")
            start, zeroed = t, True
    steps, c = [], 1.0
    for t in range(start, len(path)):
        c = c * float(scales[t]) if not (zeroed and t == start) else 1.0
        if not math.isfinite(c) or c < 1e-30 or c > 1e30:
            raise FoldError(f"layer path step {t}: the product of the scales so far is {c:.3g}, too far from 1 "
                            "to fold into the weights")
        s, i = path[t]
        steps.append(FoldedStep(int(s), int(i), c))
    return steps, c, zeroed


def _scaled(t: torch.Tensor, factor: float, name: str) -> torch.Tensor:
    if factor == 1.0:
        return t
    if not t.is_floating_point():
        raise FoldError(f"tensor {name!r} is {t.dtype}; a scale cannot be folded into it")
    out = (t.to(torch.float64) * factor).to(t.dtype)
    if not bool(torch.isfinite(out).all()):
        raise FoldError(f"tensor {name!r} times {factor:.3g} overflows {t.dtype}")
    return out


def fold_tensors(rule: FoldRule, names: Sequence[str], path: Sequence[tuple[int, int]], scales: Sequence[float],
                 get: Callable[[int, str], torch.Tensor]) -> tuple[list[tuple[str, int, str]], Callable[[], Iterator[tuple[str, torch.Tensor]]]]:
    """The plain model's tensors, lazily: ``(layout, tensors)``.

    ``names``: the tensor names of one source (every source has the same); ``get(source, name)``
    reads a tensor. ``layout`` lists ``(output name, source index, source name)`` in output order
    (outside tensors from source 0 as they come, the blocks where source 0's first block was);
    ``tensors()`` yields ``(output name, tensor)`` in that order, each folded when it is read."""
    steps, final, zeroed = fold_steps(path, scales, rule)
    stem = rule.layers + "."
    block_names: dict[int, list[str]] = {}
    outer: list[str] = []
    first_block = None
    for n in names:
        if n.startswith(stem):
            idx, _, suffix = n[len(stem):].partition(".")
            if not idx.isdigit() or not suffix:
                raise FoldError(f"tensor {n!r} is under {rule.layers!r} but not in a numbered block")
            block_names.setdefault(int(idx), []).append(suffix)
            if first_block is None:
                first_block = len(outer)
        else:
            outer.append(n)
    for s in steps:
        if s.layer not in block_names:
            raise FoldError(f"layer path step uses block {s.layer}, the sources have blocks {sorted(block_names)}")
    missing = [n for n in (*rule.multiply, *(rule.zero if zeroed else ())) if n not in outer]
    if missing:
        raise FoldError(f"the sources lack tensor {missing[0]!r} that folding the path changes")
    # (output name, source index, source name, factor); factor 0: zeroed (a start from zero)
    plan = [(n, 0, n, 0.0 if zeroed and n in rule.zero else final if n in rule.multiply else 1.0) for n in outer]
    at = len(outer) if first_block is None else first_block
    plan[at:at] = [(f"{stem}{t}.{suffix}", st.source, f"{stem}{st.layer}.{suffix}",
                    1.0 / st.scale if suffix in rule.divide else 1.0)
                   for t, st in enumerate(steps) for suffix in block_names[st.layer]]
    layout = [(out, src, name) for out, src, name, _ in plan]

    def tensors() -> Iterator[tuple[str, torch.Tensor]]:
        for out, src, name, f in plan:
            t = get(src, name)
            yield out, (torch.zeros_like(t) if f == 0.0 else _scaled(t, f, out))

    return layout, tensors


def blocks_in(state: Mapping[str, torch.Tensor], layers: str) -> int:
    """How many blocks ``state`` holds under the name prefix ``layers`` (block i: ``{layers}.{i}.*``)."""
    stem = layers + "."
    return len({k[len(stem):].split(".")[0] for k in state if k.startswith(stem)})


def fold_state(rule: FoldRule, sources: Sequence[dict[str, torch.Tensor]], path: Sequence[tuple[int, int]],
               scales: Sequence[float]) -> dict[str, torch.Tensor]:
    """The plain model of a layer path through in-memory state dicts (see :func:`fold_tensors`), in
    tensors of its own (none shares storage with a source or with another: a layer on the path twice
    is two tensors, as a checkpoint needs)."""
    _, tensors = fold_tensors(rule, list(sources[0]), path, scales, lambda s, n: sources[s][n])
    shared = {v.untyped_storage().data_ptr() for st in sources for v in st.values()}
    return {n: t.clone() if t.untyped_storage().data_ptr() in shared else t for n, t in tensors()}
