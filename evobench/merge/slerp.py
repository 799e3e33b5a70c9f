"""Spherical interpolation of whole parameter vectors, and M2N2's split-point variant.

One angle for the whole vector (global norms and dot product). ``t`` is the weight of ``b``: t = 0
gives ``a``, t = 1 gives ``b``. Where the vectors are (anti)parallel or zero (sin of the angle
<= ``eps``), plain linear interpolation is used. Each side of a split uses one scalar coefficient
pair, so no per-element sines are computed (this is on the hot path of model-space evolution).

The result has the inputs' dtype (float32 genomes stay float32). The dot product and squared norms
of the angle are accumulated in float64 whatever the inputs' dtype: a product of two float32 (or
half-precision) numbers is exact in float64, so only the float64 sum rounds (~1e-15 of the
cosine), where a float32 sum over millions of parameters loses ~1e-8 to 1e-7 of it, and the angle
of near-parallel parents (a converging archive), ~sqrt(2 (1 - cos)), a large part of itself. On the
CPU the sums are ``numpy.einsum(..., dtype=float64)``, which casts in small buffers (no float64
copy of a vector; as fast as a float32 sum at 10^6 elements); elsewhere (a GPU, bfloat16) torch
casts chunks of ``CHUNK`` elements.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from evobench.merge.knobs import Knob, merge_op

CHUNK = 1 << 14  # elements cast to float64 at a time by the torch path of the angle's sums
_NUMPY_DTYPES = (torch.float32, torch.float64, torch.float16)  # dtypes numpy reads without a copy


def _flat(a: torch.Tensor) -> torch.Tensor:
    """``a`` as a flat vector (itself when already 1-D)."""
    return a if a.dim() == 1 else a.reshape(-1)


def _dot(fa: torch.Tensor, fb: torch.Tensor) -> float:
    """``sum(fa * fb)`` accumulated in float64 (products of float32 inputs are exact there).

    Elementwise products + sums (einsum's own loop), not BLAS dot: BLAS threads stall for
    milliseconds on a busy machine.
    """
    if fa.device.type == "cpu" and fb.device.type == "cpu" and fa.dtype in _NUMPY_DTYPES \
            and fb.dtype in _NUMPY_DTYPES:
        return float(np.einsum("i,i->", fa.detach().numpy(), fb.detach().numpy(), dtype=np.float64))
    total = 0.0
    for i in range(0, fa.numel(), CHUNK):
        ca = fa[i:i + CHUNK].to(torch.float64)
        cb = ca if fb is fa else fb[i:i + CHUNK].to(torch.float64)
        total += float(torch.mul(ca, cb).sum())
    return total


def sq_norm(a: torch.Tensor) -> float:
    """Squared global norm of ``a``, exactly as :func:`split_slerp` computes it (callers that merge
    the same vector many times may compute it once and pass it back)."""
    fa = _flat(a)
    return _dot(fa, fa)


def _angle(a: torch.Tensor, b: torch.Tensor, sq_a: float | None = None,
           sq_b: float | None = None) -> tuple[float, float]:
    fa, fb = _flat(a), _flat(b)
    sq_a = _dot(fa, fa) if sq_a is None else sq_a
    sq_b = _dot(fb, fb) if sq_b is None else sq_b
    denom = math.sqrt(sq_a) * math.sqrt(sq_b)
    cos = _dot(fa, fb) / denom if denom > 0 else 1.0
    omega = math.acos(min(max(cos, -1.0), 1.0))
    return omega, math.sin(omega)


def _coefficients(t: float, omega: float, so: float, eps: float) -> tuple[float, float]:
    """(weight of a, weight of b) for interpolation weight ``t``."""
    if so <= eps:
        return 1.0 - t, t
    return math.sin((1.0 - t) * omega) / so, math.sin(t * omega) / so


def _check(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")


@merge_op("slerp", knobs=[Knob("t", 0.0, 1.0, "weight of the second model")])
def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-6) -> torch.Tensor:
    """SLERP of two same-shaped tensors with one global angle."""
    _check("slerp", a, b)
    ca, cb = _coefficients(float(t), *_angle(a, b), eps)
    return a * ca + b * cb


@merge_op("split_slerp", knobs=[Knob("t", 0.0, 1.0, "weight of the second model before the split"),
                                 Knob("split", 0.0, 1.0, "split point as a fraction of the flattened length")])
def split_slerp(a: torch.Tensor, b: torch.Tensor, t: float, split: int | float, eps: float = 1e-6,
                out: torch.Tensor | None = None, sq_norms: tuple[float, float] | None = None) -> torch.Tensor:
    """M2N2 crossover: SLERP with weight ``t`` for flat indices ``< split`` and ``1 - t`` from ``split`` on.

    ``split`` is an index into the flattened tensor (a Python or numpy int), or a fraction in [0, 1]
    (a float). The angle is computed once over the whole vectors. ``out`` (optional, same shape)
    receives the result. ``sq_norms`` (optional): ``(sq_norm(a), sq_norm(b))``, already computed.
    """
    _check("split_slerp", a, b)
    n = a.numel()
    k = round(float(split) * n) if isinstance(split, float) else int(split)
    if not 0 <= k <= n:
        raise ValueError(f"split_slerp: split index {k} outside [0, {n}]")
    omega, so = _angle(a, b, *(sq_norms or ()))
    res = torch.empty_like(a) if out is None else out
    fa, fb, fr = (a, b, res) if a.dim() == 1 else (a.reshape(-1), b.reshape(-1), res.view(-1))
    for w, sl in ((float(t), slice(0, k)), (1.0 - float(t), slice(k, n))):
        ca, cb = _coefficients(w, omega, so, eps)
        torch.mul(fa[sl], ca, out=fr[sl])
        fr[sl].add_(fb[sl], alpha=cb)
    return res
