"""The contract suites, as pytest mixins any method or task can run on itself.

:class:`BaselineContract` (here) checks a baseline; :class:`TaskContract` (defined in
:mod:`evobench.task_contract`, re-exported here) checks a task factory.

Usage (in a third party's test file)::

    import pytest
    from evobench.contract import BaselineContract

    class TestMyMethod(BaselineContract):
        @pytest.fixture
        def baseline_factory(self):
            return MyMethod, {"popsize": 8}      # (class, small config)

The fixture may also return a zero-argument callable giving that pair; it is then resolved inside
each test, so an import error fails the test instead of erroring in the fixture.

Every test runs on a :class:`~evobench.testing.ToySpace` of each kind the baseline declares in
``spaces`` (``params`` of dim 12; bounded kinds of dim 8, ``ps+dfs`` with segments ps = [0, 3) and
dfs = [3, 8)) and drives the baseline like the runner does (:func:`start`, :func:`step`,
:func:`run_to_budget`): seed with the scored starting genomes, then ask / evaluate / tell, telling
only the prefix of the last batch that fits in the budget.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from evobench.baseline import Baseline, BaselineConfig, CallOrderError
from evobench.spaces.base import SpaceError
from evobench.task_contract import TaskContract
from evobench.testing import ToySpace, toy_evaluation

__all__ = ["BaselineContract", "TaskContract"]

KINDS = ("ps", "dfs", "ps+dfs", "params")


def toy_space(kind: str) -> ToySpace:
    """The suite's toy space of ``kind``."""
    if kind == "params":
        return ToySpace("params", 12)
    segments = {"ps": slice(0, 3), "dfs": slice(3, 8)} if kind == "ps+dfs" else None
    return ToySpace(kind, 8, segments=segments)


def start(cls: type[Baseline], config: dict, space: ToySpace, budget: int, seed: int) -> Baseline:
    """Set up a baseline and seed it with the space's scored starting genomes (uncounted)."""
    b = cls(dict(config)).setup(space, budget, seed)
    x0 = space.initial(np.random.default_rng(seed))
    b.seed(x0, toy_evaluation(x0))
    return b


def step(b: Baseline, n: int, fail: Callable[[int, np.ndarray], np.ndarray] | None = None,
         told: list | None = None) -> list[np.ndarray]:
    """Up to ``n`` ask/evaluate/tell rounds (fewer when the budget runs out); returns the asks.

    ``fail(i, x)`` gives a boolean mask of the rows of the ``i``-th told batch that fail (NaN value);
    ``told``, when given, collects the ``(x, evaluation)`` pairs actually told.
    """
    asks = []
    for i in range(n):
        if b.remaining <= 0:
            break
        x = b.ask()
        asks.append(x)
        x = x[: b.remaining]
        ev = toy_evaluation(x, fail=None if fail is None else fail(i, x))
        b.tell(x, ev)
        if told is not None:
            told.append((x, ev))
    return asks


def run_to_budget(b: Baseline, fail=None, max_rounds: int = 100_000) -> list[np.ndarray]:
    """Drive ``b`` until its whole budget has been told."""
    return step(b, max_rounds, fail)


def _resolve(factory) -> tuple[type[Baseline], dict]:
    cls, config = factory() if callable(factory) and not isinstance(factory, type) else factory
    return cls, dict(config or {})


