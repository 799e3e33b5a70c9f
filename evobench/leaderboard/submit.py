"""Running a submission under the protocol and writing its result files (evobench's process only).

For each track a submission names, each seed of the track is one run: a fresh confined method
process (:class:`~evobench.leaderboard.remote.MethodProcess`, its own temporary run folder), the
track's task built by evobench, the space the method prefers among those the track allows, and
:func:`evobench.runner.run_one` driving the method for the track's budget. The recommended genome is
scored on the test split by evobench. The result (:mod:`evobench.leaderboard.results`) is sealed
with its hashes and written atomically to ``<results>/<method>/<track>.json``.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from evobench.jsonio import nan_to_none, write_json
from evobench.leaderboard.protocol import Protocol, Track, track_hash
from evobench.leaderboard.remote import MethodProcess, remote_baseline
from evobench.leaderboard.results import FORMAT, seal
from evobench.leaderboard.submission import MethodCode, Submission, SubmissionError

CURVE_POINTS = 200


def build_problem(track: Track):
    from evobench.compare import _problem
    from evobench.config import TaskSpec

    return _problem(TaskSpec(name=track.task.name, options=dict(track.task.options)), "cpu")


def run_seed(sub: Submission, code: MethodCode, track_name: str, track: Track, problem, seed: int,
             budget: int | None = None, work_root: str | Path | None = None) -> dict[str, Any]:
    """One run of the method on a track (its own process); the seed's record for the result file."""
    import torch

    from evobench.records import example_ids
    from evobench.runner import run_one
    from evobench.spaces import make_space
    from evobench.stats import thin_curve
    from evobench.task import TEST

    budget = budget or track.budget
    torch.set_num_threads(track.threads)
    folder = Path(tempfile.mkdtemp(prefix=f".method-{sub.name}-", dir=work_root))
    proc = MethodProcess(sub.name, folder, track.limits.method_seconds, track.limits.memory_mb)
    try:
        hello, _ = proc.call("init", {**code.worker_header(), "config": sub.hyperparameters,
                                      "defaults": dict(problem.baseline_defaults)})
        baseline = remote_baseline(proc, {**hello, "spaces": [k for k in hello["spaces"] if k in track.spaces]})
        kind, why = problem.choose_space(type(baseline))
        if kind is None:
            raise SubmissionError(f"method {sub.name!r} cannot run on track {track_name!r}: {why or 'no space'} "
                                  f"(the track allows {', '.join(track.spaces)}; the method searches "
                                  f"{', '.join(hello['spaces']) or 'none'})")
        space = make_space(kind, problem, seed, **track.space_options.get(kind, {}))
        res = run_one(problem, baseline, space, budget, seed, label=sub.name)
        method_time = proc.used
    finally:
        proc.close()
        shutil.rmtree(folder, ignore_errors=True)
    steps, best = thin_curve(*res.best_curve(), max_points=CURVE_POINTS)
    n_test = int(np.asarray(res.test_scores).size)
    return nan_to_none({
        "seed": int(seed), "test_score": res.test_score, "test_metrics": dict(res.test_metrics),
        "test_scores": np.asarray(res.test_scores, dtype=float), "example_ids": example_ids(problem.task, TEST, n_test),
        "best_search": res.best_search,
        "curve": {"evaluations": [int(s) for s in steps], "best_so_far": best},
        "evaluations": res.evaluations, "failed": res.failed, "forward_examples": res.forward_examples,
        "wall_time_s": round(res.wall_time, 3), "method_time_s": round(method_time, 3), "space": kind,
        "recipe": res.recipe, "errors": list(res.errors)})


def method_info(sub: Submission) -> dict[str, Any]:
    return {"name": sub.name, "version": sub.version, "authors": list(sub.authors), "license": sub.license,
            "code": {k: v for k, v in sub.code.model_dump().items() if v is not None},
            "entry_point": sub.entry_point, "url": sub.url, "hyperparameters": dict(sub.hyperparameters)}


def environment() -> dict[str, Any]:
    from evobench.provenance import cpu_model, git_sha, package_versions

    return {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu": cpu_model(), "packages": package_versions(), "git_sha": git_sha()}


def run_track(sub: Submission, code: MethodCode, protocol: Protocol, track_name: str,
              on_seed: Callable[[int, dict[str, Any]], None] | None = None,
              work_root: str | Path | None = None) -> dict[str, Any]:
    """Every seed of one track; the sealed result data."""
    track = protocol.track(track_name)
    problem = build_problem(track)
    runs = []
    for seed in track.seeds:
        run = run_seed(sub, code, track_name, track, problem, seed, work_root=work_root)
        runs.append(run)
        if on_seed is not None:
            on_seed(seed, run)
    spaces = sorted({r.pop("space") for r in runs})
    return seal({
        "format": FORMAT, "method": method_info(sub), "track": track_name, "task": problem.name,
        "space": spaces[0], "budget": track.budget, "seeds": list(track.seeds),
        "protocol": {"version": protocol.version, "alpha": protocol.alpha}, "runs": runs,
        "environment": environment(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hashes": {"protocol": track_hash(protocol, track_name), "data": problem.task.data_hash(),
                   "models": models_hash(problem), "code": code.sha256, "results": ""}})


def models_hash(problem) -> str:
    """SHA-256 over the hashes of the task's source and base models (models trained in code included:
    a machine that trains them differently produces another hash)."""
    import hashlib

    from evobench.jsonio import dumps
    from evobench.provenance import problem_provenance

    prov = {k: v for k, v in problem_provenance(problem).items() if k.startswith("model")}
    return hashlib.sha256(dumps(prov, indent=None, sort_keys=True).encode()).hexdigest()


def write_result(results_dir: str | Path, data: dict[str, Any]) -> Path:
    folder = Path(results_dir) / data["method"]["name"]
    folder.mkdir(parents=True, exist_ok=True)
    return write_json(folder / f"{data['track']}.json", data)
