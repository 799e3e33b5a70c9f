"""The runner owns the loop: ask, build, score, tell — within a budget counted in evaluations.

One evaluation = one candidate scored on the task's search split. The starting models are scored
too but not counted (as in the M2N2 reference). The runner also records examples pushed through
models (forward passes), failures and wall time, and at the end scores the baseline's recommended
genome on the held-out test split, which the search never sees, and on the test split of each report
task (outside the budget and the run's wall time; :mod:`evobench.report_tasks`). Each run gets a
scratch folder for its baseline (``Baseline.workdir``, e.g. M2N2's disk-backed archive), deleted when
the run ends.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from evobench.baseline import Baseline
from evobench.errors import FoldError, StartError, candidate_failures, describe
from evobench.evalcache import CacheSession
from evobench.evaluation import Evaluation
from evobench.journal import ResumeError, RunJournal, genes_checksum
from evobench.jsonio import nan_to_none, none_to_nan
from evobench.problem import Problem
from evobench.spaces.base import MergeSpace
from evobench.task import SEARCH, TEST, Task, TaskResult

MAX_ERRORS = 5  # distinct failure messages kept per run


@dataclass
class RunResult:
    task: str
    baseline: str  # display label
    baseline_name: str  # registry name
    seed: int
    space: str
    budget: int
    evaluations: int = 0
    failed: int = 0
    forward_examples: int = 0
    wall_time: float = 0.0
    best_search: float = float("nan")  # best search fitness ever evaluated
    recommended_search: float = float("nan")  # search fitness of the reported genome
    test_score: float = float("nan")  # primary metric of the reported genome on the test split
    test_metrics: dict[str, float] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))  # fitness per evaluation (NaN = failed)
    start_best: float = float("nan")  # best starting model (step 0 of the curve)
    test_result: TaskResult | None = None  # the recommended model on the test split (dropped once saved)
    # per report task: the recommended model's test "score" (primary), "metrics", "examples", "wall_time_s"
    report: dict[str, dict[str, Any]] = field(default_factory=dict)
    report_results: dict[str, TaskResult] = field(default_factory=dict)  # per report task (dropped once saved)
    search_scores: np.ndarray | None = None  # (evaluations, examples) when kept (dropped once saved)
    best_state: dict | None = None  # the recommended model's weights, when the space gives a state dict
    best_genome: np.ndarray | None = None  # the recommended genome, kept with best_state (recipe spaces)
    unsaved: str = ""  # why best_state is None although it was asked for (not saved in the summary)
    test_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per-example, test split
    record: str = ""  # the run's folder inside the results folder, once saved
    errors: list[str] = field(default_factory=list)  # the first MAX_ERRORS distinct failure messages
    cache: dict[str, Any] = field(default_factory=dict)  # evaluation-cache hits/misses (empty: no cache)

    def note_errors(self, messages) -> None:
        for m in messages:
            if m and len(self.errors) < MAX_ERRORS and m not in self.errors:
                self.errors.append(m)

    def best_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Best-so-far search fitness after each evaluation; step 0 is the best starting model."""
        v = np.concatenate([[self.start_best], self.values])
        v = np.where(np.isfinite(v), v, -np.inf)
        best = np.maximum.accumulate(v)
        best[~np.isfinite(best)] = np.nan
        return np.arange(v.size), best

    SUMMARY = ("task", "baseline", "baseline_name", "seed", "space", "budget", "evaluations", "failed",
               "forward_examples", "wall_time", "best_search", "recommended_search", "test_score", "start_best",
               "test_metrics", "recipe", "errors", "record", "report", "cache")

    def summary(self) -> dict[str, Any]:
        """The run as strict-JSON-ready data (missing scores are None); arrays are stored apart. A run
        without report tasks has no ``report`` key, one without the evaluation cache no ``cache``."""
        return nan_to_none({k: getattr(self, k) for k in self.SUMMARY
                            if (k != "report" or self.report) and (k != "cache" or self.cache)})

    def drop_results(self) -> None:
        """Forget the per-example results kept for saving (memory must not grow with the runs)."""
        self.test_result, self.report_results, self.search_scores, self.best_state = None, {}, None, None
        self.best_genome = None

    @classmethod
    def from_summary(cls, data: dict[str, Any], values: np.ndarray | None = None,
                     test_scores: np.ndarray | None = None) -> RunResult:
        """Rebuild a run from :meth:`summary` (and its arrays); unknown or missing keys are errors."""
        unknown = sorted(set(data) - set(cls.SUMMARY))
        missing = sorted({"task", "baseline", "baseline_name", "seed", "space", "budget"} - set(data))
        if unknown or missing:
            raise ValueError(f"run record has unknown keys {unknown} / lacks keys {missing}")
        for key, value in data.items():
            want = _SUMMARY_TYPES[key]
            if value is None and key in _NULLABLE:
                continue
            if isinstance(value, bool) and want is not bool or not isinstance(value, want):
                raise ValueError(f"run record: {key} is {type(value).__name__} {str(value)[:40]!r}, not "
                                 f"{' or '.join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))}")
        for key in ("seed", "budget", "evaluations", "failed", "forward_examples"):
            if key in data and data[key] < 0:
                raise ValueError(f"run record: {key} is negative ({data[key]})")
        if not all(isinstance(m, str) for m in data.get("errors") or []):
            raise ValueError("run record: errors must be a list of messages")
        for key in ("test_metrics", "cache"):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) or v is None or key == "cache"
                       for v in (data.get(key) or {}).values()):
                raise ValueError(f"run record: {key} must map names to numbers")
        floats = ("wall_time", "best_search", "recommended_search", "test_score", "start_best")
        kw = {k: (none_to_nan(v) if k in floats else v) for k, v in data.items()}
        kw["test_metrics"] = {k: none_to_nan(v) for k, v in (data.get("test_metrics") or {}).items()}
        kw["report"] = {t: report_entry_from(e) for t, e in (data.get("report") or {}).items()}
        r = cls(**kw)
        if values is not None:
            r.values = np.asarray(values, dtype=float)
        if test_scores is not None:
            r.test_scores = np.asarray(test_scores, dtype=float)
        return r


