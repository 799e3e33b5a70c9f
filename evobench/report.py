"""Result tables and the results JSON of a comparison."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from evobench.jsonio import is_finite_number


def _fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def report_stats(comp, task: str) -> dict[str, dict[str, dict[str, float]]]:
    """Per report task of ``task`` and baseline: the test score's mean and 95 % CI half width over
    seeds (Student t, as the test column) and the number of seeds."""
    from evobench.stats import mean_ci

    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, per_baseline in comp.report_scores(task).items():
        out[name] = {}
        for base, per_seed in per_baseline.items():
            mean, ci = mean_ci(list(per_seed.values()))
            out[name][base] = {"mean": mean, "ci95": ci, "seeds": len(per_seed)}
    return out


def task_rows(comp, task: str) -> list[dict[str, Any]]:
    """One row per baseline on ``task``: test mean ± CI, p vs best, search fitness, budget, time, and
    (when the comparison has report tasks) each report task's test mean ± CI under ``report``."""
    rows = []
    reports = report_stats(comp, task)
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
        if reports:
            rows[-1]["report"] = {name: per.get(row.baseline, {"mean": math.nan, "ci95": math.nan, "seeds": 0})
                                  for name, per in reports.items()}
    return rows


def _report_lines(comp, task: str, rows: list[dict[str, Any]]) -> list[str]:
    """The report tasks' section of ``task``'s table: baselines (mean ± CI), then the sources."""
    names = list(comp.report_scores(task))
    sources = getattr(comp, "sources", {}).get(task, [])
    for s in sources:
        names += [n for n in s.get("report", {}) if n not in names]
    if not names:
        return []
    width = max(18, *(len(n) + 2 for n in names))
    lines = [f"\n{task}: report tasks, test score (mean ± 95% CI over seeds)",
             f"{'baseline':<30}" + "".join(f"{n:>{width}}" for n in names)]
    lines.append("-" * len(lines[-1]))
    for r in rows:
        cells = []
        for n in names:
            e = r.get("report", {}).get(n)
            ok = e is not None and is_finite_number(e["mean"])
            cells.append(f"{100 * e['mean']:.2f} ± {100 * e['ci95']:.2f}" if ok else "—")
        lines.append(f"{r['baseline']:<30}" + "".join(f"{c:>{width}}" for c in cells))
    for s in sources:
        cells = []
        for n in names:
            score = s.get("report", {}).get(n, {}).get("score")
            cells.append(f"{100 * score:.2f}" if is_finite_number(score) else "—")
        lines.append(f"{'(source) ' + s['source']:<30}" + "".join(f"{c:>{width}}" for c in cells))
    return lines


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
        for base in dict.fromkeys(r.baseline for r in comp.results if r.task == task):
            runs = [r for r in comp.results if r.task == task and r.baseline == base]
            n_failed = sum(r.failed for r in runs)
            msgs = list(dict.fromkeys(m for r in runs for m in r.errors))
            if n_failed and msgs:
                more = f" (+{len(msgs) - 1} other message{'s' if len(msgs) > 2 else ''})" if len(msgs) > 1 else ""
                lines.append(f"  {base}: {n_failed} failed: {msgs[0]}{more}")
        scored = {r["baseline"] for r in rows}
        for base in dict.fromkeys(r.baseline for r in comp.results if r.task == task and r.baseline not in scored):
            failed = sum(r.failed for r in comp.results if r.task == task and r.baseline == base)
            lines.append(f"{base:<22}no test score: no candidate succeeded ({failed} failed)")
        for s in getattr(comp, "sources", {}).get(task, []):
            test = f"{100 * s['test_score']:.2f}" if is_finite_number(s.get("test_score")) else "—"
            search = f"{100 * s['search_score']:.2f}" if is_finite_number(s.get("search_score")) else "—"
            lines.append(f"{'(source) ' + s['source']:<30}{test:>18}{'':>11}{search:>13}")
        lines += _report_lines(comp, task, rows)
    for task, base, why in comp.skipped:
        lines.append(f"skipped {base} on {task}: {why}")
    lines.append(f"\ntotal wall time {comp.wall_time:.1f} s; * = best mean; scores in %")
    return "\n".join(lines) + "\n"


