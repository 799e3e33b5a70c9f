"""Head-to-head comparison: every baseline on every task, same budget, same seeds, same split.

Plans all (task, baseline) pairs first (an explicitly requested baseline that cannot search a task is
an error before anything runs; with ``baselines: all`` such pairs are skipped and listed), runs each
pair on each seed, logs to the tracker (a parent run per comparison, a nested run per (baseline,
task, seed)), and computes per task the mean ± 95 % CI of the test score over seeds with a paired
t-test of the best baseline against each other (Holm-adjusted). Report tasks
(:mod:`evobench.report_tasks`) score each run's recommended model and the sources on their test
splits, beside the task's own. Each finished run is saved as soon as it finishes, with per-example
records of its recommended model; the folder becomes ``<out>/<name>-<UTC time>/`` with
``results.json`` only when the comparison completed, and ``<name>-<UTC time>.incomplete`` (finished runs only) otherwise, so an
interrupted run never leaves results that look complete (:mod:`evobench.rundir`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evobench.answer_table import task_answers
from evobench.config import BaselineSpec, ConfigError, RunConfig, call_factory
from evobench.evalcache import EvalCache
from evobench.evalcache import scope as cache_scope
from evobench.image_grid import GRID_SCALE, task_images
from evobench.journal import RunJournal
from evobench.jsonio import is_finite_number, nan_to_none, write_json, write_text
from evobench.problem import Problem
from evobench.records import records_jsonl
from evobench.registry import BASELINES, TASKS
from evobench.report_tasks import ReportTask, plan_report_tasks, search_options
from evobench.rundir import RunDir, records_file
from evobench.runner import RunResult, baseline_config, report_entry, run_one, score_model
from evobench.spaces.base import SpaceError
from evobench.stats import Row, compare_to_best, thin_curve
from evobench.tracking import Tracker

CURVE_POINTS = 500  # best-so-far curve points logged per run (thinned; change points kept)
GRID_COLUMNS = 8  # test examples shown in a task's image grid
ANSWER_ROWS = 8  # test examples shown in a task's answer table


@dataclass
class Pair:
    problem: Problem
    spec: BaselineSpec
    space: str
    reports: list[ReportTask] = field(default_factory=list)  # scored on the recommended model
    task_options: dict[str, Any] = field(default_factory=dict)  # the task's options in the config


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
    # per task that offers images: "columns" (the first test examples' captions) and "rows" ((label,
    # images) of the sources and of each baseline's recommended model of the first seed); see
    # evobench.image_grid
    images: dict[str, dict[str, list]] = field(default_factory=dict)
    # per task that offers answers: (label, answers of the first ANSWER_ROWS test examples) of the
    # sources and of each baseline's recommended model of the first seed; see evobench.answer_table
    answers: dict[str, list[tuple[str, list[dict[str, Any]]]]] = field(default_factory=dict)

    def scores(self, task: str) -> dict[str, dict[int, float]]:
        """Test scores by baseline and seed; runs without one (every candidate failed) are left out
        of the statistics (the table still counts their failures)."""
        out: dict[str, dict[int, float]] = {}
        for r in self.results:
            if r.task == task and math.isfinite(r.test_score):
                out.setdefault(r.baseline, {})[r.seed] = r.test_score
        return out

    def report_scores(self, task: str) -> dict[str, dict[str, dict[int, float]]]:
        """Per report task of ``task``: its test scores by baseline and seed (missing scores left out)."""
        out: dict[str, dict[str, dict[int, float]]] = {}
        for r in self.results:
            if r.task != task:
                continue
            for name, entry in r.report.items():
                per_baseline = out.setdefault(name, {})
                if math.isfinite(entry["score"]):
                    per_baseline.setdefault(r.baseline, {})[r.seed] = entry["score"]
        return out


def _problem(t, device: str = "auto") -> Problem:
    """Call the task's factory; a factory with a ``device`` parameter gets the run's device unless the
    task's options name one."""
    opts = f" with options {t.options}" if t.options else ""
    return call_factory(TASKS.get(t.name), search_options(t, device), f"task {t.name!r}", opts)


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
    task options (the factory is called), report tasks (:func:`evobench.report_tasks.plan_report_tasks`),
    space options (each (task, space) is built once), and what each baseline needs from a task
    (``Baseline.needs``: descriptors, a sampler, ...). A pair
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
    pairs, skipped, problems = [], [], {}
    for t in cfg.tasks:
        problem = _problem(t, cfg.device)
        if problem.name in problems:
            raise ConfigError(f"tasks: {problem.name!r} is listed twice")
        problems[problem.name] = (t, problem)
    reports = {name: plan_report_tasks(cfg.report_tasks, t, problem, cfg.device, list(problems))
               for name, (t, problem) in problems.items()}
    for t, problem in problems.values():
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
            pairs.append(Pair(problem, s, kind, reports[problem.name], dict(t.options or {})))
    if not pairs:
        raise ConfigError("nothing to run: no baseline can search any of the tasks")
    return pairs, skipped


