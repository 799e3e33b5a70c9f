"""Data-flow-space (DFS) spaces: a path through the blocks of the source models, and PS+DFS.

DFS (Sakana, "Evolutionary Optimization of Model Merging Recipes"): with M = total blocks of the
sources laid end to end and r repetitions, the genome holds T = M·r slot indicators (slot t, holding
global block t mod M, is on the path if its gene > 0.5) followed by the M x M scaling matrix W
(gene u -> scale 2u, so 0.5 is "unchanged"); see :mod:`evobench.merge.layer_path`. The stem and the
head come from the first source. ``initial`` is the genome that reproduces the first source: its
blocks in the first repetition on (gene 0.75), everything else off (0.25), unit scales.

PS+DFS (the paper's staged merge): the genome is ``[PS knobs | DFS genes]``; the PS part merges the
sources into A', which is put back into the collection: the DFS part routes through the blocks of
``[A', *sources]`` (A' first, then every source, A included), so M = (n_sources + 1) · blocks. The
stem and the head come from A' (model 0 of the collection), and ``initial``'s DFS part is A' alone
(the blocks of A' in order, everything else off, unit scales), i.e. the PS merge itself. With
``keep_sources=False`` A' replaces the first source instead: the collection is ``[A', *sources[1:]]``.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from evobench.errors import CandidateError, FoldError
from evobench.merge.layer_path import layer_path
from evobench.models.base import BlockStack, ModelPool
from evobench.spaces.base import MergeSpace, SpaceError
from evobench.spaces.ps import PSSpace

ON, OFF = 0.75, 0.25


class _DFSCodec:
    """Decodes the DFS part of a genome for ``n_models`` block stacks of ``n_blocks`` each."""

    def __init__(self, family, n_models: int, repeats: int) -> None:
        if not isinstance(family, BlockStack):
            raise SpaceError(f"dfs space needs a block-stacked model family; {family.name!r} is not one")
        if repeats < 1:
            raise SpaceError(f"dfs space: repeats must be >= 1, got {repeats}")
        self.family, self.repeats = family, int(repeats)
        self.lengths = [family.n_blocks()] * n_models
        self.m = sum(self.lengths)
        self.n_slots = self.m * self.repeats
        self.dim = self.n_slots + self.m * self.m

    def identity(self) -> np.ndarray:
        g = np.full(self.dim, OFF)
        g[: self.lengths[0]] = ON
        g[self.n_slots:] = 0.5
        return g

    def path(self, g: np.ndarray):
        return layer_path(self.lengths, self.repeats, g[: self.n_slots],
                          2.0 * np.clip(g[self.n_slots:], 0.0, 1.0))

    def exact(self, g: np.ndarray) -> str:
        """The path and its unrounded scales as JSON (floats as their shortest exact repr); the
        genome's own hash when it decodes to no valid path."""
        try:
            lp = self.path(np.asarray(g, dtype=float))
        except CandidateError:
            return "invalid:" + hashlib.sha256(np.ascontiguousarray(g, dtype="<f8").tobytes()).hexdigest()
        return json.dumps({"path": [list(map(int, p)) for p in lp.path], "scales": [float(s) for s in lp.scales]},
                          separators=(",", ":"))

    def rule(self):
        """The family's fold rule; FoldError when its layer paths are not written as plain models."""
        rule = self.family.fold_rule()
        if rule is None:
            raise FoldError(f"layer paths of {self.family.name!r} models are not written as checkpoints")
        return rule

    def fold(self, states: list, g: np.ndarray) -> dict:
        from evobench.merge.fold import fold_state

        lp = self.path(g)
        return fold_state(self.rule(), states, lp.path, lp.scales)

    def decode(self, g: np.ndarray) -> dict:
        try:
            lp = self.path(g)
        except CandidateError as e:
            return {"error": str(e)}
        return {"repeats": self.repeats, "path": [list(p) for p in lp.path],
                "scales": [round(s, 6) for s in lp.scales]}