def _same_asks(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _fail_best_and_odd(i: int, x: np.ndarray) -> np.ndarray:
    """Failure pattern: every odd row, the row that would score best, and all of ask 1."""
    fail = np.zeros(x.shape[0], dtype=bool)
    fail[1::2] = True
    fail[int(np.argmax(toy_evaluation(x).value))] = True
    if i == 1:
        fail[:] = True
    return fail


class BaselineContract:
    """Mixin: subclass it in a test module and override ``baseline_factory``."""

    budget = 23  # not a multiple of the usual batch sizes
    steps = 3

    @pytest.fixture
    def baseline_factory(self):
        """Override: return ``(BaselineClass, config_dict)`` (or a callable giving it)."""
        raise NotImplementedError("override the baseline_factory fixture to return (BaselineClass, config)")

    def _cases(self, factory) -> Iterator[tuple[type[Baseline], dict, ToySpace]]:
        cls, config = _resolve(factory)
        for kind in cls.spaces:
            yield cls, config, toy_space(kind)

    # ---- declaration ---------------------------------------------------------------------------------
    def test_declaration(self, baseline_factory):
        cls, config = _resolve(baseline_factory)
        assert issubclass(cls, Baseline)
        assert isinstance(cls.name, str) and cls.name, "a baseline needs a name"
        assert cls.spaces and set(cls.spaces) <= set(KINDS), f"{cls.name}: spaces {cls.spaces} not in {KINDS}"
        assert issubclass(cls.Config, BaselineConfig)
        assert isinstance(cls(config).config, cls.Config)

    # ---- asks ----------------------------------------------------------------------------------------
    def test_ask_shape_and_bounds(self, baseline_factory):
        for cls, config, space in self._cases(baseline_factory):
            b = start(cls, config, space, 1000, seed=0)
            for x in step(b, self.steps):
                assert x.ndim == 2 and x.shape[0] >= 1 and x.shape[1] == space.dim, (space.kind, x.shape)
                assert np.all(np.isfinite(x)), space.kind
                if space.bounded:
                    assert np.all(x >= space.lower) and np.all(x <= space.upper), space.kind

    def test_determinism(self, baseline_factory):
        for cls, config, space in self._cases(baseline_factory):
            first = step(start(cls, config, space, 1000, seed=3), self.steps)
            again = step(start(cls, config, space, 1000, seed=3), self.steps)
            other = step(start(cls, config, space, 1000, seed=4), self.steps)
            assert _same_asks(first, again), f"{space.kind}: same seed gave different asks"
            assert not _same_asks(first, other), f"{space.kind}: different seeds gave the same asks"

    def test_state_dict_round_trip(self, baseline_factory):
        for cls, config, space in self._cases(baseline_factory):
            b = start(cls, config, space, 1000, seed=5)
            step(b, self.steps)
            state = pickle.loads(pickle.dumps(b.state_dict()))  # what a checkpoint on disk holds
            b2 = cls(dict(config)).setup(space, 1000, seed=5)
            b2.load_state_dict(state)
            assert b2.n_told == b.n_told
            assert _same_asks(step(b, self.steps), step(b2, self.steps)), f"{space.kind}: resumed run differs"
            assert np.array_equal(b.recommend(), b2.recommend())

    # ---- budget and call order ------------------------------------------------------------------------
    def test_budget_respected_exactly(self, baseline_factory):
        for cls, config, space in self._cases(baseline_factory):
            for budget in (1, self.budget):
                b = start(cls, config, space, budget, seed=1)
                run_to_budget(b)
                assert b.n_told == budget and b.remaining == 0, (space.kind, budget, b.n_told)
                rec = b.recommend()
                assert rec is not None and rec.shape == (space.dim,) and np.all(np.isfinite(rec))
                if space.bounded:
                    assert np.all(rec >= space.lower) and np.all(rec <= space.upper)

    def test_call_order_errors(self, baseline_factory):
        for cls, config, space in self._cases(baseline_factory):
            b = start(cls, config, space, 1000, seed=2)
            x0 = space.initial(np.random.default_rng(0))
            with pytest.raises(CallOrderError):
                b.tell(x0, toy_evaluation(x0))
            x = b.ask()
            with pytest.raises(CallOrderError):
                b.ask()
            assert not x.flags.writeable, f"{space.kind}: asked genomes must be read-only"
            with pytest.raises(ValueError, match="read-only"):
                x[0, 0] = 1.0
            changed = x.copy()
            changed[0, 0] += 1.0
            with pytest.raises(CallOrderError):
                b.tell(changed, toy_evaluation(changed))
            b.tell(x, toy_evaluation(x))  # still usable after the refused calls
            assert b.n_told == x.shape[0]
            x = b.ask()
            b.tell(x[:1], toy_evaluation(x[:1]))  # a prefix, as the runner tells at the end of a budget
            assert b.n_told == x.shape[0] + 1

    def test_failed_candidates(self, baseline_factory):
        for cls, config, space in self._cases(baseline_factory):
            b = start(cls, config, space, 200, seed=6)
            told: list = []
            step(b, 6, fail=_fail_best_and_odd, told=told)
            ok = {r.tobytes() for r in space.initial(np.random.default_rng(6))}
            failed = set()
            for x, ev in told:
                ok.update(r.tobytes() for r in x[ev.ok])
                failed.update(r.tobytes() for r in x[~ev.ok])
            assert failed, space.kind
            rec = b.recommend()
            assert rec is not None and np.all(np.isfinite(rec)), space.kind
            assert rec.tobytes() not in failed - ok, f"{space.kind}: a failed candidate was recommended"
            if b.remaining > 0:
                assert np.all(np.isfinite(b.ask())), f"{space.kind}: non-finite ask after failures"

    def test_unsupported_space(self, baseline_factory):
        cls, config = _resolve(baseline_factory)
        for kind in [k for k in KINDS if k not in cls.spaces] + ["not-a-kind"]:
            with pytest.raises(SpaceError):
                cls(dict(config)).setup(toy_space(kind) if kind in KINDS else ToySpace(kind, 8), 10, 0)