def saved_config(folder: str | Path) -> RunConfig:
    """The configuration a comparison folder was started with (``config.json``); ConfigError if none."""
    from pydantic import ValidationError

    from evobench.jsonio import loads

    f = Path(folder).expanduser() / "config.json"
    try:
        return RunConfig.model_validate(loads(f.read_text(encoding="utf-8"))["config"])
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as e:
        raise ConfigError(f"resume: {str(f)!r} is not a comparison's config ({type(e).__name__}: "
                          f"{' '.join(str(e).split())[:200]})") from None


def config_difference(saved: RunConfig, given: RunConfig) -> str | None:
    """The first setting (dotted path) in which ``given`` differs from ``saved``, ignoring ``out``
    (where the folder lives), else None."""
    def walk(a: Any, b: Any, path: str) -> str | None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                hit = walk(a.get(k), b.get(k), f"{path}.{k}" if path else k)
                if hit:
                    return hit
            return None
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            return next((h for i, (x, y) in enumerate(zip(a, b, strict=True)) if (h := walk(x, y, f"{path}[{i}]"))), None)
        return None if a == b else f"{path} (saved {a!r}, given {b!r})"

    return walk({k: v for k, v in saved.model_dump(mode="json").items() if k != "out"},
                {k: v for k, v in given.model_dump(mode="json").items() if k != "out"}, "")


