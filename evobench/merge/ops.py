"""Parameter-space merge ops: linear, task arithmetic, TIES, DARE, DARE-TIES; and a state-dict driver.

Every op is a pure function of one tensor per source model (any shape, same shape for all) and
returns one merged tensor. Half-precision inputs are computed in float32 (float64 stays float64)
and the result is cast back to the dtype of ``base`` (of ``tensors[0]`` for :func:`linear`).

TIES, DARE and DARE-TIES are one core, :func:`sparse_merge`, configured by
``sparsify`` in {"magnitude", "random", None} x ``consensus`` in {"sign", None}. With task vectors
``d_i = theta_i - base`` and weights ``w_i`` it computes:

1. sparsify: ``"magnitude"`` keeps the ``k = round(density_i * n)`` (at least 1) entries of
   ``d_i`` with the largest ``|d_i|`` (threshold = k-th largest magnitude via ``torch.kthvalue``;
   entries tied with the threshold are all kept); ``"random"`` keeps each entry independently
   with probability ``density_i`` and, if ``rescale``, divides the survivors by ``density_i``.
   The keep mask is ``rand(shape) < density_i``, drawn from model i's generator (``generator`` is
   one generator shared by all models, or a sequence with one generator per model). The draw is
   made for every density, 1 included (where it keeps everything), so the masks of later models
   on a shared generator never depend on an earlier model's density.
2. weight: ``v_i = w_i * sparsified(d_i)``.
3. consensus ``None``: ``delta = sum_i v_i``. Consensus ``"sign"``: per element the elected sign
   is ``sign(sum_i v_i)`` (the sign of the total mass); contributor ``i`` *agrees* where
   ``v_i != 0`` and ``sign(v_i)`` equals the elected sign. ``delta = sum_i agree_i * v_i``.
   Where the total is exactly 0 no contributor agrees and ``delta = 0``.
4. normalize: if ``normalize``, ``delta`` is divided per element by the sum of the weights of
   the contributors that count there: the agreeing ones with consensus (a weighted *disjoint mean*;
   elements with divisor 0 keep ``delta = 0``), all models without consensus (``sum_i w_i``).
5. result: ``base + delta``.

Defaults: :func:`ties` normalizes (disjoint mean, as in Yadav et al. 2023 with weights);
:func:`dare` and :func:`dare_ties` do not (weighted disjoint *sum*, the Sakana PS-merge recipe
where each model's weight is searched freely and is not normalised).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

from evobench.errors import CandidateError
from evobench.merge.knobs import Knob, merge_op

WEIGHT = Knob("weight", 0.0, 1.0, "scale of this model's contribution", per_model=True)
DENSITY = Knob("density", 0.01, 1.0, "fraction of this model's task vector kept", per_model=True)


def _per_model(op: str, what: str, values, k: int) -> list[float]:
    """``values`` as k floats: a scalar is repeated, a sequence must have one value per model."""
    if isinstance(values, numbers.Real) or (isinstance(values, torch.Tensor) and values.dim() == 0):
        out = [float(values)] * k
    else:
        out = [float(v) for v in values]
    if len(out) != k:
        raise ValueError(f"{op}: got {len(out)} {what} for {k} models")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{op}: {what} must be finite, got {out}")
    return out


def _check_tensors(op: str, ref: torch.Tensor, tensors: Sequence[torch.Tensor], ref_name: str) -> torch.dtype:
    """Check shapes and float dtypes; return the compute dtype (float64 if any input is, else float32)."""
    if len(tensors) == 0:
        raise ValueError(f"{op}: no model tensors given")
    for i, t in enumerate([ref, *tensors]):
        if not t.is_floating_point():
            raise ValueError(f"{op}: tensors must be floating point, got {t.dtype}")
        if i and t.shape != ref.shape:
            raise ValueError(f"{op}: tensor {i - 1} has shape {tuple(t.shape)} but {ref_name} has "
                             f"shape {tuple(ref.shape)}")
    return torch.float64 if any(t.dtype == torch.float64 for t in [ref, *tensors]) else torch.float32


def _check_densities(op: str, densities, k: int) -> list[float]:
    ds = _per_model(op, "densities", densities, k)
    bad = [d for d in ds if not 0.0 < d <= 1.0]
    if bad:
        raise ValueError(f"{op}: densities must be in (0, 1], got {bad}")
    return ds


def _trim_magnitude(d: torch.Tensor, density: float) -> torch.Tensor:
    n = d.numel()
    k = min(n, max(1, round(density * n)))
    if k >= n:
        return d
    mag = d.abs()
    thr = mag.reshape(-1).kthvalue(n - k + 1).values  # k-th largest magnitude; no quantile size limit
    return torch.where(mag >= thr, d, torch.zeros((), dtype=d.dtype))


def _drop_random(d: torch.Tensor, density: float, rescale: bool, generator: torch.Generator | None):
    keep = torch.rand(d.shape, generator=generator, device=d.device) < density  # drawn even at density 1
    kept = torch.where(keep, d, torch.zeros((), dtype=d.dtype))
    return kept / density if rescale else kept


Generators = torch.Generator | Sequence[torch.Generator | None] | None


def _generators(op: str, generator: Generators, k: int) -> list[torch.Generator | None]:
    """One generator (or None) per model: a single generator or None is shared by all models."""
    if generator is None or isinstance(generator, torch.Generator):
        return [generator] * k
    gens = list(generator)
    if len(gens) != k:
        raise ValueError(f"{op}: got {len(gens)} generators for {k} models")
    return gens


def sparse_merge(base: torch.Tensor, tensors: Sequence[torch.Tensor], weights: Sequence[float] | float,
                 densities: Sequence[float] | float | None = None, *, sparsify: str | None = None,
                 consensus: str | None = None, normalize: bool = False, rescale: bool = True,
                 generator: Generators = None, op: str = "sparse_merge") -> torch.Tensor:
    """The shared core of task arithmetic / TIES / DARE / DARE-TIES (see the module docstring)."""
    if sparsify not in (None, "magnitude", "random"):
        raise ValueError(f"{op}: sparsify must be 'magnitude', 'random' or None, got {sparsify!r}")
    if consensus not in (None, "sign"):
        raise ValueError(f"{op}: consensus must be 'sign' or None, got {consensus!r}")
    ct = _check_tensors(op, base, tensors, "base")
    k = len(tensors)
    ws = _per_model(op, "weights", weights, k)
    ds = [1.0] * k if sparsify is None else _check_densities(op, densities, k)
    gens = _generators(op, generator, k)
    b = base.to(ct)
    vs = []  # weighted sparse task vectors; kept only when signs must be elected
    delta = torch.zeros_like(b)
    for t, w, dens, g in zip(tensors, ws, ds, gens, strict=True):
        d = t.to(ct) - b
        if sparsify == "magnitude":
            d = _trim_magnitude(d, dens)
        elif sparsify == "random":
            d = _drop_random(d, dens, rescale, g)
        if consensus is None:
            delta.add_(d, alpha=w)
        else:
            vs.append(d * w)
    if consensus is None:
        if normalize:
            if sum(ws) == 0:
                raise CandidateError(f"{op}: weights sum to 0, cannot normalize")
            delta = delta / sum(ws)
        return (b + delta).to(base.dtype)
    v = torch.stack(vs)
    elected = torch.sign(v.sum(0))
    agree = (torch.sign(v) == elected) & (v != 0)
    delta = torch.where(agree, v, torch.zeros((), dtype=ct)).sum(0)
    if normalize:
        w = torch.tensor(ws, dtype=ct).reshape((k,) + (1,) * b.dim())
        div = torch.where(agree, w, torch.zeros((), dtype=ct)).sum(0)
        delta = torch.where(div != 0, delta / torch.where(div != 0, div, 1.0), torch.zeros((), dtype=ct))
    return (b + delta).to(base.dtype)


@merge_op("linear", knobs=[WEIGHT])
def linear(tensors: Sequence[torch.Tensor], weights: Sequence[float] | float,
           normalize: bool = True) -> torch.Tensor:
    """Weighted average ``sum_i w_i theta_i / sum_i w_i`` (plain weighted sum if not ``normalize``)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("linear: no model tensors given")
    ct = _check_tensors("linear", tensors[0], tensors[1:], "tensor 0")
    ws = _per_model("linear", "weights", weights, len(tensors))
    if normalize and sum(ws) == 0:
        raise CandidateError("linear: weights sum to 0, cannot normalize")
    out = torch.zeros(tensors[0].shape, dtype=ct)
    for t, w in zip(tensors, ws, strict=True):
        out.add_(t.to(ct), alpha=w)
    if normalize:
        out = out / sum(ws)
    return out.to(tensors[0].dtype)


