"""Head-to-head comparison: every baseline on every task, same budget, same seeds, same split.

Plans all (task, baseline) pairs first (an explicitly requested baseline that cannot search a task is
an error before anything runs; with ``baselines: all`` such pairs are skipped and listed), runs each
pair on each seed, logs to the tracker (a parent run per comparison, a nested run per (baseline,
task, seed)), and computes per task the mean ± 95 % CI of the test score over seeds with a paired
t-test of the best baseline against each other (Holm-adjusted). Results are written to
``<out>/<name>-<UTC time>/`` only when the comparison completed (written to a temporary folder and
renamed), so an interrupted run never leaves results that look complete.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evobench.config import BaselineSpec, ConfigError, RunConfig
from evobench.problem import Problem
from evobench.registry import BASELINES, TASKS
from evobench.runner import RunResult, baseline_config, run_one
from evobench.spaces.base import json_default
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

    def scores(self, task: str) -> dict[str, dict[int, float]]:
        """Test scores by baseline and seed; runs without one (every candidate failed) are left out
        of the statistics (the table still counts their failures)."""
        out: dict[str, dict[int, float]] = {}
        for r in self.results:
            if r.task == task and math.isfinite(r.test_score):
                out.setdefault(r.baseline, {})[r.seed] = r.test_score
        return out


def plan(cfg: RunConfig) -> tuple[list[Pair], list[tuple[str, str, str]]]:
    """Resolve tasks and baselines; the space each pair searches; pairs skipped and why."""
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
        try:
            problem = TASKS.get(t.name)(**t.options)
        except TypeError as e:
            raise ConfigError(f"task {t.name!r}: bad options {t.options} ({e})") from None
        if problem.name in names:
            raise ConfigError(f"tasks: {problem.name!r} is listed twice")
        names.add(problem.name)
        for s in specs:
            cls = BASELINES.get(s.name)
            kind = problem.pick_space(cls.spaces)
            if kind is None:
                why = (f"baseline {s.name!r} searches {'/'.join(cls.spaces)} spaces; task {t.name!r} "
                       f"offers {'/'.join(problem.space_kinds()) or 'none'}")
                if explicit:
                    raise ConfigError(why)
                skipped.append((t.name, s.display, why))
                continue
            pairs.append(Pair(problem, s, kind))
    if not pairs:
        raise ConfigError("nothing to run: no baseline can search any of the tasks")
    return pairs, skipped


def run_comparison(cfg: RunConfig, tracker: Tracker | None = None, progress: bool = True,
                   write: bool = True) -> Comparison:
    from evobench.provenance import git_sha, package_versions, problem_provenance
    from evobench.spaces import make_space

    if cfg.threads:
        import torch
        torch.set_num_threads(cfg.threads)
    tracker = tracker or Tracker()
    pairs, skipped = plan(cfg)
    comp = Comparison(cfg, skipped=skipped)
    t0 = time.perf_counter()
    total = len(pairs) * len(cfg.seeds) * cfg.budget
    bar = _progress(total, progress)
    versions, sha = package_versions(), git_sha()
    tracker.start_comparison(cfg.name, params=cfg.model_dump(mode="json"),
                             tags={"git_sha": sha, **{
                                 f"version.{k}": v for k, v in versions.items()}})
    status = "FAILED"
    try:
        provenance = {p.problem.name: problem_provenance(p.problem) for p in pairs}
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
                                  on_step=bar.update)
                    _log_run(tracker, res)
                    run_status = "FINISHED"
                finally:
                    tracker.end_run(run_status)
                comp.results.append(res)
        tasks = dict.fromkeys(r.task for r in comp.results)
        comp.tables = {t: compare_to_best(comp.scores(t)) for t in tasks if comp.scores(t)}
        comp.wall_time = time.perf_counter() - t0
        if write:
            comp.out_dir = _write(comp, tracker)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        bar.close()
        tracker.end_comparison(status)
    return comp


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
        **{f"test_{k}": v for k, v in r.test_metrics.items()}}.items() if _finite(v)}, step=r.evaluations)
    tracker.log_dict(r.recipe, "best_recipe.json")


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _write(comp: Comparison, tracker: Tracker) -> Path:
    from evobench.plotting import plot_curves
    from evobench.report import format_table, results_json

    out_root = Path(comp.config.out)
    out_root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    final = out_root / f"{comp.config.name}-{stamp}"
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_root))
    try:
        curves: dict[str, dict[str, list]] = {}
        for r in comp.results:
            curves.setdefault(r.task, {}).setdefault(r.baseline, []).append(r.best_curve())
        plot_curves(curves, tmp / "curves.png", title=comp.config.name)
        (tmp / "results.json").write_text(json.dumps(results_json(comp), indent=2, default=json_default))
        (tmp / "table.txt").write_text(format_table(comp))
        tracker.log_artifact(str(tmp / "curves.png"))
        tracker.log_artifact(str(tmp / "results.json"))
        tracker.log_artifact(str(tmp / "table.txt"))
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="eval", disable=not enabled, dynamic_ncols=True, mininterval=0.5)