def run_comparison(cfg: RunConfig, tracker: Tracker | None = None, progress: bool = True,
                   write: bool = True, resume: str | Path | None = None,
                   cache: EvalCache | None = None, executor=None) -> Comparison:
    """Plan, then run every (task, baseline, seed); each finished run is saved at once (see
    :mod:`evobench.rundir`). Raises before anything runs when the plan or the output folder is bad.

    ``resume``: the folder of an interrupted comparison (``evobench run --resume``) to continue:
    ``cfg`` must be its saved configuration (ConfigError naming the first differing setting
    otherwise); its finished runs are kept, not run again, and the run in progress continues from
    its journal (:mod:`evobench.journal`), so the results equal an uninterrupted comparison's
    (wall times aside). ``cache``: the evaluation cache shared by every run (:mod:`evobench.evalcache`;
    None: every candidate is scored). ``executor``: where the runs run (:mod:`evobench.executors`;
    None: one after another in this process)."""
    from evobench.provenance import git_sha, package_versions, problem_provenance
    from evobench.spaces import make_space

    if resume is not None:
        if not write:
            raise ConfigError("resume: a resumed comparison writes to its folder (write=False given)")
        diff = config_difference(saved_config(resume), cfg)
        if diff:
            raise ConfigError(f"resume: {diff}; a resume continues the saved configuration (leave the "
                              "setting out, or start a new comparison)")
    if cfg.threads:  # before plan: task factories may train models (digits specialists), whose floats
        import torch  # depend on the thread count

        torch.set_num_threads(cfg.threads)
    pairs, skipped = plan(cfg)
    rundir = None
    if resume is not None:
        try:
            rundir = RunDir.reopen(resume)
        except ValueError as e:
            raise ConfigError(f"resume: {e}") from None
    elif write:
        try:
            rundir = RunDir(cfg.out, cfg.name)
        except OSError as e:
            raise ConfigError(f"out: cannot write results to {cfg.out!r} ({' '.join(str(e).split())})") from None
    tracker = tracker or Tracker()
    comp = Comparison(cfg, skipped=skipped)
    t0 = time.perf_counter()
    bar = _progress(len(pairs) * len(cfg.seeds) * cfg.budget, progress)
    comp.environment = {"git_sha": git_sha(), "versions": package_versions()}
    sha = comp.environment["git_sha"]
    done = _finished_runs(rundir) if resume is not None else {}
    saved_sources = _saved_sources(rundir) if resume is not None else {}
    status = "FAILED"
    try:
        if resume is None and rundir is not None:
            rundir.write_config({"config": cfg.model_dump(mode="json"), "environment": comp.environment})
        tracker.set_folder(None if rundir is None else rundir.path)
        ids = _tracking_ids(rundir) if resume is not None else None
        if ids is not None:
            previous = ids.get("elapsed_s") or 0.0
            t0 -= previous  # the comparison's wall time counts the time before the interruption
        if not (ids is not None and tracker.resume_comparison(ids)):
            tracker.start_comparison(cfg.name, params=cfg.model_dump(mode="json"), tags={"git_sha": sha, **{
                f"version.{k}": v for k, v in comp.environment["versions"].items()}})

        def note_tracking() -> None:
            if rundir is not None:
                _write_tracking_ids(rundir, tracker, time.perf_counter() - t0)

        note_tracking()
        provenance = {p.problem.name: problem_provenance(p.problem) for p in pairs}
        for pair in {p.problem.name: p for p in pairs}.values():
            save = None if rundir is None else (lambda i, row, texts, n=pair.problem.name:
                                                 rundir.add_source(n, i, row, texts))
            if pair.problem.name in saved_sources:
                comp.sources[pair.problem.name] = saved_sources[pair.problem.name]
            else:
                comp.sources[pair.problem.name] = score_sources(pair.problem, pair.reports, save)
            if task_images(pair.problem.task) is not None:
                comp.images[pair.problem.name] = {"columns": grid_columns(pair.problem.task),
                                                  "rows": source_images(pair.problem)}
            if task_answers(pair.problem.task) is not None:
                comp.answers[pair.problem.name] = source_answers(pair.problem)
        jobs = [(pair, seed) for pair in pairs for seed in cfg.seeds]
        slots: dict[int, RunResult] = {}  # by job index: comp.results keeps the plan's order
        todo, relog = [], []
        for j, (pair, seed) in enumerate(jobs):
            key = (pair.problem.name, pair.spec.display, seed)
            if key in done:  # finished before the interruption: kept as saved (and as logged)
                res = slots[j] = done.pop(key)
                if _run_name(pair, seed) == tracker.killed_on_resume:
                    relog.append(j)  # killed after it was saved, before its tracker run was ended
                if seed == cfg.seeds[0]:
                    _show_saved(comp, rundir, res, pair,
                                make_space(pair.space, pair.problem, seed, **cfg.spaces.get(pair.space, {})))
                bar.update(cfg.budget)
            else:
                todo.append(j)

        def shows(pair: Pair, seed: int) -> tuple[bool, bool]:
            first = seed == cfg.seeds[0]
            return first and pair.problem.name in comp.images, first and pair.problem.name in comp.answers

        def start(pair: Pair, seed: int, described: dict[str, Any]) -> None:
            cls = BASELINES.get(pair.spec.name)
            tracker.start_run(_run_name(pair, seed), params={
                "baseline": pair.spec.name, "baseline_config": _config_dump(cls, pair),
                "task": pair.problem.name, "space": described, "budget": cfg.budget, "seed": seed},
                tags={"git_sha": sha, "seed": str(seed), **provenance[pair.problem.name]})
            note_tracking()

        def finish(j: int, res: RunResult, shown: dict[str, Any]) -> None:
            pair, seed = jobs[j]
            if "images" in shown:
                comp.images[pair.problem.name]["rows"].append((pair.spec.display, shown["images"]))
            if "answers" in shown:
                add_answers(comp.answers[pair.problem.name], pair.spec.display, shown["answers"])
            if rundir is not None:
                _save_run(rundir, res, provenance[pair.problem.name], pair, cfg.export_best)
                if res.unsaved and cfg.export_best:
                    comp.warnings.append(f"{res.baseline} on {pair.problem.name}, seed {seed}: {res.unsaved}")
                rundir.drop_journal(pair.spec.display, pair.problem.name, seed)
            _log_run(tracker, res)
            res.drop_results()  # saved; memory must not grow with the number of runs
            slots[j] = res

        for j in relog:  # its saved record, logged again as a finished run (the killed one stays KILLED)
            pair, seed = jobs[j]
            start(pair, seed, make_space(pair.space, pair.problem, seed, **cfg.spaces.get(pair.space, {})).describe())
            _log_run(tracker, slots[j])
            tracker.end_run("FINISHED")
        where = None if rundir is None else rundir.path
        candidates = executor if getattr(executor, "candidate_level", False) else None
        if candidates is not None:
            bar.set_description(f"starting {candidates.describe()}")
            candidates.start(cfg, provenance)
        if executor is None or candidates is not None:
            for j in todo:
                pair, seed = jobs[j]
                bar.set_description(f"{pair.problem.name} · {pair.spec.display} · seed {seed}")
                space = make_space(pair.space, pair.problem, seed, **cfg.spaces.get(pair.space, {}))
                start(pair, seed, space.describe())
                run_status = "FAILED"
                try:
                    scorer = None if candidates is None else candidates.scorer(pairs.index(pair), seed)
                    res, shown = execute_job(cfg, pair, seed, where, cache, provenance[pair.problem.name],
                                             shows(pair, seed), on_step=bar.update, space=space, scorer=scorer)
                    finish(j, res, shown)
                    run_status = "FINISHED"
                except KeyboardInterrupt:
                    run_status = "KILLED"
                    raise
                finally:
                    tracker.end_run(run_status)
        else:
            bar.set_description(f"{len(todo)} runs on {executor.describe()}")
            described: dict[int, dict[str, Any]] = {}  # a space's description does not depend on the seed
            for j, res, shown in executor.run(cfg, [(j, pairs.index(jobs[j][0]), jobs[j][1], shows(*jobs[j]))
                                                    for j in todo], where, provenance):
                pair, seed = jobs[j]
                key = pairs.index(pair)
                if key not in described:
                    described[key] = make_space(pair.space, pair.problem, seed,
                                                **cfg.spaces.get(pair.space, {})).describe()
                start(pair, seed, described[key])  # logged when the run comes back
                run_status = "FAILED"
                try:
                    finish(j, res, shown)
                    run_status = "FINISHED"
                finally:
                    tracker.end_run(run_status)
                bar.update(cfg.budget)
        comp.results = [slots[j] for j in sorted(slots)]
        if done:  # runs saved in the folder that this configuration does not have: not ours
            raise ConfigError(f"resume: the folder holds runs the configuration does not plan: {sorted(done)[:3]}")
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
        if getattr(executor, "candidate_level", False):
            executor.close()
        if status != "FINISHED" and rundir is not None:
            comp.out_dir = rundir.abandon()
            tracker.set_folder(comp.out_dir)
        tracker.end_comparison(status)
    return comp


