"""Report tasks: extra tasks scored only on each run's recommended model and on the sources.

A comparison searches on its tasks' search splits and reports their test splits; ``report_tasks``
names further tasks (the paper searches on MGSM-JA and also reports JP-LMEH) whose test split scores
the same models, outside the budget. Each is checked at plan time, per search task:

* a factory that loads models by name (``models=[...]``: the language-model tasks) is called with
  the search task's model options (:data:`MODEL_OPTIONS` that it accepts, the run's ``device`` by
  default) plus the report task's own options, which cannot set those; a search task that brings its
  own models (its factory takes no ``models``) cannot lend them to such a report task;
* a factory that brings its own models (digits, ja-math-mini) must bring the very models of the
  search task: the same source tensors and base;
* either way the two model families must be compatible (:meth:`ModelFamily.check_compatible`: same
  family class and tensors; for language models also configs and tokenizers), since the report task
  scores the search task's models;
* a report task is neither another report task nor a search task of the comparison.

Only the report task's :class:`~evobench.task.Task` is kept (a language-model report problem's own
copy of the models is dropped after the checks); the search task's models are what it scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evobench.config import ConfigError, TaskSpec, call_factory
from evobench.models.base import ModelPool
from evobench.problem import Problem, factory_accepts
from evobench.registry import TASKS
from evobench.task import Task

MODEL_OPTIONS = ("models", "base", "device", "dtype")  # what a report task takes from its search task


@dataclass(frozen=True)
class ReportTask:
    name: str  # the report problem's name (results, records, table)
    task: Task


def search_options(spec: TaskSpec, device: str) -> dict[str, Any]:
    """The options a search task's factory is called with (the run's device unless it names one)."""
    options = dict(spec.options)
    if factory_accepts(TASKS.get(spec.name), "device"):
        options.setdefault("device", device)
    return options


def plan_report_tasks(specs: Sequence[TaskSpec], search_spec: TaskSpec, search: Problem, device: str,
                      search_names: Sequence[str] = ()) -> list[ReportTask]:
    """The report tasks of one search task, checked (one-line :class:`ConfigError` otherwise)."""
    out: list[ReportTask] = []
    for spec in specs:
        problem = _report_problem(spec, search_spec, search, device)
        where = f"report task {problem.name!r} of task {search.name!r}"
        if problem.name in search_names:
            raise ConfigError(f"{where}: {problem.name!r} is also a task of this comparison, whose test score "
                              "is already reported; drop it from report_tasks")
        if problem.name in [r.name for r in out]:
            raise ConfigError(f"{where}: two report tasks are both named {problem.name!r}")
        try:
            search.pool.family.check_compatible(problem.pool.family, (search.name, problem.name))
        except ValueError as e:
            raise ConfigError(f"{where} cannot score its models: {' '.join(str(e).split())}") from None
        if not factory_accepts(TASKS.get(spec.name), "models"):
            why = _model_difference(search.pool, problem.pool)
            if why:
                raise ConfigError(f"{where}: it brings its own models, which are not the models of "
                                  f"{search.name!r} ({why}); a report task scores the same models")
        out.append(ReportTask(problem.name, problem.task))
    return out


def _report_problem(spec: TaskSpec, search_spec: TaskSpec, search: Problem, device: str) -> Problem:
    factory = TASKS.get(spec.name)
    what = f"report task {spec.name!r}"
    fixed = [k for k in MODEL_OPTIONS if k in spec.options]
    if fixed:
        raise ConfigError(f"{what}: option {fixed[0]!r} cannot be set; a report task takes the models, base, "
                          f"device and dtype of the task it reports on")
    options = dict(spec.options)
    if factory_accepts(factory, "models"):
        if not factory_accepts(TASKS.get(search_spec.name), "models"):
            raise ConfigError(f"{what} loads models by name (option 'models'), but task {search.name!r} "
                              "brings its own models; it cannot score them")
        given = search_options(search_spec, device)
        options.update({k: given[k] for k in MODEL_OPTIONS if k in given and factory_accepts(factory, k)})
    elif factory_accepts(factory, "device"):
        options["device"] = search_options(search_spec, device).get("device", device)
    opts = f" with options {spec.options}" if spec.options else ""
    return call_factory(factory, options, what, f"{opts} (reporting on task {search.name!r})")


def _model_difference(a: ModelPool, b: ModelPool) -> str | None:
    """Why two pools do not hold the same models (None when they do: same source tensors and base)."""
    import torch

    def same(x, y) -> bool:
        return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)

    if len(a.sources) != len(b.sources):
        return f"{len(a.sources)} vs {len(b.sources)} source models"
    for (na, sa), (nb, sb) in zip(a.sources, b.sources, strict=True):
        if not same(sa, sb):
            return f"source {na!r} differs from {nb!r}"
    if (a.base is None) != (b.base is None) or (a.base is not None and not same(a.base, b.base)):
        return "the base models differ"
    return None
