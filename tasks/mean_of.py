"""mean-of: search on several tasks at once; fitness = a declared weighted mean of their scores.

The M2N2 paper scores each merge of a math LM and an agent LM on GSM8K and WebShop together; here
``tasks: [{name: mean-of, options: {tasks: [mgsm-ja, webshop], weights: [1, 1], models: [...]}}]``
searches on both and reports both.

- ``tasks``: two or more registered tasks, each a name or ``{name, options, label}`` (``label``
  tells apart two uses of one task; labels are distinct). ``weights``: one non-negative number per
  task (default: all 1), not all 0.
- Models: a sub-task that loads models by name (the language-model tasks) gets mean-of's
  ``models``, ``base``, ``device`` and ``dtype`` (its own options cannot set them); one that brings
  its own models gets ``device`` only. Every sub-task must score the same models: the model families
  must be compatible and the pools must hold the same source and base tensors. The first sub-task's
  pool (and baseline defaults) are the problem's; the others' copies of the models are dropped.
- Per-example scores: the sub-tasks' per-example scores interleaved round-robin (example 0 of each
  task, then example 1 of each, ...; a task with none left drops out), so ``limit=n`` spreads over the
  tasks and every example keeps one position per split. Records name their ``task`` (the label).
- Primary metric ``mean`` = the weighted mean, over the tasks with scored examples, of each task's own
  aggregate of its scores (its primary metric); ``metrics`` also hold each task's primary under its
  label and its other metrics as ``<label>.<metric>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from evobench.problem import Problem, factory_accepts
from evobench.registry import TASKS, RegistryError
from evobench.task import SEARCH, TEST, Task, TaskResult
from evobench.tasks.jp_lmeh.suite import layout
from evobench.tasks.lm_common import check_split, head, rows_hash, sha256

MODEL_OPTIONS = ("models", "base", "device", "dtype")


class MeanTask(Task):
    name = "mean-of"
    primary_metric = "mean"

    def __init__(self, tasks: list[Task], labels: list[str], weights: list[float]) -> None:
        self.tasks, self.labels, self.weights = tasks, labels, weights
        self.metrics = ("mean", *labels)

    def split_sizes(self) -> dict[str, int]:
        return {s: sum(t.split_sizes()[s] for t in self.tasks) for s in (SEARCH, TEST)}

    def _sizes(self, split: str) -> list[int]:
        return [t.split_sizes()[split] for t in self.tasks]

    def _per_task(self, scores: np.ndarray, split: str) -> dict[int, float]:
        groups: list[list[float]] = [[] for _ in self.tasks]
        for (t, _), value in zip(layout(self._sizes(split), len(scores)), scores, strict=True):
            groups[t].append(value)
        return {i: self.tasks[i].aggregate(np.asarray(g, dtype=float)) for i, g in enumerate(groups) if g}

    def _mean(self, per_task: dict[int, float]) -> float:
        total = sum(self.weights[i] for i in per_task)
        if not per_task or total == 0:
            return float("nan")
        return float(sum(self.weights[i] * v for i, v in per_task.items()) / total)

    def aggregate(self, scores: np.ndarray) -> float:
        scores = np.asarray(scores, dtype=float)
        sizes = self.split_sizes()
        split = next((s for s in (TEST, SEARCH) if sizes[s] == scores.size), None)
        split = split or (TEST if scores.size <= sizes[TEST] else SEARCH)
        return self._mean(self._per_task(scores, split))

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        check_split(self.name, split, [SEARCH, TEST])
        positions = layout(self._sizes(split), len(head(range(self.split_sizes()[split]), limit)))
        counts = [sum(1 for t, _ in positions if t == i) for i in range(len(self.tasks))]
        results = [task.evaluate(model, split, c) if c else None for task, c in zip(self.tasks, counts, strict=True)]
        scores = np.array([results[t].scores[d] for t, d in positions], dtype=float)
        records = [self._record(self.labels[t], results[t], d) for t, d in positions]
        per_task = self._per_task(scores, split)
        value = self._mean(per_task)
        metrics: dict[str, float] = {"mean": value}
        for i, r in enumerate(results):
            if r is None:
                continue
            metrics[self.labels[i]] = per_task[i]
            metrics.update({f"{self.labels[i]}.{k}": v for k, v in r.metrics.items()})
        return TaskResult(scores=scores, metrics=metrics, primary=value, predictions=records,
                          targets=[rec.get("target") for rec in records],
                          n_forward=sum(r.n_forward for r in results if r is not None))

    @staticmethod
    def _record(label: str, result: TaskResult, i: int) -> dict[str, Any]:
        pred = result.predictions[i] if result.predictions is not None else None
        if isinstance(pred, dict):
            return {"task": label, **pred}
        target = result.targets[i] if result.targets is not None else None
        return {"task": label, "prediction": _plain(pred), "target": _plain(target)}

    def example_ids(self, split: str) -> list[str]:
        """Each sub-task's example ids (hashed with its label), in the round-robin order."""
        ids = [[sha256(label, i) for i in t.example_ids(split)] for t, label in zip(self.tasks, self.labels,
                                                                                   strict=True)]
        return [ids[t][d] for t, d in layout(self._sizes(split))]

    def data_hash(self) -> str:
        return rows_hash(self.labels, self.weights, [t.data_hash() for t in self.tasks])


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _specs(tasks: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """``(name, label, options)`` per sub-task, checked."""
    if isinstance(tasks, str) or not isinstance(tasks, list | tuple) or len(tasks) < 2:
        raise ValueError(f"mean-of: tasks must be a list of two or more tasks, got {tasks!r}")
    out = []
    for item in tasks:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) \
                or set(item) - {"name", "options", "label"}:
            raise ValueError(f"mean-of: each task is a name or {{name, options, label}}, got {item!r}")
        options = item.get("options") or {}
        if not isinstance(options, Mapping):
            raise ValueError(f"mean-of: options of task {item['name']!r} must be a mapping, got {options!r}")
        label = item.get("label", item["name"])
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"mean-of: label of task {item['name']!r} must be a non-empty string, got {label!r}")
        out.append((item["name"], label, dict(options)))
    labels = [label for _, label, _ in out]
    twice = next((x for x in labels if labels.count(x) > 1), None)
    if twice is not None:
        raise ValueError(f"mean-of: task {twice!r} is listed twice; give one of them a distinct label")
    return out


