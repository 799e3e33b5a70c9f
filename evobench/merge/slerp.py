"""Spherical interpolation of whole parameter vectors, and M2N2's split-point variant.

One angle for the whole vector (global norms and dot product). ``t`` is the weight of ``b``: t = 0
gives ``a``, t = 1 gives ``b``. Where the vectors are (anti)parallel or zero (sin of the angle
<= ``eps``), plain linear interpolation is used.
"""

from __future__ import annotations

import torch

from evobench.merge.knobs import Knob, merge_op


def _angle(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    na, nb = torch.linalg.vector_norm(a), torch.linalg.vector_norm(b)
    denom = na * nb
    cos = torch.where(denom > 0, torch.dot(a.reshape(-1), b.reshape(-1)) / torch.where(denom > 0, denom, 1), 1.0)
    omega = torch.arccos(torch.clamp(cos, -1.0, 1.0))
    return omega, torch.sin(omega)


def _interp(t: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    omega, so = _angle(a, b)
    if float(so) <= eps:
        return (1.0 - t) * a + t * b
    return (torch.sin((1.0 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@merge_op("slerp", knobs=[Knob("t", 0.0, 1.0, "weight of the second model")])
def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-6) -> torch.Tensor:
    """SLERP of two same-shaped tensors with one global angle."""
    if a.shape != b.shape:
        raise ValueError(f"slerp: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    return _interp(torch.as_tensor(t, dtype=a.dtype), a, b, eps)


@merge_op("split_slerp", knobs=[Knob("t", 0.0, 1.0, "weight of the second model before the split"),
                                 Knob("split", 0.0, 1.0, "split point as a fraction of the flattened length")])
def split_slerp(a: torch.Tensor, b: torch.Tensor, t: float, split: int | float, eps: float = 1e-6) -> torch.Tensor:
    """M2N2 crossover: SLERP with weight ``t`` for flat indices ``< split`` and ``1 - t`` from ``split`` on.

    ``split`` is an index into the flattened tensor (an int), or a fraction in [0, 1] (a float).
    The angle is computed once over the whole vectors.
    """
    if a.shape != b.shape:
        raise ValueError(f"split_slerp: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    n = a.numel()
    k = int(split) if isinstance(split, int) else int(round(float(split) * n))
    if not 0 <= k <= n:
        raise ValueError(f"split_slerp: split index {k} outside [0, {n}]")
    tt = torch.full((n,), float(t), dtype=a.dtype)
    tt[k:] = 1.0 - float(t)
    return _interp(tt.reshape(a.shape), a, b, eps)