_NUMBER = (int, float)
_SUMMARY_TYPES: dict[str, Any] = {
    "task": str, "baseline": str, "baseline_name": str, "seed": int, "space": str, "budget": int,
    "evaluations": int, "failed": int, "forward_examples": int, "wall_time": _NUMBER, "best_search": _NUMBER,
    "recommended_search": _NUMBER, "test_score": _NUMBER, "start_best": _NUMBER, "test_metrics": dict,
    "recipe": dict, "errors": list, "record": str, "report": dict, "cache": dict}
_NULLABLE = {"wall_time", "best_search", "recommended_search", "test_score", "start_best"}


def report_entry(result: TaskResult, wall_time: float) -> dict[str, Any]:
    """What is kept of a model scored on a report task: primary score, metrics, examples, wall time."""
    return {"score": float(result.primary), "metrics": dict(result.metrics), "examples": int(len(result.scores)),
            "wall_time_s": float(wall_time)}


def report_entry_from(data: dict[str, Any]) -> dict[str, Any]:
    """:func:`report_entry` read back from JSON (null scores are NaN)."""
    if not isinstance(data, dict) or "score" not in data:
        raise ValueError(f"report entry {data!r} has no score")
    return {**data, "score": none_to_nan(data["score"]),
            "metrics": {k: none_to_nan(v) for k, v in (data.get("metrics") or {}).items()}}


def score_model(task: Task, build: Callable[[], Any], split: str = SEARCH) -> TaskResult | str:
    """Build a model with ``build()`` and score it on ``split``; a failure gives its one-line message.

    Only :func:`evobench.errors.candidate_failures` count as failures (a non-finite primary metric
    too); any other exception is a bug and propagates.
    """
    try:
        r = task.evaluate(build(), split)
    except candidate_failures() as e:
        return describe(e)
    if not math.isfinite(r.primary):
        return f"NonFiniteError: {task.name or 'task'} gave a non-finite {task.primary_metric or 'primary metric'}"
    return r


def score_candidate(space: MergeSpace, task: Task, x: np.ndarray, split: str = SEARCH) -> TaskResult | str:
    """Build one genome's model and score it (see :func:`score_model`)."""
    return score_model(task, lambda: space.build(x), split)


