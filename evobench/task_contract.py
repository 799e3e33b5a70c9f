"""The task contract suite, as a pytest mixin any task can run on itself.

Usage (in a task author's test file)::

    import pytest
    from evobench.contract import TaskContract

    class TestMyTask(TaskContract):
        limit = None  # or a small n: the checks score only the first n examples of a split

        @pytest.fixture
        def task_factory(self):
            return my_factory, {"size": 200}  # (factory, options), or the factory alone

        @pytest.fixture
        def changed_task_factory(self):  # optional: the same task over changed data
            return my_factory, {"data_seed": 1}

A factory is what a task entry registers: ``f(**options) -> Problem``. The checks score a model built
by the pool's family from its first starting state (the first source model, or a draw of the
sampler with ``numpy.random.default_rng(0)``). Failing models are scored through
:func:`evobench.runner.score_candidate`, exactly as the runner scores a candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from evobench.problem import Problem
from evobench.runner import score_candidate
from evobench.spaces.base import MergeSpace
from evobench.task import SEARCH, TEST, Task, TaskResult

SPLITS = (SEARCH, TEST)


def resolve_factory(spec) -> tuple[Callable[..., Problem], dict[str, Any]]:
    """``(factory, options)`` from a fixture value: the pair itself, or a factory without options."""
    if callable(spec):
        return spec, {}
    factory, options = spec
    return factory, dict(options or {})


def build_problem(spec) -> Problem:
    """Call the factory of a fixture value with its options."""
    factory, options = resolve_factory(spec)
    return factory(**options)


def first_state(problem: Problem):
    """The pool's first starting state (first source, or a sampler draw with seed 0)."""
    return problem.pool.starting_states(np.random.default_rng(0))[0]


def pool_model(problem: Problem) -> Any:
    """A runnable model built by the pool's family from :func:`first_state`."""
    return problem.pool.family.build(first_state(problem))


class FixedModelSpace(MergeSpace):
    """A one-gene space whose every genome builds the given model (to score a chosen model)."""

    kind = "fixed"

    def __init__(self, model: Any) -> None:
        super().__init__(1, np.zeros(1), np.ones(1))
        self.model = model

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        return {}

    def build(self, x: np.ndarray) -> Any:
        return self.model


def _out_of_memory(what: str) -> BaseException:
    import torch

    return torch.OutOfMemoryError(f"model too large for the device ({what})")


