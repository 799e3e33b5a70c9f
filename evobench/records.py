"""Per-example records: one JSON-ready dict per scored example, written as JSON lines.

The same records are written by ``evobench eval`` (``records/<task>.jsonl`` of an evaluation) and by a
comparison (``records/<task>.jsonl`` of each run's recommended model and of each source model), so
paired statistics and regression checks read one format: ``index``, ``example_id`` (when the task
gives content hashes), ``score``, then either the task's own per-example dict (the language-model
tasks: prompt hash, completion or choice log-likelihoods, prediction, target, ...) or ``prediction``
and ``target``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evobench.jsonio import dumps, nan_to_none
from evobench.task import Task, TaskResult


def records(result: TaskResult, ids: list[str] | None = None) -> list[dict[str, Any]]:
    """One JSON-ready record per scored example."""
    n = int(result.scores.shape[0])

    def item(seq, i):
        if seq is None:
            return None
        v = seq[i]
        return v.item() if isinstance(v, np.generic) else v

    out = []
    for i in range(n):
        rec: dict[str, Any] = {"index": i, "score": float(result.scores[i])}
        if ids is not None:
            rec["example_id"] = ids[i]
        pred = item(result.predictions, i)
        if isinstance(pred, dict):
            rec.update(pred)
        else:
            rec["prediction"] = pred
            rec["target"] = item(result.targets, i)
        out.append(nan_to_none(rec))
    return out


def example_ids(task: Task, split: str, n: int) -> list[str] | None:
    """The first ``n`` example ids of ``split`` (None when the task gives none)."""
    try:
        return task.example_ids(split)[:n]
    except NotImplementedError:
        return None


def jsonl(recs: list[dict[str, Any]]) -> str:
    """Records as strict JSON lines (one record per line)."""
    return "".join(dumps(r, indent=None) + "\n" for r in recs)


def records_jsonl(task: Task, split: str, result: TaskResult) -> str:
    """The JSON lines of ``result`` (``task`` scored on ``split``), with the task's example ids."""
    return jsonl(records(result, example_ids(task, split, len(result.scores))))