def _evaluation(results: list[TaskResult | str], task: Task) -> Evaluation:
    """What a baseline is told about scored candidates: values (NaN and the message for failures),
    per-example scores and normalised descriptors."""
    k = len(results)
    if k == 1 and not isinstance(results[0], str):  # one candidate a step (M2N2, GA, MAP-Elites)
        r = results[0]
        scores = r.scores.astype(float, copy=False).reshape(1, -1)  # a view of the result's scores:
        scores.flags.writeable = False  # read-only, as a cached result may share them
        desc = None if r.descriptors is None else np.asarray(r.descriptors, dtype=float).reshape(1, -1)
        return Evaluation(value=np.array([r.primary], dtype=float), scores=scores,
                          descriptors=normalise_descriptors(desc, task), errors=[None])
    value = np.full(k, np.nan)
    errors: list[str | None] = [None] * k
    scores = desc = None
    for i, r in enumerate(results):
        if isinstance(r, str):
            errors[i] = r
            continue
        if scores is None:
            scores = np.zeros((k, r.scores.shape[0]))
            if r.descriptors is not None:
                desc = np.full((k, r.descriptors.shape[0]), np.nan)
        value[i] = r.primary
        scores[i] = r.scores
        if desc is not None and r.descriptors is not None:
            desc[i] = r.descriptors
    return Evaluation(value=value, scores=scores, descriptors=normalise_descriptors(desc, task), errors=errors)


def evaluate_genomes(space: MergeSpace, task: Task, x: np.ndarray, split: str = SEARCH,
                     cache: CacheSession | None = None, scorer: Scorer | None = None) -> tuple[Evaluation, int]:
    """Build and score genomes one at a time (one merged model alive at once); failures are NaN
    entries whose message is in ``Evaluation.errors``. Returns the evaluation and examples scored.
    ``cache``: candidates it holds are not scored (no forward pass), scored ones are offered to it.
    ``scorer``: scores a batch of genomes elsewhere (e.g. on Ray actors that hold the run's models,
    :class:`evobench.executors.RayCandidateExecutor`), giving the same results in the batch's order."""
    if scorer is not None:
        results = _score_elsewhere(space, x, split, cache, scorer)
    elif cache is None or not cache.active:
        results = [score_candidate(space, task, x[i], split) for i in range(len(x))]
    else:
        results = []
        for i in range(len(x)):
            key = space.candidate_key(x[i])
            r = cache.get(key)
            if r is None:
                t = time.perf_counter()
                r = score_candidate(space, task, x[i], split)
                if not isinstance(r, str):
                    cache.put(key, r, time.perf_counter() - t)
            results.append(r)
    n_fwd = sum(r.n_forward for r in results if not isinstance(r, str))
    return _evaluation(results, task), n_fwd


def _score_elsewhere(space: MergeSpace, x: np.ndarray, split: str, cache: CacheSession | None,
                     scorer: Scorer) -> list[TaskResult | str]:
    """The batch scored by ``scorer`` at once; with a cache, only the candidates it lacks (each
    distinct genome once), offered to it with the batch's mean time per candidate."""
    if cache is None or not cache.active:
        return list(scorer(x, split))
    keys = [space.candidate_key(x[i]) for i in range(len(x))]
    found: dict[str, TaskResult | str] = {}
    for k in dict.fromkeys(keys):
        r = cache.get(k)
        if r is not None:
            found[k] = r
    missing = [k for k in dict.fromkeys(keys) if k not in found]
    if missing:
        rows = [keys.index(k) for k in missing]
        t = time.perf_counter()
        scored = list(scorer(x[rows], split))
        each = (time.perf_counter() - t) / len(rows)
        for k, r in zip(missing, scored, strict=True):
            found[k] = r
            if not isinstance(r, str):
                cache.put(k, r, each)
    return [found[k] for k in keys]


def score_starting_models(problem: Problem, space: MergeSpace, rng: np.random.Generator
                          ) -> tuple[np.ndarray, Evaluation, float, int]:
    """Score the problem's starting models once, free: the same for every baseline and space.

    The starting models are the pool's sources (or ``n_start`` fresh samples from scratch), built by
    the family directly (none for a pool with neither). Returns the genomes of those the space can
    express with their evaluation (what ``Baseline.seed`` gets), the best starting score (step 0 of
    every curve) and the examples scored. A starting model that cannot be built or scored is a
    :class:`StartError`.
    """
    task, pool = problem.task, problem.pool
    states = pool.starting_states(rng) if pool.sources or pool.sampler is not None else []
    results = []
    for i, state in enumerate(states):
        r = score_model(task, lambda s=state: pool.family.build(s), SEARCH)
        if isinstance(r, str):
            raise StartError(f"{problem.name}: starting model {i} cannot be built or scored, so no search "
                             f"can start ({r})")
        results.append(r)
    idx, x0 = space.starting_genomes(states)
    n_fwd = sum(r.n_forward for r in results)
    return x0, _evaluation([results[i] for i in idx], task), float(max((r.primary for r in results),
                                                                        default=np.nan)), n_fwd


