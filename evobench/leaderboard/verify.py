"""``evobench leaderboard verify RESULT``: re-run one seed of a result and compare it bit for bit.

The stored seed's record and the new one must agree on everything that does not measure time: the
test score, metrics and per-example scores (and their example ids), the best search fitness, the
best-so-far curve, evaluations, failures, forward examples and the recipe. Before re-running, the
result's own hashes are checked: its content (tampering), its protocol track (staleness) and its
method code (the code that would be re-run must be the code that produced it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evobench.jsonio import dumps, loads
from evobench.leaderboard.protocol import Protocol, track_hash
from evobench.leaderboard.results import LoadedResult
from evobench.leaderboard.submission import MethodCode, Submission
from evobench.leaderboard.submit import build_problem, models_hash, run_seed

COMPARED = ("test_score", "test_metrics", "test_scores", "example_ids", "best_search", "curve", "evaluations",
            "failed", "forward_examples", "recipe", "errors")


def precheck(loaded: LoadedResult, protocol: Protocol, code: MethodCode, problem=None) -> list[str]:
    """Why the result cannot be reproduced as it stands (empty: it can be re-run). ``problem``: the
    track's task as built here, whose data and models must be those of the result."""
    r, problems = loaded.result, []
    if loaded.tampered:
        problems.append("its content does not match its results hash (edited after evobench wrote it)")
    if r.track not in protocol.tracks:
        problems.append(f"track {r.track!r} is not in the protocol")
    elif loaded.stale(track_hash(protocol, r.track), protocol.version):
        problems.append(f"it was produced under protocol version {r.protocol.version} or another definition of "
                        f"track {r.track!r} (now version {protocol.version})")
    if code.sha256 != r.hashes.code:
        problems.append(f"the method's code changed since ({code.source.name}: sha256 {code.sha256[:12]}…, "
                        f"the result names {r.hashes.code[:12]}…)")
    if problem is not None:
        if problem.task.data_hash() != r.hashes.data:
            problems.append("the task's data differ from the result's (data hash)")
        if models_hash(problem) != r.hashes.models:
            from evobench.provenance import cpu_model

            theirs, ours = r.environment.get("cpu") or "an unrecorded CPU", cpu_model() or "an unknown CPU"
            problems.append("the task's models differ from the result's (models trained in code depend on the "
                            f"CPU's kernels: the result's were trained on {theirs}, this machine is {ours}; or "
                            "other source files)")
    return problems


def differences(stored: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """The compared fields (see :data:`COMPARED`) on which two seed records differ."""
    stored, fresh = loads(dumps(stored)), loads(dumps(fresh))  # both as the result file holds them
    out = []
    for key in COMPARED:
        if stored.get(key) != fresh.get(key):
            out.append(key)
    return out


def verify_seed(loaded: LoadedResult, sub: Submission, code: MethodCode, protocol: Protocol,
                seed: int | None = None, work_root: str | Path | None = None,
                problem=None) -> tuple[int, list[str]]:
    """Re-run ``seed`` (default: the result's first) and return it with the differing fields."""
    r = loaded.result
    runs = {run.seed: run for run in r.runs}
    seed = r.runs[0].seed if seed is None else int(seed)
    if seed not in runs:
        raise ValueError(f"{loaded.path}: has no run with seed {seed} (seeds: {', '.join(map(str, runs))})")
    track = protocol.track(r.track)
    problem = problem if problem is not None else build_problem(track)
    fresh = run_seed(sub, code, r.track, track, problem, seed, work_root=work_root)
    return seed, differences(runs[seed].model_dump(mode="json"), fresh)
