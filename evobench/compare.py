"""Head-to-head comparison: every baseline on every task, same budget, same seeds, same split.

Plans all (task, baseline) pairs first (an explicitly requested baseline that cannot search a task is
an error before anything runs; with ``baselines: all`` such pairs are skipped and listed), runs each
pair on each seed, logs to the tracker (a parent run per comparison, a nested run per (baseline,
task, seed)), and computes per task the mean ± 95 % CI of the test score over seeds with a paired
t-test of the best baseline against each other (Holm-adjusted). Each finished run is saved as soon
as it finishes; the folder becomes ``<out>/<name>-<UTC time>/`` with ``results.json`` only when the
comparison completed, and ``<name>-<UTC time>.incomplete`` (finished runs only) otherwise, so an
interrupted run never leaves results that look complete (:mod:`evobench.rundir`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evobench.config import BaselineSpec, ConfigError, RunConfig
from evobench.errors import missing_package
from evobench.jsonio import is_finite_number, nan_to_none, write_json, write_text
from evobench.problem import Problem, factory_accepts
from evobench.registry import BASELINES, TASKS
from evobench.rundir import RunDir
from evobench.runner import RunResult, baseline_config, run_one, score_model
from evobench.spaces.base import SpaceError
from evobench.stats import Row, compare_to_best, thin_curve
from evobench.tracking import Tracker

CURVE_POINTS = 500  # best-so-far curve points logged per run (thinned; change points kept)


@dataclass
class Pair:
    problem: Problem
    spec: BaselineSpec
    space: str


@dataclass
class Comparison:
    config: RunConfig
    results: list[RunResult] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (task, baseline, reason)
    tables: dict[str, list[Row]] = field(default_factory=dict)
    out_dir: Path | None = None
    wall_time: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)  # git sha and package versions
    sources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per task: the sources' own scores
    warnings: list[str] = field(default_factory=list)  # e.g. merged parts ran different versions

    def scores(self, task: str) -> dict[str, dict[int, float]]:
        """Test scores by baseline and seed; runs without one (every candidate failed) are left out
        of the statistics (the table still counts their failures)."""
        out: dict[str, dict[int, float]] = {}
        for r in self.results:
            if r.task == task and math.isfinite(r.test_score):
                out.setdefault(r.baseline, {})[r.seed] = r.test_score
        return out


def _problem(t, device: str = "auto") -> Problem:
    """Call the task's factory; a factory with a ``device`` parameter gets the run's device unless the
    task's options name one."""
    factory = TASKS.get(t.name)
    options = dict(t.options)
    if factory_accepts(factory, "device"):
        options.setdefault("device", device)
    try:
        return factory(**options)
    except ModuleNotFoundError as e:
        raise ConfigError(f"task {t.name!r} {missing_package(e)}") from None
    except (TypeError, ValueError) as e:
        opts = f" with options {t.options}" if t.options else ""
        raise ConfigError(f"task {t.name!r}{opts}: {' '.join(str(e).split())}") from None


def _check_space(cfg: RunConfig, problem: Problem, kind: str) -> None:
    """Build the ``kind`` space of ``problem`` once with the configured options (one line if bad)."""
    from evobench.spaces import make_space

    opts = cfg.spaces.get(kind, {})
    try:
        make_space(kind, problem, cfg.seeds[0], **opts)
    except SpaceError as e:
        raise ConfigError(f"task {problem.name!r}: {e}") from None
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"spaces.{kind} {opts}: {' '.join(str(e).split())}") from None


