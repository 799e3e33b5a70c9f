"""Small MLP families for the embedded digits suite.

``MLPFamily`` is the M2N2 reference model: 64 -> 256 (ReLU) -> 10, 19,210 parameters, flattened in
the order W1 (64x256, row-major), b1, W2 (256x10), b2 — the order over which M2N2's split point is
drawn. Weights are stored ``(in, out)`` so that ``x @ W + b`` matches the reference layout.

``ResMLPFamily`` is the block-stacked variant for data-flow-space merging: a stem 64 -> h (ReLU),
``n_blocks`` residual blocks ``h <- h + relu(h @ W + b)``, and a head h -> 10. Any path through the
blocks of several such models is a valid model, which is what DFS searches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from evobench.merge.fold import FoldRule, blocks_in
from evobench.models.base import BlockStack, ModelFamily, State


class MLP:
    """A runnable two-layer MLP (callable on a float tensor of inputs, returns logits)."""

    def __init__(self, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor) -> None:
        self.w1, self.b1, self.w2, self.b2 = w1, b1, w2, b2

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(torch.addmm(self.b1, x, self.w1))
        return torch.addmm(self.b2, h, self.w2)


class MLPFamily(ModelFamily):
    def __init__(self, n_in: int = 64, hidden: int = 256, n_out: int = 10) -> None:
        self.n_in, self.hidden, self.n_out = n_in, hidden, n_out
        self.name = f"mlp-{n_in}-{hidden}-{n_out}"
        self._shapes = {"fc1.weight": (n_in, hidden), "fc1.bias": (hidden,),
                        "fc2.weight": (hidden, n_out), "fc2.bias": (n_out,)}

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self._shapes

    def build(self, state: State) -> MLP:
        return MLP(state["fc1.weight"], state["fc1.bias"], state["fc2.weight"], state["fc2.bias"])


class PathMLP:
    """A runnable residual MLP executing a given sequence of blocks with per-step input scales."""

    def __init__(self, stem: tuple[torch.Tensor, torch.Tensor], blocks: list[tuple[torch.Tensor, torch.Tensor]],
                 scales: Sequence[float], head: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.stem, self.blocks, self.scales, self.head = stem, blocks, list(scales), head

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(torch.addmm(self.stem[1], x, self.stem[0]))
        for (w, b), s in zip(self.blocks, self.scales, strict=True):
            if s != 1.0:
                h = h * s
            h = h + torch.relu(torch.addmm(b, h, w))
        return torch.addmm(self.head[1], h, self.head[0])


#: ``relu(c x) = c relu(x)`` for ``c > 0``: a block entered at cumulative scale ``c`` divides its bias
#: by ``c``, the head's weight takes the final scale, and a zero stem starts from zero
RESMLP_FOLD = FoldRule("blocks", ("bias",), multiply=("head.weight",), zero=("stem.weight", "stem.bias"))


class ResMLPFamily(ModelFamily, BlockStack):
    def __init__(self, n_in: int = 64, hidden: int = 64, n_out: int = 10, n_blocks: int = 4) -> None:
        self.n_in, self.hidden, self.n_out, self.blocks = n_in, hidden, n_out, n_blocks
        self.name = f"resmlp-{n_in}-{hidden}x{n_blocks}-{n_out}"
        shapes = {"stem.weight": (n_in, hidden), "stem.bias": (hidden,)}
        for i in range(n_blocks):
            shapes[f"blocks.{i}.weight"] = (hidden, hidden)
            shapes[f"blocks.{i}.bias"] = (hidden,)
        shapes["head.weight"] = (hidden, n_out)
        shapes["head.bias"] = (n_out,)
        self._shapes = shapes

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self._shapes

    def n_blocks(self) -> int:
        return self.blocks

    def fold_rule(self) -> FoldRule:
        return RESMLP_FOLD

    def for_state(self, state: State) -> ResMLPFamily:
        """This family with as many blocks as ``state`` has (``blocks.0`` .. ``blocks.{n-1}``)."""
        n = blocks_in(state, "blocks")
        return self if n in (0, self.blocks) else ResMLPFamily(self.n_in, self.hidden, self.n_out, n)

    def _block(self, state: State, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return state[f"blocks.{i}.weight"], state[f"blocks.{i}.bias"]

    def build(self, state: State) -> PathMLP:
        return self.build_path([state], [(0, i) for i in range(self.blocks)], [1.0] * self.blocks)

    def build_path(self, sources: Sequence[State], path: Sequence[tuple[int, int]],
                   scales: Sequence[float]) -> PathMLP:
        if len(path) != len(scales):
            raise ValueError(f"{self.name}: path has {len(path)} steps but {len(scales)} scales")
        for src, i in path:
            if not (0 <= src < len(sources) and 0 <= i < self.blocks):
                raise ValueError(f"{self.name}: path step ({src}, {i}) is outside {len(sources)} models "
                                 f"x {self.blocks} blocks")
        a = sources[0]
        return PathMLP((a["stem.weight"], a["stem.bias"]), [self._block(sources[s], i) for s, i in path],
                       scales, (a["head.weight"], a["head.bias"]))