def _run_name(pair: Pair, seed: int) -> str:
    """The tracker's name of a run of the comparison."""
    return f"{pair.spec.display}/{pair.problem.name}/seed{seed}"


def _config_dump(cls, pair: Pair) -> dict[str, Any]:
    return cls.Config.model_validate(baseline_config(cls, pair.spec.config, pair.problem)).model_dump()


def execute_job(cfg: RunConfig, pair: Pair, seed: int, folder: Path | None, cache: EvalCache | None,
                provenance: dict[str, str], show: tuple[bool, bool] = (False, False),
                on_step=None, saving: bool | None = None, space=None, scorer=None) -> tuple[RunResult, dict[str, Any]]:
    """Run one (pair, seed) of a comparison where this is called (the driver, or a worker of an
    executor): its journal and work folder in the results folder ``folder`` (None: neither), the
    evaluation cache, and the first seed's shown images/answers (``show`` = (images, answers)).
    ``saving``: the run will be saved (keep its weights and, if configured, its search scores;
    default: when there is a folder). ``space``: the run's space when the caller already built it.
    ``scorer``: scores the asked batches elsewhere (:class:`evobench.executors.RayCandidateExecutor`).
    Returns the run and what it showed."""
    from evobench.spaces import make_space

    saving = folder is not None if saving is None else saving
    cls = BASELINES.get(pair.spec.name)
    config = _config_dump(cls, pair)
    if space is None:
        space = make_space(pair.space, pair.problem, seed, **cfg.spaces.get(pair.space, {}))
    journal = None
    if folder is not None:
        journal = RunJournal(RunDir.journal_path(folder, pair.spec.display, pair.problem.name, seed), {
            "task": pair.problem.name, "baseline": pair.spec.name, "label": pair.spec.display,
            "config": config, "space": pair.space, "space_options": cfg.spaces.get(pair.space, {}),
            "seed": seed, "budget": cfg.budget})
    session = None
    if cache is not None:
        session = cache.session(cache_scope(pair.problem, "search", pair.space, cfg.spaces.get(pair.space),
                                            pair.task_options, cfg.device, provenance))
    shown: dict[str, Any] = {}

    def on_model(model) -> None:  # the recommended model, as the runner built it for scoring
        if show[0]:
            shown["images"] = model_images(pair.problem, model)
        if show[1]:
            shown["answers"] = model_answers(pair.problem, model)

    res = run_one(pair.problem, cls(config), space, cfg.budget, seed, label=pair.spec.display, on_step=on_step,
                  keep_state=saving and cfg.save_best_model,
                  report={r.name: r.task for r in pair.reports},
                  keep_search_scores=saving and cfg.save_search_scores,
                  on_model=on_model if any(show) else None, work_root=folder, journal=journal, cache=session,
                  scorer=scorer)
    return res, shown


