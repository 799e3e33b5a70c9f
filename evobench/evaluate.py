"""``evobench eval``: score one model on tasks and keep every per-example record.

A model is named the way a task can take it:

* a ``.safetensors`` file (e.g. a run's ``best_model.safetensors``): a state dict of the task's own
  model family, built by that family (for tasks such as digits, whose factory brings its models), or
  of the same family with another number of blocks (a layer path written as a plain model);
* anything else (a hub id, a local model directory, a ``.gguf`` file, a diffusers pipeline folder):
  handed to task factories that take ``models=[...]`` (the language-model and image tasks), which load it.

Task options (e.g. ``data_dir``, ``max_new_tokens``) are given as ``--option KEY=VALUE`` (every task)
or ``--option TASK:KEY=VALUE`` (one task); see :func:`parse_options`.

Results go to ``<out>/eval-<name>-<UTC time>/``: ``results.json`` (per task: the primary metric,
every metric, examples scored, wall time, the task options) and ``records/<task>.jsonl`` (one line per example: index, example
id when the task gives one, score, prediction, target); the folder appears only when every task was
scored (the record format is :mod:`evobench.records`, shared with comparisons). The same numbers go
to the tracker as one run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from evobench.config import ConfigError
from evobench.errors import missing_package
from evobench.jsonio import nan_to_none, write_json, write_text
from evobench.problem import factory_accepts
from evobench.records import example_ids, jsonl, records
from evobench.registry import TASKS
from evobench.scoring.progress import progress
from evobench.task import SEARCH, TEST


def parse_options(items: list[str], tasks: list[str]) -> dict[str, dict[str, Any]]:
    """``--option`` values as task options per task: ``KEY=VALUE`` for every task, ``TASK:KEY=VALUE``
    for one; a value is read as YAML (``50`` an int, ``[a, b]`` a list, ``/data`` a string). Every
    task must take every key it is given (one-line :class:`ConfigError` otherwise)."""
    import yaml

    out: dict[str, dict[str, Any]] = {t: {} for t in tasks}
    for item in items:
        target, eq, text = item.partition("=")
        scope, colon, key = target.rpartition(":") if ":" in target else ("", "", target)
        key = key.strip()
        if not eq or not key.isidentifier():
            raise ConfigError(f"--option {item!r}: write KEY=VALUE or TASK:KEY=VALUE")
        if key in ("models", "device", "batch_size"):
            flag = {"models": "MODEL", "device": "--device", "batch_size": "--batch-size"}[key]
            raise ConfigError(f"--option {item!r}: give {key} with {flag}")
        if colon and scope not in out:
            raise ConfigError(f"--option {item!r}: task {scope!r} is not among --tasks ({', '.join(tasks)})")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"--option {item!r}: the value is not valid YAML") from None
        try:  # kept in results.json: plain JSON values only (no dates, no NaN)
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ConfigError(f"--option {item!r}: the value must be a plain number, string, list or mapping") from None
        for t in [scope] if colon else tasks:
            if key in out[t]:
                raise ConfigError(f"--option {item!r}: {key} is given twice for task {t!r}")
            if not factory_accepts(TASKS.get(t), key):
                raise ConfigError(f"--option {item!r}: task {t!r} takes no option {key!r}")
            out[t][key] = value
    return out


def load_model_for(task_name: str, model: str, device: str = "auto", batch_size: int | None = None,
                   options: dict[str, Any] | None = None):
    """The problem of ``task_name`` and the runnable model ``model`` names for it (``options``: more
    keyword arguments of the task factory, e.g. ``data_dir``)."""
    factory = TASKS.get(task_name)
    opts: dict[str, Any] = dict(options or {})
    if factory_accepts(factory, "device"):
        opts["device"] = device
    if batch_size is not None and factory_accepts(factory, "batch_size"):
        opts["batch_size"] = batch_size
    path = Path(model)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ConfigError(f"model {model!r}: no such file")
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            problem = factory(**opts)
        except ModuleNotFoundError as e:
            raise ConfigError(f"task {task_name!r} {missing_package(e)}") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(f"task {task_name!r}: {' '.join(str(e).split())}") from None
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise ConfigError(f"model {model!r} is not a readable safetensors file ({' '.join(str(e).split())}; "
                              "truncated or not safetensors?)") from None
        pool = problem.pool
        like = pool.sources[0][1] if pool.sources else pool.sampler(np.random.default_rng(0)) if pool.sampler else None
        try:
            family = pool.family.for_state(state)  # a layer path written as a plain model: its own depth
            family.check_state(state, f"model {model!r}", like=like, strict=True)
        except ValueError as e:
            if "NaN" in str(e):
                raise ConfigError(str(e)) from None
            raise ConfigError(f"{e} (it is not a {problem.pool.family.name!r} model of task {task_name!r})") from None
        return problem, family.build(state)
    if not factory_accepts(factory, "models"):
        raise ConfigError(f"task {task_name!r} brings its own models; give it a .safetensors state dict of its "
                          f"model family (e.g. a run's best_model.safetensors), not {model!r}")
    try:
        problem = factory(models=[model], **opts)
    except ModuleNotFoundError as e:
        raise ConfigError(f"task {task_name!r} {missing_package(e)}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"task {task_name!r} with model {model!r}: {' '.join(str(e).split())}") from None
    (_, state), = problem.pool.sources
    return problem, problem.pool.family.build(state)


def run_eval(model: str, tasks: list[str], out: str, split: str = TEST, limit: int | None = None,
             device: str = "auto", name: str | None = None, tracker=None, batch_size: int | None = None,
             options: dict[str, dict[str, Any]] | None = None, on_task: Callable[[str, dict], None] | None = None
             ) -> tuple[Path, dict[str, Any]]:
    """Score ``model`` on each task's ``split`` (first ``limit`` examples); returns the folder and results.
    ``options`` maps a task to more keyword arguments of its factory (see :func:`parse_options`);
    ``on_task(task, result)`` is called as each task is scored (e.g. to show it at once)."""
    from evobench.rundir import check_writable, claim

    if split not in (SEARCH, TEST):
        raise ConfigError(f"split must be {SEARCH!r} or {TEST!r}, got {split!r}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}")
    for t in tasks:
        if t not in TASKS:
            raise ConfigError(TASKS.unknown_message(t))
    options = options or {}
    try:
        root = check_writable(out)
    except OSError as e:
        raise ConfigError(f"out: cannot write results to {out!r} ({' '.join(str(e).split())})") from None
    label = name or Path(model).stem or "model"
    folder = root / f".eval-{label}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.partial"
    (folder / "records").mkdir(parents=True, exist_ok=False)
    results: dict[str, Any] = {"model": model, "split": split, "limit": limit, "tasks": {}}
    try:
        for t in tasks:
            problem, runnable = load_model_for(t, model, device, batch_size, options.get(t))
            t0 = time.perf_counter()
            with progress(t):  # a bar per batch of requests, for tasks scored by the LM engine
                r = problem.task.evaluate(runnable, split, limit)
            recs = records(r, example_ids(problem.task, split, len(r.scores)))
            write_text(folder / "records" / f"{t}.jsonl", jsonl(recs))
            results["tasks"][t] = nan_to_none({"primary_metric": problem.task.primary_metric, "score": r.primary,
                                               "metrics": dict(r.metrics), "examples": len(recs),
                                               "options": dict(options.get(t) or {}),
                                               "wall_time_s": time.perf_counter() - t0,
                                               "data_hash": problem.task.data_hash(),
                                               "task_version": str(problem.task.version)})
            if on_task is not None:
                on_task(t, results["tasks"][t])
        write_json(folder / "results.json", results)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-written
        raise
    final = claim(root, folder.name.removeprefix(".").removesuffix(".partial"))
    os.replace(folder, final)  # onto the empty claimed folder: atomic, never onto another's results
    if tracker is not None:
        tracker.start_comparison(f"eval/{label}", params={"model": model, "split": split, "limit": limit,
                                                          "tasks": tasks, "options": options})
        for t, res in results["tasks"].items():
            tracker.log_metrics({f"{t}.{k}": v for k, v in res["metrics"].items() if v is not None})
        tracker.log_artifact(str(final / "results.json"))
        tracker.end_comparison("FINISHED")
    return final, results