@merge_op("task_arithmetic", knobs=[WEIGHT])
def task_arithmetic(base: torch.Tensor, tensors: Sequence[torch.Tensor], weights: Sequence[float] | float,
                    normalize: bool = False) -> torch.Tensor:
    """``base + sum_i w_i (theta_i - base)`` (Ilharco et al. 2023)."""
    return sparse_merge(base, tensors, weights, normalize=normalize, op="task_arithmetic")


@merge_op("ties", knobs=[WEIGHT, DENSITY])
def ties(base: torch.Tensor, tensors: Sequence[torch.Tensor], weights: Sequence[float] | float,
         densities: Sequence[float] | float, normalize: bool = True) -> torch.Tensor:
    """TIES (Yadav et al. 2023): magnitude trim, sign election, disjoint (weighted) mean onto base."""
    return sparse_merge(base, tensors, weights, densities, sparsify="magnitude", consensus="sign",
                        normalize=normalize, op="ties")


@merge_op("dare", knobs=[WEIGHT, DENSITY])
def dare(base: torch.Tensor, tensors: Sequence[torch.Tensor], weights: Sequence[float] | float,
         densities: Sequence[float] | float, generator: Generators = None,
         rescale: bool = True) -> torch.Tensor:
    """DARE (Yu et al. 2023): random drop with prob ``1 - density``, rescale by ``1/density``, weighted sum."""
    return sparse_merge(base, tensors, weights, densities, sparsify="random", rescale=rescale,
                        generator=generator, op="dare")