def _finished_runs(rundir: RunDir) -> dict[tuple[str, str, int], RunResult]:
    """The runs an interrupted comparison saved, by (task, label, seed), read back as run results."""
    from evobench.jsonio import loads
    from evobench.rundir import load_array

    out = {}
    for folder in rundir.finished_runs():
        try:
            data = loads((folder / "run.json").read_text(encoding="utf-8"))
            r = RunResult.from_summary(data, load_array(folder, "fitness"), load_array(folder, "test_scores"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"resume: {folder} is not a valid run record ({type(e).__name__}: {e})") from None
        out[(r.task, r.baseline, r.seed)] = r
    return out


def _saved_sources(rundir: RunDir) -> dict[str, list[dict[str, Any]]]:
    """Per task, the source rows an interrupted comparison saved (as :func:`score_sources` made them)."""
    from evobench.report import _read_sources, _source_row

    return {t: [_source_row(row) for row in rows] for t, rows in _read_sources(rundir.path).items()}


def _show_saved(comp: Comparison, rundir: RunDir, res: RunResult, pair: Pair, space) -> None:
    """A finished run's row in the image grid and answer table, from its saved model: the recipe
    genome (``best_genome.npy``) or, in the params space, its weights (``best_model.safetensors``)."""
    name = pair.problem.name
    if name not in comp.images and name not in comp.answers:
        return
    from evobench.rundir import load_array

    folder = rundir.path / res.record
    genome = load_array(folder, "best_genome")
    if genome is None and (folder / "best_model.safetensors").exists() and space.kind == "params":
        from safetensors.torch import load_file

        genome = space.starting_genomes([load_file(str(folder / "best_model.safetensors"))])[1][0]
    if genome is None:
        comp.warnings.append(f"{res.baseline} on {name}: its model was not saved, so it is missing from the "
                             "image grid / answer table of this resumed comparison")
        return
    model = space.build(genome)
    if name in comp.images:
        comp.images[name]["rows"].append((pair.spec.display, model_images(pair.problem, model)))
    if name in comp.answers:
        add_answers(comp.answers[name], pair.spec.display, model_answers(pair.problem, model))


RESUME_FILE = "resume.json"  # while a comparison runs: the tracker's run ids and the wall time so far


def _tracking_ids(rundir: RunDir) -> dict[str, Any] | None:
    from evobench.jsonio import loads

    f = rundir.path / RESUME_FILE
    try:
        return loads(f.read_text(encoding="utf-8")) if f.exists() else None
    except (OSError, ValueError):
        return None  # unreadable: the resumed comparison opens a new parent run


def _write_tracking_ids(rundir: RunDir, tracker: Tracker, elapsed: float) -> None:
    write_json(rundir.path / RESUME_FILE, {**(tracker.ids() or {}), "elapsed_s": elapsed})


def score_sources(problem: Problem, reports: list[ReportTask] | tuple = (), save=None) -> list[dict[str, Any]]:
    """The source models' own search and test scores, and test scores on each report task (free;
    shown beside the merges in the table). ``save(index, row, texts)``, when given, gets each source's
    row and its per-example test records (``records/<task>.jsonl``) as soon as it is scored.

    Scored like the starting models: a source that cannot be scored is a :class:`StartError`."""
    from evobench.errors import StartError
    from evobench.task import SEARCH, TEST

    out = []
    for i, (name, state) in enumerate(problem.pool.sources):
        row: dict[str, Any] = {"source": name}
        texts: dict[str, str] = {}
        for task_name, task, split in [(problem.name, problem.task, SEARCH), (problem.name, problem.task, TEST),
                                       *[(r.name, r.task, TEST) for r in reports]]:
            t0 = time.perf_counter()
            r = score_model(task, lambda s=state: problem.pool.family.build(s), split)
            if isinstance(r, str):
                on = "" if task is problem.task else f" on report task {task_name!r}"
                raise StartError(f"{problem.name}: source {name!r} cannot be scored{on} ({r})")
            if task is problem.task:
                row[f"{split}_score"] = float(r.primary)
            else:
                row.setdefault("report", {})[task_name] = report_entry(r, time.perf_counter() - t0)
            if split == TEST and save is not None:
                texts[records_file(task_name)] = records_jsonl(task, TEST, r)
        if save is not None:
            row["record"] = save(i, nan_to_none(row), texts)
        out.append(row)
    return out


def model_images(problem: Problem, model: Any) -> list[Any]:
    """``model``'s images of the first :data:`GRID_COLUMNS` test examples (the task's ``images`` hook)."""
    from evobench.task import TEST

    return list(task_images(problem.task)(model, TEST, limit=GRID_COLUMNS))


def grid_columns(task) -> list[str]:
    """Captions of the first :data:`GRID_COLUMNS` test examples: the task's ``image_captions(split,
    limit)`` when it has one, else their example ids."""
    from evobench.task import TEST

    captions = getattr(task, "image_captions", None)
    if callable(captions):
        return list(captions(TEST, limit=GRID_COLUMNS))
    return list(task.example_ids(TEST)[:GRID_COLUMNS])


def source_images(problem: Problem) -> list[tuple[str, list[Any]]]:
    """(name, images) of each source model of ``problem``, for the task's image grid."""
    return [(name, model_images(problem, problem.pool.family.build(state))) for name, state in problem.pool.sources]


def model_answers(problem: Problem, model: Any) -> list[dict[str, Any]]:
    """``model``'s answers to the first :data:`ANSWER_ROWS` test examples (the task's ``answers`` hook)."""
    from evobench.task import TEST

    return list(task_answers(problem.task)(model, TEST, limit=ANSWER_ROWS))


def add_answers(rows: list[tuple[str, list[dict[str, Any]]]], label: str, answers: list[dict[str, Any]]) -> None:
    """Append ``(label, answers)`` to a task's answer table, checked against its first row."""
    from evobench.answer_table import check_answers

    check_answers(label, answers, rows[0][1] if rows else None)
    rows.append((label, answers))


def source_answers(problem: Problem) -> list[tuple[str, list[dict[str, Any]]]]:
    """(name, answers) of each source model of ``problem``, for the task's answer table."""
    rows: list[tuple[str, list[dict[str, Any]]]] = []
    for name, state in problem.pool.sources:
        add_answers(rows, name, model_answers(problem, problem.pool.family.build(state)))
    return rows


def _write_grids(comp: Comparison, folder: Path) -> list[Path]:
    """``images/<task>.png`` and ``images/<task>.json`` (the legend) per task with images."""
    from evobench.image_grid import file_name, grid, legend, write_png

    out = []
    for task, entry in comp.images.items():
        rows = entry["rows"]
        if not rows:
            continue
        (folder / "images").mkdir(exist_ok=True)
        png = folder / "images" / f"{file_name(task)}.png"
        write_png(png, grid(rows, GRID_SCALE))
        write_json(png.with_suffix(".json"), {"task": task, **legend([r for r, _ in rows], entry["columns"],
                                                                      rows[0][1][0].size, GRID_SCALE)})
        out += [png, png.with_suffix(".json")]
    return out


def _save_run(rundir: RunDir, r: RunResult, provenance: dict[str, str], pair: Pair, export: bool = False) -> None:
    from evobench.task import TEST

    meta = {"task": r.task, "baseline": r.baseline, "seed": str(r.seed), "space": r.space,
            **{k: v for k, v in provenance.items() if k.startswith("model_")}}
    texts = {}
    if r.test_result is not None:
        texts[records_file(r.task)] = records_jsonl(pair.problem.task, TEST, r.test_result)
    for rt in pair.reports:
        if rt.name in r.report_results:
            texts[records_file(rt.name)] = records_jsonl(rt.task, TEST, r.report_results[rt.name])
    arrays = {"fitness": r.values, "test_scores": r.test_scores}
    if r.best_genome is not None:
        arrays["best_genome"] = r.best_genome
    if r.search_scores is not None:
        arrays["search_scores"] = r.search_scores
    writers = []
    if export and r.best_state is not None:
        from evobench.export import write_checkpoint

        writers.append(lambda folder: write_checkpoint(folder / "checkpoint", r.best_state, pair.problem.pool.family,
                                                       nan_to_none(r.recipe), provenance))
    r.record = rundir.add_run(r.baseline, r.task, r.seed, r.summary(), arrays, r.best_state, meta, texts, writers)


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
        **{f"cache_{k}": v for k, v in r.cache.items() if k in ("hits", "misses")},
        **{f"test_{k}": v for k, v in r.test_metrics.items()},
        **{f"report.{t}": e["score"] for t, e in r.report.items()},
        **{f"report.{t}.{k}": v for t, e in r.report.items() for k, v in e["metrics"].items()},
    }.items() if is_finite_number(v)}, step=r.evaluations)
    tracker.log_dict(nan_to_none(r.recipe), "best_recipe.json")
    if r.errors:
        tracker.log_dict({"failed": r.failed, "first_distinct_errors": r.errors}, "failures.json")