def results_json(comp) -> dict[str, Any]:
    """The comparison as strict JSON data: config, environment, tables, every run's summary."""
    from evobench.jsonio import nan_to_none

    return nan_to_none({
        "config": comp.config.model_dump(mode="json"),
        "environment": comp.environment,
        "wall_time_s": comp.wall_time,
        "tables": {t: task_rows(comp, t) for t in comp.tables},
        "runs": [r.summary() for r in comp.results],
        "skipped": [{"task": t, "baseline": b, "reason": w} for t, b, w in comp.skipped],
        "sources": comp.sources,
    })


def _read_part(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    """(results-or-config data, run summaries, folder) of one results folder or results.json."""
    from evobench.config import ConfigError
    from evobench.jsonio import loads

    if path.is_dir() and not (path / "results.json").exists():
        # an incomplete comparison: its config and the runs that finished
        files = sorted((path / "runs").glob("[!.]*/run.json"))  # not a half-written .run-XXXX
        if not (path / "config.json").exists() or not files:
            raise ConfigError(f"{str(path)!r} holds neither results.json nor finished runs of a comparison")
        try:
            data = loads((path / "config.json").read_text(encoding="utf-8"))
            runs = [loads(f.read_text(encoding="utf-8")) for f in files]
            data["sources"] = _read_sources(path)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{str(path)!r}: unreadable record ({type(e).__name__}: {e})") from None
        return data, runs, path
    f = path / "results.json" if path.is_dir() else path
    try:
        data = loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{str(f)!r} is not an evobench results file ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or "config" not in data:
        raise ConfigError(f"{str(f)!r} is not an evobench results file (no 'config' and 'runs')")
    return data, data["runs"], f.parent


def _read_sources(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The scored sources of a results folder (``sources/<task>/<i>-<name>/source.json``), per task in
    the order they were scored."""
    from evobench.jsonio import loads

    out: dict[str, list[dict[str, Any]]] = {}
    files = sorted((path / "sources").glob("*/*/source.json"),
                   key=lambda f: (f.parent.parent.name, int(f.parent.name.split("-", 1)[0])))
    for f in files:
        row = loads(f.read_text(encoding="utf-8"))
        task = row.pop("task")
        out.setdefault(task, []).append(row)
    return out


def _same_protocol(first, cfg, where: str) -> None:
    """Refuse to merge comparisons run under different budgets, task options or space options."""
    from evobench.config import ConfigError

    if cfg.budget != first.budget:
        raise ConfigError(f"{where}: budget {cfg.budget} differs from {first.budget} of the first part; "
                          "comparisons at different budgets cannot be merged")
    if cfg.spaces != first.spaces:
        raise ConfigError(f"{where}: space options {cfg.spaces} differ from {first.spaces} of the first part")
    for key, what in (("tasks", "task"), ("report_tasks", "report task")):
        opts = {t.name: t.options for t in getattr(first, key)}
        for t in getattr(cfg, key):
            if t.name in opts and opts[t.name] != t.options:
                raise ConfigError(f"{where}: {what} {t.name!r} options {t.options} differ from {opts[t.name]} "
                                  "of the first part")


def load_comparison(paths) -> Any:
    """Merge finished comparisons (result folders, their ``results.json``, or ``.incomplete`` folders'
    finished runs), e.g. the parts of one preset run in parallel processes, and recompute the
    statistics over all their runs.

    Refused (one-line :class:`~evobench.config.ConfigError`): a malformed record; parts with another
    budget, other task or space options; a (task, baseline, seed) run twice; baselines of one task
    whose seed sets differ (a paired test needs the same seeds). Different package versions or code
    revisions are allowed and listed in ``Comparison.warnings``.
    """
    from pydantic import ValidationError

    from evobench.compare import Comparison
    from evobench.config import ConfigError, RunConfig
    from evobench.rundir import load_array
    from evobench.runner import RunResult
    from evobench.stats import compare_to_best

    comp, seen, envs = None, set(), {}
    for p in paths:
        data, runs, folder = _read_part(Path(p))
        where = str(p)
        problem = _part_problem(data, runs)
        if problem:
            raise ConfigError(f"{where}: not a valid results file ({problem})")
        try:
            cfg = RunConfig.model_validate(data["config"])
        except (ValidationError, KeyError, TypeError) as e:
            raise ConfigError(f"{where}: its config is not valid ({' '.join(str(e).split())[:200]})") from None
        if comp is None:
            comp = Comparison(cfg, environment=data.get("environment") or {})
        else:
            _same_protocol(comp.config, cfg, where)
        envs[where] = data.get("environment") or {}
        for i, r in enumerate(runs):
            try:
                key = (r["task"], r["baseline"], r["seed"])
                rec = folder / r["record"] if r.get("record") else None
                run = RunResult.from_summary(
                    r, load_array(rec, "fitness") if rec else None, load_array(rec, "test_scores") if rec else None)
            except (KeyError, TypeError, ValueError, OSError) as e:
                raise ConfigError(f"{where}: run {i} is not a valid run record ({type(e).__name__}: {e})") from None
            if key in seen:
                raise ConfigError(f"{where}: run {key} appears in more than one results file")
            seen.add(key)
            comp.results.append(run)
        comp.skipped += [(s["task"], s["baseline"], s["reason"]) for s in data.get("skipped", [])]
        for task, rows in (data.get("sources") or {}).items():
            comp.sources.setdefault(task, [_source_row(row) for row in rows])
        comp.wall_time += float(data.get("wall_time_s") or 0.0)
    if comp is None:
        raise ConfigError("report: give at least one results folder")
    _check_seeds(comp)
    comp.warnings += _version_warnings(envs)
    tasks = dict.fromkeys(r.task for r in comp.results)
    comp.tables = {t: compare_to_best(comp.scores(t)) for t in tasks if comp.scores(t)}
    return comp


def _part_problem(data: dict[str, Any], runs: Any) -> str | None:
    """What makes a results file's top level unusable (None when its parts have the right types)."""
    def number_or_none(v: Any) -> bool:
        return v is None or isinstance(v, int | float) and not isinstance(v, bool)

    if not isinstance(data.get("config"), dict):
        return "'config' is not a mapping"
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        return "'runs' is not a list of run records"
    if not isinstance(data.get("environment") or {}, dict):
        return "'environment' is not a mapping"
    if not number_or_none(data.get("wall_time_s")):
        return "'wall_time_s' is not a number"
    skipped = data.get("skipped") or []
    if not isinstance(skipped, list) or not all(
            isinstance(x, dict) and all(isinstance(x.get(k), str) for k in ("task", "baseline", "reason")) for x in skipped):
        return "'skipped' is not a list of {task, baseline, reason}"
    sources = data.get("sources") or {}
    if not isinstance(sources, dict) or not all(
            isinstance(rows, list) and all(isinstance(r, dict) and isinstance(r.get("source"), str)
                                           and all(number_or_none(v) for k, v in r.items() if k.endswith("_score"))
                                           and isinstance(r.get("report") or {}, dict)
                                           for r in rows) for rows in sources.values()):
        return "'sources' is not a mapping of task to source rows"
    return None


def _source_row(row: dict[str, Any]) -> dict[str, Any]:
    """A source's row read back from JSON (null scores are NaN)."""
    from evobench.jsonio import none_to_nan
    from evobench.runner import report_entry_from

    out = {k: (none_to_nan(v) if k.endswith("_score") else v) for k, v in row.items()}
    if "report" in out:
        out["report"] = {t: report_entry_from(e) for t, e in out["report"].items()}
    return out


def _check_seeds(comp) -> None:
    from evobench.config import ConfigError

    for task in dict.fromkeys(r.task for r in comp.results):
        seeds: dict[str, set[int]] = {}
        for r in comp.results:
            if r.task == task:
                seeds.setdefault(r.baseline, set()).add(r.seed)
        sets = {b: tuple(sorted(s)) for b, s in seeds.items()}
        if len(set(sets.values())) > 1:
            (b1, s1), (b2, s2) = next((x, y) for x in sets.items() for y in sets.items() if x[1] != y[1])
            raise ConfigError(f"task {task!r}: baseline {b1!r} ran seeds {list(s1)} but {b2!r} ran {list(s2)}; "
                              "merged parts must give every baseline the same seeds")


def _version_warnings(envs: dict[str, dict]) -> list[str]:
    out, first = [], None
    for where, env in envs.items():
        versions = {**(env.get("versions") or {}), "git": env.get("git_sha", "")}
        if first is None:
            first = (where, versions)
            continue
        diff = sorted(k for k in set(versions) | set(first[1]) if versions.get(k) != first[1].get(k))
        if diff:
            out.append(f"{where} ran other versions than {first[0]}: " + ", ".join(
                f"{k} {first[1].get(k) or '?'} vs {versions.get(k) or '?'}" for k in diff))
    return out