@merge_op("dare_ties", knobs=[WEIGHT, DENSITY])
def dare_ties(base: torch.Tensor, tensors: Sequence[torch.Tensor], weights: Sequence[float] | float,
              densities: Sequence[float] | float, generator: Generators = None,
              rescale: bool = True, normalize: bool = False) -> torch.Tensor:
    """DARE sparsification + TIES sign election and disjoint merge (the Sakana PS-merge op)."""
    return sparse_merge(base, tensors, weights, densities, sparsify="random", consensus="sign",
                        normalize=normalize, rescale=rescale, generator=generator, op="dare_ties")


def _knob_for(value, name: str, knob: str):
    """Resolve a knob value for tensor ``name``: a mapping is looked up, a list/tuple element-wise."""
    if isinstance(value, Mapping):
        if name not in value:
            raise ValueError(f"merge_state_dicts: knob {knob!r} has no value for tensor {name!r}")
        return _knob_for(value[name], name, knob)
    if isinstance(value, (list, tuple)):
        return [_knob_for(v, name, knob) for v in value]
    return value


def iter_merged(op: Callable | str, base: Mapping[str, torch.Tensor] | None,
                states: Sequence[Mapping[str, torch.Tensor]], **knobs) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, merged tensor)`` one tensor at a time, in the key order of ``states[0]``.

    The op is called as ``op(base[name], tensors, **kv)`` if its first parameter is ``base``, as
    ``op(tensors, **kv)`` if it is ``tensors``, else as ``op(*tensors, **kv)`` (e.g. ``slerp(a, b, t)``).
    Each knob value may be a scalar, a per-model list, or a mapping tensor name -> value (nested
    freely). Non-floating tensors (integer buffers) are passed through from ``base`` (else ``states[0]``).
    """
    if isinstance(op, str):
        from evobench.registry import MERGE_OPS
        op = MERGE_OPS.get(op)
    if not states:
        raise ValueError("merge_state_dicts: no state dicts given")
    first = next(iter(inspect.signature(op).parameters))
    if first == "base" and base is None:
        raise ValueError(f"merge_state_dicts: op {getattr(op, 'op_name', op)!r} needs a base state dict")
    names = list(states[0])
    for i, s in enumerate(states[1:], 1):
        if set(s) != set(names):
            diff = sorted(set(s) ^ set(names))[:5]
            raise ValueError(f"merge_state_dicts: state dict {i} keys differ from state dict 0: {diff}")
    if base is not None:
        missing = [n for n in names if n not in base][:5]
        if missing:
            raise ValueError(f"merge_state_dicts: base lacks tensors {missing}")
    for name in names:
        ts = [s[name] for s in states]
        ref = base[name] if base is not None else ts[0]
        if not ref.is_floating_point():
            yield name, ref
            continue
        kv = {k: _knob_for(v, name, k) for k, v in knobs.items()}
        if first == "base":
            yield name, op(base[name], ts, **kv)
        elif first == "tensors":
            yield name, op(ts, **kv)
        else:
            yield name, op(*ts, **kv)


def merge_state_dicts(op: Callable | str, base: Mapping[str, torch.Tensor] | None,
                      states: Sequence[Mapping[str, torch.Tensor]], **knobs) -> dict[str, torch.Tensor]:
    """Apply a merge op tensor by tensor over state dicts (see :func:`iter_merged`); returns a new dict."""
    return dict(iter_merged(op, base, states, **knobs))