class DFSSpace(MergeSpace):
    kind = "dfs"

    def __init__(self, pool: ModelPool, repeats: int = 3) -> None:
        if len(pool.sources) < 2:
            raise SpaceError(f"dfs space needs >= 2 source models, the pool has {len(pool.sources)}")
        self.pool, self.codec = pool, _DFSCodec(pool.family, len(pool.sources), repeats)
        self.states = [s for _, s in pool.sources]
        d = self.codec.dim
        super().__init__(d, np.zeros(d), np.ones(d),
                         {"slots": slice(0, self.codec.n_slots), "scales": slice(self.codec.n_slots, d)})

    def initial(self, rng: np.random.Generator) -> np.ndarray:
        return self.codec.identity()[None, :]

    def starting_genomes(self, states: list) -> tuple[list[int], np.ndarray]:
        """Only the first source is a layer path (stem and head come from it): its own path."""
        return ([0], self.codec.identity()[None, :]) if states else ([], np.zeros((0, self.dim)))

    def decode(self, x: np.ndarray) -> dict:
        return {"kind": "dfs", "models": [n for n, _ in self.pool.sources], **self.codec.decode(x)}

    def candidate_key(self, x: np.ndarray) -> str:
        """The exact layer path (genomes that decode to one path share one entry)."""
        return "dfs:" + self.codec.exact(x)

    def build(self, x: np.ndarray):
        lp = self.codec.path(np.asarray(x, dtype=float))
        return self.pool.family.build_path(self.states, lp.path, lp.scales)

    def state_dict(self, x: np.ndarray):
        """The path as a plain model of one block per step (:mod:`evobench.merge.fold`); FoldError (one
        line) when the family's blocks or this path do not fold."""
        return self.codec.fold(self.states, np.asarray(x, dtype=float))


class PSDFSSpace(MergeSpace):
    kind = "ps+dfs"

    def __init__(self, pool: ModelPool, repeats: int = 3, op: str = "dare_ties", granularity: str = "model",
                 merge_seed: int = 0, keep_sources: bool = True) -> None:
        self.pool, self.keep_sources = pool, bool(keep_sources)
        self.ps = PSSpace(pool, op=op, granularity=granularity, merge_seed=merge_seed)
        self._others = list(pool.sources if self.keep_sources else pool.sources[1:])  # after A'
        self.codec = _DFSCodec(pool.family, 1 + len(self._others), repeats)
        n_ps = self.ps.dim
        d = n_ps + self.codec.dim
        super().__init__(d, np.zeros(d), np.ones(d), {"ps": slice(0, n_ps), "dfs": slice(n_ps, d)})

    def initial(self, rng: np.random.Generator) -> np.ndarray:
        return np.concatenate([self.ps.initial(rng)[0], self.codec.identity()])[None, :]

    def starting_genomes(self, states: list) -> tuple[list[int], np.ndarray]:
        """Source i = the PS genome that merges to source i, routed through A' alone."""
        idx, ps = self.ps.starting_genomes(states)
        dfs = np.repeat(self.codec.identity()[None, :], len(idx), axis=0)
        return idx, np.concatenate([ps, dfs], axis=1)

    def decode(self, x: np.ndarray) -> dict:
        x = np.asarray(x, dtype=float)
        names = ["ps-merge"] + [n for n, _ in self._others]
        return {"kind": "ps+dfs", "ps": self.ps.decode(x[self.segments["ps"]]),
                "dfs": {"models": names, **self.codec.decode(x[self.segments["dfs"]])}}

    def candidate_key(self, x: np.ndarray) -> str:
        x = np.asarray(x, dtype=float)
        return f"ps+dfs:{self.ps.candidate_key(x[self.segments['ps']])}|{self.codec.exact(x[self.segments['dfs']])}"

    def build(self, x: np.ndarray):
        x = np.asarray(x, dtype=float)
        lp = self.codec.path(x[self.segments["dfs"]])  # decode first: a bad path fails before merging
        merged = self.ps.merged_state(x[self.segments["ps"]])
        return self.pool.family.build_path([merged, *[s for _, s in self._others]], lp.path, lp.scales)

    def state_dict(self, x: np.ndarray):
        """A' merged, then the path through ``[A', *others]`` as a plain model (see :meth:`DFSSpace.state_dict`)."""
        x = np.asarray(x, dtype=float)
        self.codec.rule()  # a family that does not fold fails before the merge
        merged = self.ps.merged_state(x[self.segments["ps"]])
        return self.codec.fold([merged, *[s for _, s in self._others]], x[self.segments["dfs"]])
