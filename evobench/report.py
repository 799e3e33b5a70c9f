"""Result tables and the results JSON of a comparison."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def task_rows(comp, task: str) -> list[dict[str, Any]]:
    """One row per baseline on ``task``: test mean ± CI, p vs best, search fitness, budget, time."""
    rows = []
    for row in comp.tables.get(task, []):
        runs = [r for r in comp.results if r.task == task and r.baseline == row.baseline]
        rows.append({
            "baseline": row.baseline, "space": runs[0].space, "test_mean": row.mean, "test_ci95": row.ci,
            "seeds": row.n, "best": row.is_best, "p_vs_best": row.p_vs_best, "p_holm": row.p_holm,
            "wilcoxon_p_vs_best": row.wilcoxon_p,
            "search_mean": float(np.mean([r.best_search for r in runs])),
            "evaluations": int(np.mean([r.evaluations for r in runs])),
            "failed": int(sum(r.failed for r in runs)),
            "wall_s_per_seed": float(np.mean([r.wall_time for r in runs])),
        })
    return rows


def format_table(comp) -> str:
    lines = []
    for task in dict.fromkeys(r.task for r in comp.results):
        lines.append(f"\n{task}: test score (mean ± 95% CI over seeds), paired t-test vs best (Holm)")
        head = f"{'baseline':<22}{'space':<8}{'test':>18}{'p vs best':>11}{'search best':>13}{'evals':>8}" \
               f"{'failed':>8}{'wall s/seed':>13}"
        lines += [head, "-" * len(head)]
        rows = task_rows(comp, task)
        for r in rows:
            name = r["baseline"] + (" *" if r["best"] else "")
            test = f"{100 * r['test_mean']:.2f} ± {100 * r['test_ci95']:.2f}"
            lines.append(f"{name:<22}{r['space']:<8}{test:>18}{_fmt_p(r['p_holm']):>11}"
                         f"{100 * r['search_mean']:>13.2f}{r['evaluations']:>8}{r['failed']:>8}"
                         f"{r['wall_s_per_seed']:>13.1f}")
        scored = {r["baseline"] for r in rows}
        for base in dict.fromkeys(r.baseline for r in comp.results if r.task == task and r.baseline not in scored):
            failed = sum(r.failed for r in comp.results if r.task == task and r.baseline == base)
            lines.append(f"{base:<22}no test score: no candidate succeeded ({failed} failed)")
    for task, base, why in comp.skipped:
        lines.append(f"skipped {base} on {task}: {why}")
    lines.append(f"\ntotal wall time {comp.wall_time:.1f} s; * = best mean; scores in %")
    return "\n".join(lines) + "\n"


def results_json(comp) -> dict[str, Any]:
    return {
        "config": comp.config.model_dump(mode="json"),
        "wall_time_s": comp.wall_time,
        "tables": {t: task_rows(comp, t) for t in comp.tables},
        "runs": [r.summary() for r in comp.results],
        "skipped": [{"task": t, "baseline": b, "reason": w} for t, b, w in comp.skipped],
    }


def load_comparison(paths) -> Any:
    """Merge finished comparisons (result folders or their ``results.json``), e.g. the parts of one
    preset run in parallel processes, and recompute the statistics over all their runs."""
    import json
    from pathlib import Path

    from evobench.compare import Comparison
    from evobench.config import ConfigError, RunConfig
    from evobench.runner import RunResult
    from evobench.stats import compare_to_best

    comp, seen = None, set()
    for p in paths:
        f = Path(p) / "results.json" if Path(p).is_dir() else Path(p)
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
            runs = data["runs"]
            cfg = RunConfig.model_validate(data["config"])
        except (OSError, ValueError, KeyError) as e:
            raise ConfigError(f"{str(f)!r} is not an evobench results file ({type(e).__name__}: {e})") from None
        comp = comp or Comparison(cfg)
        for r in runs:
            key = (r["task"], r["baseline"], r["seed"])
            if key in seen:
                raise ConfigError(f"{str(f)!r}: run {key} appears in more than one results file")
            seen.add(key)
            comp.results.append(RunResult(**r))
        comp.skipped += [(s["task"], s["baseline"], s["reason"]) for s in data.get("skipped", [])]
        comp.wall_time += float(data.get("wall_time_s", 0.0))
    if comp is None:
        raise ConfigError("report: give at least one results folder")
    tasks = dict.fromkeys(r.task for r in comp.results)
    comp.tables = {t: compare_to_best(comp.scores(t)) for t in tasks if comp.scores(t)}
    return comp
