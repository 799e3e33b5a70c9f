"""Data-flow-space (DFS) merging: decode slot indicators and a scaling matrix into a layer path.

Convention (Sakana "Evolutionary Optimization of Model Merging Recipes", DFS):

* Source ``m`` has ``L_m`` layers. Global layer indices stack the sources in order: model 0's
  layers are ``0 .. L_0-1``, model 1's are ``L_0 .. L_0+L_1-1``, ...; ``M = sum_m L_m``.
* The candidate sequence has ``T = M * r`` slots; slot ``t`` holds global layer ``t mod M``
  (the stacked layers repeated ``r`` times). Slot ``t`` is on the path iff ``indicator[t] > 0.5``
  (indicator genes are in genome units, [0, 1]). The path keeps slot order.
* ``W`` is ``M x M``; ``W[i, j]`` scales the hidden state passed from global layer ``i`` into
  global layer ``j``. Step 0's input (the embeddings) has scale 1.0; step ``s > 0`` gets
  ``W[g_{s-1}, g_s]`` where ``g_s`` is the global index of the layer at step ``s``.
  ``W`` holds decoded values (its knob maps a gene ``u`` to ``2u``, so gene 0.5 means scale 1.0).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import NamedTuple

import numpy as np
import torch

from evobench.errors import CandidateError
from evobench.merge.knobs import Knob, merge_op


class LayerPath(NamedTuple):
    """A decoded path: ``path[s] = (source_index, layer_index)``, ``scales[s]`` = input scale of step s."""

    path: list[tuple[int, int]]
    scales: list[float]


def _float64(a) -> torch.Tensor:
    """``a`` as a float64 tensor; numpy input is copied (an asked genome is read-only)."""
    if isinstance(a, torch.Tensor):
        return a.to(torch.float64)
    return torch.from_numpy(np.array(a, dtype=np.float64))


def global_layer(layers_per_model: Sequence[int], g: int) -> tuple[int, int]:
    """Map global layer index ``g`` to ``(source_index, layer_index)``."""
    if g < 0:
        raise ValueError(f"layer_path: global layer {g} is negative")
    for m, n in enumerate(layers_per_model):
        if g < n:
            return m, g
        g -= n
    raise ValueError(f"layer_path: global layer index out of range for layers {list(layers_per_model)}")


@merge_op("layer_path", knobs=[
    Knob("indicator", 0.0, 1.0, "one gene per slot (T = M * r): the slot is on the path if gene > 0.5"),
    Knob("scale", 0.0, 2.0, "one gene per entry of the M x M matrix W scaling hidden states between layers"),
])
def layer_path(layers_per_model: Sequence[int], repeats: int, indicator: Sequence[float],
               scales) -> LayerPath:
    """Decode the DFS genome (see the module docstring for the convention).

    ``layers_per_model``: ``[L_0, L_1, ...]``; ``repeats``: ``r >= 1``; ``indicator``: ``M * r``
    values; ``scales``: ``W`` as an ``M x M`` nested sequence / array / tensor, or ``M * M`` values
    in row-major order. Returns ``LayerPath(path, scales)`` (a tuple). Raises
    ``ValueError("layer_path: no layer selected")`` if no slot is on the path.
    """
    lengths = [int(n) for n in layers_per_model]
    if not lengths or any(n < 1 for n in lengths):
        raise ValueError(f"layer_path: layers_per_model must be positive counts, got {list(layers_per_model)}")
    if int(repeats) != repeats or repeats < 1:
        raise ValueError(f"layer_path: repeats must be an integer >= 1, got {repeats!r}")
    m_total = sum(lengths)
    genes = _float64(indicator).reshape(-1)
    if genes.numel() != m_total * int(repeats):
        raise ValueError(f"layer_path: indicator has {genes.numel()} genes, expected M * r = "
                         f"{m_total} * {int(repeats)} = {m_total * int(repeats)}")
    w = _float64(scales)
    if w.numel() != m_total * m_total or w.dim() not in (1, 2) or (w.dim() == 2 and w.shape[0] != m_total):
        raise ValueError(f"layer_path: scales must be an M x M matrix with M = {m_total}, "
                         f"got shape {tuple(w.shape)}")
    w = w.reshape(m_total, m_total)
    steps = [t % m_total for t in torch.nonzero(genes > 0.5).reshape(-1).tolist()]
    if not steps:
        raise CandidateError("layer_path: no layer selected (every slot indicator is off)")
    path = [global_layer(lengths, g) for g in steps]
    step_scales = [1.0] + [float(w[i, j]) for i, j in pairwise(steps)]
    return LayerPath(path, step_scales)