def _write(comp: Comparison, tracker: Tracker, rundir: RunDir) -> Path:
    from evobench.answer_table import write_tables
    from evobench.plotting import plot_curves
    from evobench.report import format_table, results_json

    curves: dict[str, dict[str, list]] = {}
    for r in comp.results:
        curves.setdefault(r.task, {}).setdefault(r.baseline, []).append(r.best_curve())
    plot_curves(curves, rundir.path / "curves.png", title=comp.config.name)
    grids = [p.relative_to(rundir.path) for p in _write_grids(comp, rundir.path)]
    tables = [p.relative_to(rundir.path) for p in write_tables(comp.answers, rundir.path)]
    write_text(rundir.path / "table.txt", format_table(comp))
    write_json(rundir.path / "results.json", results_json(comp))  # last: its presence marks completion
    (rundir.path / RESUME_FILE).unlink(missing_ok=True)  # complete: nothing to resume
    final = rundir.finish()
    tracker.set_folder(final)
    for f in ("curves.png", "results.json", "table.txt"):
        tracker.log_artifact(str(final / f))
    for rel in grids:
        tracker.log_artifact(str(final / rel), "images")
    for rel in tables:
        tracker.log_artifact(str(final / rel), str(rel.parent))
    return final


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="eval", disable=not enabled, dynamic_ncols=True, mininterval=0.5)