class OutOfMemoryModel:
    """A stand-in model whose every attribute access and call raises ``torch.OutOfMemoryError``."""

    def __getattribute__(self, name: str) -> Any:
        raise _out_of_memory(f"attribute {name!r}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise _out_of_memory("call")

    def __getitem__(self, key: Any) -> Any:
        raise _out_of_memory("item")

    def __iter__(self) -> Any:
        raise _out_of_memory("iteration")

    def __len__(self) -> int:
        raise _out_of_memory("len")

    def __bool__(self) -> bool:
        raise _out_of_memory("truth value")

    def __repr__(self) -> str:
        return "<OutOfMemoryModel>"


class _LimitedTask(Task):
    """``task`` scoring only the first ``limit`` examples (what ``score_candidate`` sees)."""

    def __init__(self, task: Task, limit: int) -> None:
        self.task, self.limit = task, limit
        self.name, self.primary_metric = task.name, task.primary_metric

    def split_sizes(self) -> dict[str, int]:
        return self.task.split_sizes()

    def evaluate(self, model: Any, split: str, limit: int | None = None) -> TaskResult:
        return self.task.evaluate(model, split, self.limit if limit is None else min(limit, self.limit))


def _nan_state(state):
    import torch

    return {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}


class TaskContract:
    """Mixin: subclass it in a test module and override ``task_factory`` (and ``changed_task_factory``)."""

    limit: int | None = None  # score only the first `limit` examples of a split (None: whole splits)
    limit_checks = (1, 5)  # the `limit=n` values test_limit tries

    @pytest.fixture
    def task_factory(self):
        """Override: return ``(factory, options)`` or the factory alone."""
        raise NotImplementedError("override the task_factory fixture to return (factory, options)")

    @pytest.fixture
    def changed_task_factory(self):
        """Override (optional): the same task over changed data, as ``(factory, options)`` or a factory."""
        return None

    def _expected(self, size: int) -> int:
        return size if self.limit is None else min(self.limit, size)

    def _scored(self, problem: Problem, model: Any = None) -> dict[str, TaskResult]:
        model = pool_model(problem) if model is None else model
        return {s: problem.task.evaluate(model, s, self.limit) for s in SPLITS}

    def _scoring_task(self, task: Task) -> Task:
        return task if self.limit is None else _LimitedTask(task, self.limit)

    # ---- declaration ---------------------------------------------------------------------------------
    def test_problem_and_task(self, task_factory):
        problem = build_problem(task_factory)
        assert isinstance(problem, Problem), f"the factory returned {type(problem).__name__}, not a Problem"
        task = problem.task
        assert isinstance(task, Task), f"problem.task is a {type(task).__name__}, not an evobench Task"
        assert isinstance(task.name, str) and task.name, "a task needs a non-empty name"
        assert isinstance(task.primary_metric, str) and task.primary_metric, \
            f"task {task.name!r} needs a non-empty primary_metric"

    def test_split_sizes(self, task_factory):
        problem = build_problem(task_factory)
        sizes = problem.task.split_sizes()
        for s in SPLITS:
            assert s in sizes, f"split_sizes() has no {s!r} split: {sorted(sizes)}"
            assert isinstance(sizes[s], int | np.integer) and sizes[s] > 0, f"split {s!r} has size {sizes[s]!r}"
        for s, r in self._scored(problem).items():
            n = self._expected(int(sizes[s]))
            assert len(r.scores) == n, f"split {s!r}: {len(r.scores)} scores for {n} examples"

    # ---- scores --------------------------------------------------------------------------------------
    def test_scores_and_primary(self, task_factory):
        problem = build_problem(task_factory)
        task, sizes = problem.task, problem.task.split_sizes()
        for s, r in self._scored(problem).items():
            scores = np.asarray(r.scores)
            assert scores.ndim == 1 and scores.dtype.kind == "f", f"split {s!r}: scores {scores.dtype} {scores.shape}"
            assert scores.size == self._expected(int(sizes[s])), f"split {s!r}: {scores.size} scores"
            assert np.all(np.isfinite(scores)), f"split {s!r}: non-finite per-example scores"
            assert np.isfinite(r.primary), f"split {s!r}: primary {r.primary!r} is not finite"
            agg = task.aggregate(scores)
            assert r.primary == pytest.approx(agg, rel=1e-9, abs=1e-12), \
                f"split {s!r}: primary {r.primary!r} is not the task's aggregate of its scores ({agg!r})"
            assert task.primary_metric in r.metrics, f"metrics {sorted(r.metrics)} lack {task.primary_metric!r}"
            assert r.metrics[task.primary_metric] == pytest.approx(r.primary, rel=1e-12, abs=0.0), \
                f"metrics[{task.primary_metric!r}] = {r.metrics[task.primary_metric]!r} but primary = {r.primary!r}"

    def test_deterministic(self, task_factory):
        problem = build_problem(task_factory)
        model = pool_model(problem)
        first, again = self._scored(problem, model), self._scored(problem, model)
        rebuilt = self._scored(problem, problem.pool.family.build(first_state(problem)))
        for s in SPLITS:
            assert np.array_equal(first[s].scores, again[s].scores), f"split {s!r}: same model, different scores"
            assert np.array_equal(first[s].scores, rebuilt[s].scores), \
                f"split {s!r}: a model rebuilt from the same state scores differently"
            assert first[s].primary == again[s].primary

    def test_limit(self, task_factory):
        problem = build_problem(task_factory)
        task, model, sizes = problem.task, pool_model(problem), problem.task.split_sizes()
        for s, ref in self._scored(problem, model).items():
            for n in self.limit_checks:
                if n > len(ref.scores):
                    continue
                r = task.evaluate(model, s, limit=n)
                assert len(r.scores) == n, f"split {s!r}, limit={n}: {len(r.scores)} scores"
                assert np.array_equal(r.scores, ref.scores[:n]), f"split {s!r}, limit={n}: not the first {n} examples"
                if isinstance(r.predictions, np.ndarray) and isinstance(ref.predictions, np.ndarray):
                    assert np.array_equal(r.predictions, ref.predictions[:n]), \
                        f"split {s!r}, limit={n}: predictions are not those of the first {n} examples"
            if self.limit is None:
                over = int(sizes[s]) + 7
                r = task.evaluate(model, s, limit=over)
                assert len(r.scores) == sizes[s], f"split {s!r}, limit={over}: {len(r.scores)} scores"

    # ---- data ----------------------------------------------------------------------------------------
    def test_splits_disjoint(self, task_factory):
        task = build_problem(task_factory).task
        try:
            ids = {s: task.example_ids(s) for s in SPLITS}
        except NotImplementedError:
            pytest.skip(f"task {task.name!r} does not implement example_ids(split): "
                        "cannot check that the search and test splits are disjoint")
        sizes = task.split_sizes()
        for s in SPLITS:
            assert len(ids[s]) == sizes[s], f"split {s!r}: {len(ids[s])} example ids for {sizes[s]} examples"
            assert all(isinstance(i, str) and i for i in ids[s]), f"split {s!r}: example ids must be non-empty strings"
        shared = set(ids[SEARCH]) & set(ids[TEST])
        assert not shared, f"{len(shared)} test example(s) also in the search split, e.g. {sorted(shared)[0]}"

    def test_descriptors(self, task_factory):
        problem = build_problem(task_factory)
        task = problem.task
        names, bounds = tuple(task.descriptor_names), tuple(task.descriptor_bounds)
        assert len(bounds) == len(names), f"{len(names)} descriptor names but {len(bounds)} bounds"
        assert all(lo < hi for lo, hi in bounds), f"descriptor bounds {bounds} must have lower < upper"
        for s, r in self._scored(problem).items():
            if not names:
                assert r.descriptors is None, f"split {s!r}: descriptors returned but no descriptor_names declared"
                continue
            d = np.asarray(r.descriptors, dtype=float)
            assert d.shape == (len(names),), f"split {s!r}: descriptors of shape {d.shape} for {names}"
            lo, hi = np.array(bounds, dtype=float).T
            assert np.all(np.isfinite(d)), f"split {s!r}: non-finite descriptors {d}"
            assert np.all(d >= lo) and np.all(d <= hi), f"split {s!r}: descriptors {d} outside {bounds}"

    def test_data_hash_stable(self, task_factory):
        first, again = build_problem(task_factory).task.data_hash(), build_problem(task_factory).task.data_hash()
        assert isinstance(first, str) and first, "data_hash() must be a non-empty string"
        assert first == again, f"data_hash() differs between two factory calls: {first!r} vs {again!r}"

    def test_data_hash_changes_with_data(self, task_factory, changed_task_factory):
        if changed_task_factory is None:
            pytest.skip("no changed_task_factory fixture: override it to return the task over changed data")
        h, changed = build_problem(task_factory).task.data_hash(), build_problem(changed_task_factory).task.data_hash()
        assert isinstance(changed, str) and changed, "data_hash() must be a non-empty string"
        assert changed != h, f"data_hash() is {h!r} for both the task and the task over changed data"

    # ---- failing models ------------------------------------------------------------------------------
    def test_out_of_memory_model_fails_the_candidate(self, task_factory):
        task = build_problem(task_factory).task
        r = score_candidate(FixedModelSpace(OutOfMemoryModel()), self._scoring_task(task), np.zeros(1))
        assert isinstance(r, str), f"a model that is out of memory scored {r.primary!r} instead of failing"
        assert "OutOfMemoryError" in r and "\n" not in r, f"failure message {r!r} does not name OutOfMemoryError"

    def test_non_finite_model_fails_the_candidate(self, task_factory):
        problem = build_problem(task_factory)
        model = problem.pool.family.build(_nan_state(first_state(problem)))
        r = score_candidate(FixedModelSpace(model), self._scoring_task(problem.task), np.zeros(1))
        assert isinstance(r, str), f"a model with NaN weights scored {r.primary!r} instead of failing"
        assert r.strip() and "\n" not in r, f"failure message {r!r} must be one non-empty line"
