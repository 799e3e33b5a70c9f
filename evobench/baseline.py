"""Baseline contract: a search algorithm that only asks and tells.

The public ``setup``/``seed``/``ask``/``tell`` handle call order, shapes, bounds, failed candidates and
best-so-far bookkeeping; a subclass fills ``_setup``, ``_ask`` and ``_tell`` (and optionally
``_seed``, ``recommend``). A baseline never loads a model, scores, or logs: the runner does.

A baseline may write scratch files (e.g. a disk-backed archive too large for memory) into
``self.workdir``: a folder given to ``setup`` by the caller, empty at the start, that exists for the
whole run and that the caller deletes when the run ends (the runner makes one per run inside the
comparison's results folder while it is being written, see :func:`evobench.runner.run_one`). It is
None when the caller gives none; a baseline that needs one then raises a one-line ``ValueError``.

Fitness is maximised. ``tell`` receives an :class:`~evobench.task.Evaluation` whose ``value`` is NaN
for failed candidates; subclasses decide what a failure means for them but must never hand a NaN to
an optimiser as a number (``Evaluation.ok`` masks them).
"""

from __future__ import annotations

import copy
import math
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from evobench.evaluation import Evaluation
from evobench.spaces.base import MergeSpace, SpaceError


class BaselineConfig(BaseModel):
    """Hyper-parameters of a baseline. Subclass and add fields; frozen, unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CallOrderError(RuntimeError):
    pass


def _is_prefix_view(x: np.ndarray, pending: np.ndarray) -> bool:
    """Whether ``x`` is the asked (read-only) batch itself or a leading slice of it, as the runner
    passes it back: then its genes are the asked ones without comparing them."""
    return x is pending or (x.base is pending and not x.flags.writeable and x.ndim == 2
                            and x.shape[0] <= pending.shape[0] and x.shape[1:] == pending.shape[1:]
                            and x.strides == pending.strides and x.ctypes.data == pending.ctypes.data)


class Baseline(ABC):
    name: ClassVar[str] = ""
    # Space kinds this baseline can search, in order of preference ("ps", "dfs", "ps+dfs", "params").
    spaces: ClassVar[tuple[str, ...]] = ("ps", "params")
    paper: ClassVar[str] = ""
    Config: ClassVar[type[BaselineConfig]] = BaselineConfig
    # What the baseline needs from a problem, checked at plan time (see evobench.problem.NEEDS):
    # needed in every space, and needed only in some space kinds.
    needs: ClassVar[tuple[str, ...]] = ()
    space_needs: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def requirements(cls, kind: str) -> tuple[str, ...]:
        """Everything this baseline needs from a problem when it searches a ``kind`` space."""
        return tuple(dict.fromkeys((*cls.needs, *cls.space_needs.get(kind, ()))))

    def __init__(self, config: BaselineConfig | dict | None = None, **overrides: Any) -> None:
        if isinstance(config, BaselineConfig):
            cfg = config.model_copy(update=overrides) if overrides else config
            cfg = self.Config.model_validate(cfg.model_dump())
        else:
            cfg = self.Config.model_validate({**(config or {}), **overrides})
        self.config = cfg
        self.space: MergeSpace | None = None
        self._pending: np.ndarray | None = None

    # ---- public contract -------------------------------------------------------------------------
    def setup(self, space: MergeSpace, budget: int, seed: int, workdir: str | os.PathLike | None = None) -> Baseline:
        """Start a run on ``space``; ``workdir``: the run's scratch folder (see the module docstring)."""
        if space.kind not in self.spaces:
            raise SpaceError(f"baseline {self.name!r} cannot search a {space.kind!r} space "
                             f"(it searches: {', '.join(self.spaces)})")
        if int(budget) <= 0:
            raise ValueError(f"baseline {self.name!r}: budget must be > 0, got {budget}")
        self.space, self.budget, self.seed_value = space, int(budget), int(seed)
        self.workdir = None if workdir is None else Path(workdir)
        self._bounded = space.bounded  # a space's bounds are fixed: checked once, not per ask
        self.rng = np.random.default_rng(seed)
        self.n_told = 0
        self.best_x: np.ndarray | None = None
        self.best_f = -np.inf
        self._pending = None
        self._seeded = False
        self._setup()
        return self

    def seed(self, x0: np.ndarray, ev0: Evaluation) -> None:
        """Hand the starting models (already scored, not counted in the budget) to the baseline."""
        self._require_setup()
        if self._seeded or self.n_told:
            raise CallOrderError(f"{self.name}: seed() must come once, before the first ask()")
        x0 = self.space.check(x0)
        self._seeded = True
        self._track_best(x0, ev0)
        self._seed(x0, ev0)

    def ask(self) -> np.ndarray:
        self._require_setup()
        if self._pending is not None:
            raise CallOrderError(f"{self.name}: ask() called twice without tell()")
        x = self.space.check(self._ask())
        if self._bounded and (np.any(x < self.space.lower - 1e-12) or np.any(x > self.space.upper + 1e-12)):
            raise RuntimeError(f"{self.name}: asked genomes outside the space's bounds")
        # the caller gets the asked genomes read-only (no copy): tell() then recognises them by
        # identity instead of comparing every gene, and nobody can change them in between
        x = np.array(x, order="C")  # one copy (the space's dtype): a baseline may reuse its own buffers
        x.flags.writeable = False
        self._pending = x
        return x

    def tell(self, x: np.ndarray, ev: Evaluation) -> None:
        """Tell the scores of the asked batch. At the end of a budget the runner may tell only a
        prefix of it; the algorithm then records the results but skips its update."""
        self._require_setup()
        if self._pending is None:
            raise CallOrderError(f"{self.name}: tell() without a pending ask()")
        x = self.space.check(x)
        k = x.shape[0]
        if len(ev) != k or k > self._pending.shape[0] or not (_is_prefix_view(x, self._pending)
                                                               or np.array_equal(x, self._pending[:k])):
            raise CallOrderError(f"{self.name}: tell() must get the asked genomes (or a prefix) with one score each")
        partial = k < self._pending.shape[0]
        self._pending = None
        self.n_told += k
        self._track_best(x, ev)
        if not partial:
            self._tell(x, ev)

    def recommend(self) -> np.ndarray | None:
        """The genome reported at the end (default: the best one ever evaluated)."""
        return None if self.best_x is None else self.best_x.copy()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the search (space excluded: it is rebuilt by ``setup``)."""
        return copy.deepcopy({k: v for k, v in vars(self).items() if k != "space"})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        space = self.space
        vars(self).update(copy.deepcopy(state))
        self.space = space

    # ---- hooks ------------------------------------------------------------------------------------
    def _setup(self) -> None:
        """Allocate the algorithm's state (``self.space``, ``self.budget``, ``self.rng`` are set)."""

    def _seed(self, x0: np.ndarray, ev0: Evaluation) -> None:
        """Use the scored starting models (default: ignore them beyond best-so-far)."""

    @abstractmethod
    def _ask(self) -> np.ndarray:
        """Propose a batch of genomes ``(k, dim)``."""

    @abstractmethod
    def _tell(self, x: np.ndarray, ev: Evaluation) -> None:
        """Update on a full batch."""

    # ---- helpers ----------------------------------------------------------------------------------
    def _require_setup(self) -> None:
        if self.space is None:
            raise CallOrderError(f"{self.name}: call setup(space, budget, seed) first")

    def _track_best(self, x: np.ndarray, ev: Evaluation) -> None:
        if len(ev) == 1:  # one candidate: the same test without the batch's masks
            v = float(ev.value[0])
            if math.isfinite(v) and v > self.best_f:
                self.best_f, self.best_x = v, x[0].copy()
            return
        ok = ev.ok
        if ok.any():
            i = int(np.argmax(np.where(ok, ev.value, -np.inf)))
            if ev.value[i] > self.best_f:
                self.best_f, self.best_x = float(ev.value[i]), x[i].copy()

    @property
    def remaining(self) -> int:
        return self.budget - self.n_told