def normalise_descriptors(desc: np.ndarray | None, task: Task) -> np.ndarray | None:
    """Descriptors mapped from the task's declared bounds onto [0, 1] (clipped)."""
    if desc is None or not task.descriptor_bounds:
        return desc
    lo, width = _descriptor_scale(tuple(map(tuple, task.descriptor_bounds)))
    return np.clip((desc - lo) / width, 0.0, 1.0)


@lru_cache(maxsize=64)
def _descriptor_scale(bounds: tuple[tuple[float, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(lower bounds, widths)`` of declared descriptor bounds (a zero width is read as 1); computed
    once per bounds, as every candidate's descriptors are normalised."""
    lo, hi = np.array(bounds, dtype=float).T
    width = np.where(hi > lo, hi - lo, 1.0)
    lo.flags.writeable = width.flags.writeable = False  # shared by every call
    return lo, width


def baseline_config(cls: type[Baseline], user: dict[str, Any], problem: Problem) -> dict[str, Any]:
    """Problem defaults for fields the baseline has (e.g. no mutation for specialists), then the user's."""
    fields = cls.Config.model_fields
    return {**{k: v for k, v in problem.baseline_defaults.items() if k in fields}, **user}


Scorer = Callable[[np.ndarray, str], list]  # genomes (k, dim), split -> k TaskResults or failure messages


def run_one(problem: Problem, baseline: Baseline, space: MergeSpace, budget: int, seed: int,
            label: str | None = None, on_step=None, keep_state: bool = False,
            report: Mapping[str, Task] | None = None, keep_search_scores: bool = False,
            on_model: Callable[[Any], None] | None = None,
            work_root: str | os.PathLike | None = None, journal: RunJournal | None = None,
            cache: CacheSession | None = None, scorer: Scorer | None = None) -> RunResult:
    """Run ``baseline`` (already constructed) on ``space`` for exactly ``budget`` evaluations.

    ``keep_state``: also keep the recommended model's weights (``RunResult.best_state``; and its
    genome, ``RunResult.best_genome``, in recipe spaces) when the
    space can give them as a state dict. ``report``: tasks (by name) on whose test split the
    recommended model is also scored (``RunResult.report``), after the run's wall time is taken and
    outside the budget and ``forward_examples``. ``keep_search_scores``: also keep every candidate's
    per-example search scores (``RunResult.search_scores``, float32, NaN rows for failed candidates).
    ``on_model``: called with the recommended model (as built for scoring, whatever the space, layer
    paths too) once it is scored on the test split, outside the wall time (e.g. to show its answers).
    ``work_root``: where the run's scratch folder (``Baseline.workdir``, a new ``.work-XXXX`` folder)
    is made — the comparison's results folder while it is written; the system's temporary folder
    when None. The scratch folder is deleted when the run ends, however it ends.
    ``journal``: every told batch is appended to it; the batches it already holds (a run killed
    before it finished) are replayed first, without building or scoring anything, so the run
    continues where it stopped and ends exactly as it would have (:mod:`evobench.journal`).
    ``cache``: the evaluation cache's view for this run (:mod:`evobench.evalcache`): candidates it
    holds cost no forward pass (they still count against the budget); hits and misses go to
    ``RunResult.cache``. ``scorer``: scores each asked batch elsewhere (:func:`evaluate_genomes`); the
    starting models and the recommended model are scored here.
    """
    workdir = Path(tempfile.mkdtemp(prefix=".work-", dir=work_root))
    try:
        return _run(problem, baseline, space, budget, seed, label, on_step, keep_state, report,
                    keep_search_scores, on_model, workdir, journal, cache, scorer)
    finally:
        shutil.rmtree(workdir)
        if journal is not None:
            journal.close()


def _run(problem: Problem, baseline: Baseline, space: MergeSpace, budget: int, seed: int,
         label: str | None, on_step, keep_state: bool, report: Mapping[str, Task] | None,
         keep_search_scores: bool, on_model: Callable[[Any], None] | None, workdir: Path,
         journal: RunJournal | None, cache: CacheSession | None, scorer: Scorer | None) -> RunResult:
    task = problem.task
    res = RunResult(task=problem.name, baseline=label or baseline.name, baseline_name=baseline.name,
                    seed=seed, space=space.kind, budget=budget)
    journaled = journal.open() if journal is not None else []
    t0 = time.perf_counter()
    before = journaled[-1].elapsed if journaled else 0.0  # wall seconds the run had run before

    def elapsed() -> float:
        return before + time.perf_counter() - t0

    baseline.setup(space, budget, seed, workdir=workdir)
    rng = np.random.default_rng([seed, 1])  # the pool's own stream (starting models), apart from the baseline's
    x0, ev0, start_best, n_fwd = score_starting_models(problem, space, rng)
    res.forward_examples += n_fwd
    res.start_best = start_best
    baseline.seed(x0, ev0)
    values = np.full(budget, np.nan)
    n = 0

    def told(x: np.ndarray, ev: Evaluation, n_fwd: int) -> None:
        nonlocal n
        values[n:n + len(x)] = ev.value
        if keep_search_scores and ev.scores is not None:
            if res.search_scores is None:
                res.search_scores = np.full((budget, ev.scores.shape[1]), np.nan, dtype=np.float32)
            ok = np.isfinite(ev.value)
            res.search_scores[n:n + len(x)][ok] = ev.scores[ok]
        res.note_errors(ev.errors)
        n += len(x)
        res.forward_examples += n_fwd
        if on_step is not None:
            on_step(len(x))

    for batch in journaled:  # replay: the baseline is told what it was told before, nothing is scored
        x = baseline.ask()[: budget - n]
        if len(x) != len(batch) or genes_checksum(x) != batch.checksum:
            raise ResumeError(
                f"{res.baseline} on {res.task}, seed {seed}: the resumed run asks other candidates than its "
                f"journal at evaluation {n + 1} (other code or package versions, or a baseline that is not "
                "deterministic given its seed); run it afresh")
        baseline.tell(x, batch.evaluation)
        told(x, batch.evaluation, batch.forward_examples)
    while n < budget:
        x = baseline.ask()[: budget - n]
        ev, n_fwd = evaluate_genomes(space, task, x, cache=cache, scorer=scorer)
        baseline.tell(x, ev)
        if journal is not None:
            journal.append(x, ev, n_fwd, elapsed())
        told(x, ev, n_fwd)
    res.values, res.evaluations = values, n
    if cache is not None:
        res.cache = cache.stats()
        cache.cache.commit()
    res.failed = int(np.sum(~np.isfinite(values)))
    res.best_search = float(res.best_curve()[1][-1])
    rec = baseline.recommend()
    if rec is not None:
        res.recipe = space.decode(rec)
        model = space.build(rec)  # built once, scored on both splits
        search = task.evaluate(model, SEARCH)
        res.recommended_search = float(search.primary) if np.isfinite(search.primary) else float("nan")
        res.test_result = task.evaluate(model, TEST)
        res.test_score = float(res.test_result.primary)
        res.test_metrics = dict(res.test_result.metrics)
        res.test_scores = np.asarray(res.test_result.scores, dtype=float)
        if keep_state:
            try:
                res.best_state = space.state_dict(rec)
            except FoldError as e:  # a layer path no plain checkpoint expresses: its recipe is the record
                res.unsaved = f"its recommended layer path is not written as weights ({e})"
            if space.kind != "params":  # a params genome is the weights themselves
                res.best_genome = np.array(rec)
        res.forward_examples += search.n_forward + res.test_result.n_forward
    res.wall_time = elapsed()
    if rec is not None:
        if on_model is not None:
            on_model(model)
        for name, report_task in (report or {}).items():
            t1 = time.perf_counter()
            r = report_task.evaluate(model, TEST)
            res.report_results[name] = r
            res.report[name] = report_entry(r, time.perf_counter() - t1)
    elif report:
        res.report = {name: {"score": float("nan"), "metrics": {}, "examples": 0, "wall_time_s": 0.0}
                      for name in report}
    return res