def _weights(weights: Any, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    ok = isinstance(weights, list | tuple) and len(weights) == n and all(
        not isinstance(w, bool) and isinstance(w, int | float) and math.isfinite(w) and w >= 0 for w in weights)
    if not ok or sum(weights) == 0:
        raise ValueError(f"mean-of: weights must be {n} non-negative numbers, not all 0, got {weights!r}")
    return [float(w) for w in weights]


def _build(name: str, label: str, options: dict[str, Any], shared: dict[str, Any]) -> tuple[Problem, bool]:
    """A sub-task's problem, and whether it loaded its models by name."""
    try:
        factory = TASKS.get(name)
    except RegistryError as e:
        raise ValueError(f"mean-of: {' '.join(str(e).split())}") from None
    if name == "mean-of":
        raise ValueError("mean-of: a task of mean-of cannot be mean-of itself")
    fixed = [k for k in MODEL_OPTIONS if k in options]
    if fixed:
        raise ValueError(f"mean-of: task {label!r}: option {fixed[0]!r} is mean-of's (it is the same for every task)")
    by_name = factory_accepts(factory, "models")
    if by_name:
        if shared["models"] is None:
            raise ValueError(f"mean-of: task {label!r} loads models by name; give mean-of the option 'models'")
        options.update({k: v for k, v in shared.items() if factory_accepts(factory, k)})
    elif factory_accepts(factory, "device"):
        options["device"] = shared["device"]
    try:
        return factory(**options), by_name
    except TypeError as e:
        raise ValueError(f"mean-of: task {label!r}: {' '.join(str(e).split())}") from None


def mean_of(tasks, weights=None, models=None, base: str | None = None, device: str = "cpu",
            dtype: str = "float32") -> Problem:
    """Several tasks at once: fitness = a declared weighted mean of their scores (same models for all).

    ``tasks``: names or ``{name, options, label}``; ``weights``: one per task (default equal);
    ``models``/``base``/``device``/``dtype``: given to every task that loads models by name.
    """
    from evobench.report_tasks import _model_difference

    specs = _specs(tasks)
    w = _weights(weights, len(specs))
    shared = {"models": models, "base": base, "device": device, "dtype": dtype}
    built = [_build(name, label, options, shared) for name, label, options in specs]
    first, first_by_name = built[0]
    labels = [label for _, label, _ in specs]
    for (problem, by_name), label in zip(built[1:], labels[1:], strict=True):
        try:
            first.pool.family.check_compatible(problem.pool.family, (labels[0], label))
        except ValueError as e:
            raise ValueError(f"mean-of: task {label!r} cannot score the models of task {labels[0]!r}: "
                             f"{' '.join(str(e).split())}") from None
        if not (by_name and first_by_name):
            why = _model_difference(first.pool, problem.pool)
            if why:
                raise ValueError(f"mean-of: task {label!r} scores other models than task {labels[0]!r} ({why}); "
                                 "every task must score the same models")
    task = MeanTask([p.task for p, _ in built], labels, w)
    what = " + ".join(f"{x:g}·{label}" for x, label in zip(w, labels, strict=True))
    return Problem("mean-of", task, first.pool, baseline_defaults=dict(first.baseline_defaults),
                   description=f"{first.description.split(' on ')[0]} on the mean {what}")