def plan(cfg: RunConfig) -> tuple[list[Pair], list[tuple[str, str, str]]]:
    """Resolve tasks and baselines; the space each pair searches; pairs skipped and why.

    Everything that can be checked without running is checked here, before the first evaluation:
    task options (the factory is called), space options (each (task, space) is built once), and
    what each baseline needs from a task (``Baseline.needs``: descriptors, a sampler, ...). A pair
    the user named that cannot run is a :class:`ConfigError`; under ``baselines: all`` it is
    skipped and listed with the reason.
    """
    from evobench.spaces import check_space_options

    for kind, opts in cfg.spaces.items():
        check_space_options(kind, opts)
    explicit = cfg.baselines is not None
    specs = list(cfg.baselines) if explicit else [BaselineSpec(name=n) for n in BASELINES.names()]
    labels = [s.display for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError("baselines: two entries share a name; give one a distinct 'label'")
    pairs, skipped, names = [], [], set()
    for t in cfg.tasks:
        problem = _problem(t, cfg.device)
        if problem.name in names:
            raise ConfigError(f"tasks: {problem.name!r} is listed twice")
        names.add(problem.name)
        checked: set[str] = set()
        for s in specs:
            cls = BASELINES.get(s.name)
            kind, why = problem.choose_space(cls)
            if kind is None:
                why = f"baseline {s.name!r} cannot run on task {problem.name!r}: {why}"
                if explicit:
                    raise ConfigError(why)
                skipped.append((problem.name, s.display, why))
                continue
            if kind not in checked:
                _check_space(cfg, problem, kind)
                checked.add(kind)
            pairs.append(Pair(problem, s, kind))
    if not pairs:
        raise ConfigError("nothing to run: no baseline can search any of the tasks")
    return pairs, skipped


def run_comparison(cfg: RunConfig, tracker: Tracker | None = None, progress: bool = True,
                   write: bool = True) -> Comparison:
    """Plan, then run every (task, baseline, seed); each finished run is saved at once (see
    :mod:`evobench.rundir`). Raises before anything runs when the plan or the output folder is bad."""
    from evobench.provenance import git_sha, package_versions, problem_provenance
    from evobench.spaces import make_space

    pairs, skipped = plan(cfg)
    rundir = None
    if write:
        try:
            rundir = RunDir(cfg.out, cfg.name)
        except OSError as e:
            raise ConfigError(f"out: cannot write results to {cfg.out!r} ({' '.join(str(e).split())})") from None
    if cfg.threads:
        import torch
        torch.set_num_threads(cfg.threads)
    tracker = tracker or Tracker()
    comp = Comparison(cfg, skipped=skipped)
    t0 = time.perf_counter()
    bar = _progress(len(pairs) * len(cfg.seeds) * cfg.budget, progress)
    comp.environment = {"git_sha": git_sha(), "versions": package_versions()}
    sha = comp.environment["git_sha"]
    status = "FAILED"
    try:
        if rundir is not None:
            rundir.write_config({"config": cfg.model_dump(mode="json"), "environment": comp.environment})
        tracker.start_comparison(cfg.name, params=cfg.model_dump(mode="json"), tags={"git_sha": sha, **{
            f"version.{k}": v for k, v in comp.environment["versions"].items()}})
        provenance = {p.problem.name: problem_provenance(p.problem) for p in pairs}
        for problem in {p.problem.name: p.problem for p in pairs}.values():
            comp.sources[problem.name] = score_sources(problem)
        for pair in pairs:
            prov = provenance[pair.problem.name]
            cls = BASELINES.get(pair.spec.name)
            bcfg = baseline_config(cls, pair.spec.config, pair.problem)
            for seed in cfg.seeds:
                bar.set_description(f"{pair.problem.name} · {pair.spec.display} · seed {seed}")
                space = make_space(pair.space, pair.problem, seed, **cfg.spaces.get(pair.space, {}))
                run_name = f"{pair.spec.display}/{pair.problem.name}/seed{seed}"
                tracker.start_run(run_name, params={
                    "baseline": pair.spec.name, "baseline_config": cls.Config.model_validate(bcfg).model_dump(),
                    "task": pair.problem.name, "space": space.describe(), "budget": cfg.budget, "seed": seed},
                    tags={"git_sha": sha, "seed": str(seed), **prov})
                run_status = "FAILED"
                try:
                    res = run_one(pair.problem, cls(bcfg), space, cfg.budget, seed, label=pair.spec.display,
                                  on_step=bar.update, keep_state=rundir is not None and cfg.save_best_model,
                                  work_root=None if rundir is None else rundir.path)
                    if rundir is not None:
                        _save_run(rundir, res, prov)
                    _log_run(tracker, res)
                    run_status = "FINISHED"
                except KeyboardInterrupt:
                    run_status = "KILLED"
                    raise
                finally:
                    tracker.end_run(run_status)
                res.best_state = None  # saved; memory must not grow with the number of runs
                comp.results.append(res)
        tasks = dict.fromkeys(r.task for r in comp.results)
        comp.tables = {t: compare_to_best(comp.scores(t)) for t in tasks if comp.scores(t)}
        comp.wall_time = time.perf_counter() - t0
        if rundir is not None:
            comp.out_dir = _write(comp, tracker, rundir)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        bar.close()
        if status != "FINISHED" and rundir is not None:
            comp.out_dir = rundir.abandon()
        tracker.end_comparison(status)
    return comp


def score_sources(problem: Problem) -> list[dict[str, Any]]:
    """The source models' own search and test scores (free; shown beside the merges in the table).

    Scored like the starting models: a source that cannot be scored is a :class:`StartError`."""
    from evobench.errors import StartError
    from evobench.task import SEARCH, TEST

    out = []
    for name, state in problem.pool.sources:
        row: dict[str, Any] = {"source": name}
        for split in (SEARCH, TEST):
            r = score_model(problem.task, lambda s=state: problem.pool.family.build(s), split)
            if isinstance(r, str):
                raise StartError(f"{problem.name}: source {name!r} cannot be scored ({r})")
            row[f"{split}_score"] = float(r.primary)
        out.append(row)
    return out


def _save_run(rundir: RunDir, r: RunResult, provenance: dict[str, str]) -> None:
    meta = {"task": r.task, "baseline": r.baseline, "seed": str(r.seed), "space": r.space,
            **{k: v for k, v in provenance.items() if k.startswith("model_")}}
    r.record = rundir.add_run(r.baseline, r.task, r.seed, r.summary(),
                              {"fitness": r.values, "test_scores": r.test_scores}, r.best_state, meta)


def _log_run(tracker: Tracker, r: RunResult) -> None:
    steps, best = r.best_curve()
    s, v = thin_curve(steps, best, CURVE_POINTS)
    ok = np.isfinite(v)
    tracker.log_curve("best_search_fitness", s[ok], v[ok])
    cur_steps = np.arange(1, r.values.size + 1)
    cs, cv = thin_curve(cur_steps, r.values, CURVE_POINTS)
    ok = np.isfinite(cv)
    tracker.log_curve("search_fitness", cs[ok], cv[ok])
    tracker.log_metrics({k: v for k, v in {
        "test_score": r.test_score, "best_search_fitness_final": r.best_search,
        "recommended_search_fitness": r.recommended_search, "evaluations": r.evaluations,
        "failed_candidates": r.failed, "forward_examples": r.forward_examples, "wall_time_s": r.wall_time,
        **{f"test_{k}": v for k, v in r.test_metrics.items()}}.items() if is_finite_number(v)}, step=r.evaluations)
    tracker.log_dict(nan_to_none(r.recipe), "best_recipe.json")
    if r.errors:
        tracker.log_dict({"failed": r.failed, "first_distinct_errors": r.errors}, "failures.json")


def _write(comp: Comparison, tracker: Tracker, rundir: RunDir) -> Path:
    from evobench.plotting import plot_curves
    from evobench.report import format_table, results_json

    curves: dict[str, dict[str, list]] = {}
    for r in comp.results:
        curves.setdefault(r.task, {}).setdefault(r.baseline, []).append(r.best_curve())
    plot_curves(curves, rundir.path / "curves.png", title=comp.config.name)
    write_text(rundir.path / "table.txt", format_table(comp))
    write_json(rundir.path / "results.json", results_json(comp))  # last: its presence marks completion
    final = rundir.finish()
    for f in ("curves.png", "results.json", "table.txt"):
        tracker.log_artifact(str(final / f))
    return final


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="eval", disable=not enabled, dynamic_ncols=True, mininterval=0.5)
