"""jp-lmeh: the JP-LMEH suite, scored as the mean of its subtasks' scores.

Default subtasks: the eight of the harness's ``japanese_leaderboard`` group (JCommonsenseQA, JNLI,
MARC-ja, JSQuAD, JAQKET v2, XL-Sum, XWinograd, MGSM); ``subtasks=[...]`` picks a subset (e.g. the
four with released files: ``["jcqa", "jnli", "jsquad", "mgsm"]``) or adds the optional ``jcola``. One scoring engine (one
tokenisation cache) serves every subtask.

Per-example scores: the subtasks' per-example scores (0-1 each) interleaved round-robin in
subtask order -- document 0 of each subtask, then document 1 of each, ...; a subtask with no
documents left drops out of the rotation. So ``limit=n`` scores the first ``n`` examples of that
sequence, spread evenly over the subtasks, and every example keeps one fixed position per split
(what fitness sharing needs). Each record (``TaskResult.predictions``) names its ``task``.

Primary metric ``avg`` = the mean over the subtasks present of each subtask's aggregate of its own
scores (mean; XL-Sum: bootstrap mid; JCoLA: MCC), a fraction like every task's score: the paper's
0-100 "JP-LMEH avg" is 100 x ``avg``, as tables show it. ``metrics`` also hold each subtask's score
under its key. :meth:`JPLMEHSuite.aggregate` reads a score vector in the layout of the split whose
size equals its length, else of the test split when it is no longer than it, else of the search split.
"""

from __future__ import annotations

import numpy as np

from evobench.problem import Problem
from evobench.task import SEARCH, TEST, Task, TaskResult
from evobench.tasks.jp_lmeh import jaqket, jcola, jcqa, jnli, jsquad, marc_ja, mgsm, xlsum, xwinograd
from evobench.tasks.jp_lmeh.base import LMEHTask
from evobench.tasks.jp_lmeh.factory import subtask_data
from evobench.tasks.lm_common import check_common, check_split, head, lm_pool, lm_problem, make_engine

MODULES = {m.SPEC.key: m for m in (jcqa, jnli, marc_ja, jsquad, jaqket, xlsum, xwinograd, mgsm, jcola)}
SUBTASKS = tuple(k for k in MODULES if k != "jcola")  # the default eight; JCoLA (MCC) is optional


def layout(sizes: list[int], n: int | None = None) -> list[tuple[int, int]]:
    """``(subtask, document)`` of the first ``n`` positions of the round-robin over ``sizes``."""
    out: list[tuple[int, int]] = []
    total = sum(sizes) if n is None else min(n, sum(sizes))
    doc = 0
    while len(out) < total:
        out += [(t, doc) for t, size in enumerate(sizes) if doc < size][:total - len(out)]
        doc += 1
    return out


class JPLMEHSuite(Task):
    name = "jp-lmeh"
    primary_metric = "avg"

    def __init__(self, tasks: list[LMEHTask]) -> None:
        self.tasks = tasks
        self.metrics = ("avg", *(t.spec.key for t in tasks))

    def split_sizes(self) -> dict[str, int]:
        return {s: sum(t.split_sizes()[s] for t in self.tasks) for s in (SEARCH, TEST)}

    def _sizes(self, split: str) -> list[int]:
        return [t.split_sizes()[split] for t in self.tasks]

    def _per_task(self, scores: np.ndarray, split: str) -> dict[str, float]:
        groups: list[list[float]] = [[] for _ in self.tasks]
        for (t, _), value in zip(layout(self._sizes(split), len(scores)), scores, strict=True):
            groups[t].append(value)
        return {task.spec.key: task.aggregate(np.asarray(g), split) for task, g in zip(self.tasks, groups, strict=True)
                if g}

    def _score(self, per_task: dict[str, float]) -> float:
        return float(np.mean(list(per_task.values()))) if per_task else float("nan")

    def aggregate(self, scores: np.ndarray) -> float:
        scores = np.asarray(scores, dtype=float)
        sizes = self.split_sizes()
        split = next((s for s in (TEST, SEARCH) if sizes[s] == scores.size), None)
        split = split or (TEST if scores.size <= sizes[TEST] else SEARCH)
        return self._score(self._per_task(scores, split))

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        check_split(self.name, split, [SEARCH, TEST])
        positions = layout(self._sizes(split), len(head(range(self.split_sizes()[split]), limit)))
        counts = [sum(1 for t, _ in positions if t == i) for i in range(len(self.tasks))]
        runs = [task.run(model, split, c) if c else (np.zeros(0), []) for task, c in zip(self.tasks, counts, strict=True)]
        scores = np.array([runs[t][0][d] for t, d in positions], dtype=float)
        records = [{"task": self.tasks[t].spec.key, **runs[t][1][d]} for t, d in positions]
        per_task = self._per_task(scores, split)
        value = self._score(per_task)
        return TaskResult(scores=scores, metrics={"avg": value, **per_task}, primary=value, predictions=records,
                          targets=[r["target"] for r in records], n_forward=len(records))

    def example_ids(self, split: str) -> list[str]:
        """The subtasks' example ids in the suite's round-robin order."""
        ids = [t.example_ids(split) for t in self.tasks]
        return [ids[t][d] for t, d in layout(self._sizes(split))]

    def data_hash(self) -> str:
        from evobench.tasks.lm_common import rows_hash

        return rows_hash([t.data_hash() for t in self.tasks])


def jp_lmeh(models, base: str | None = None, data_dir=None, search_path=None, subtasks=SUBTASKS,
            max_new_tokens: int = 256, batch_size: int = 8, device: str = "cpu", dtype: str = "float32",
            limit_search: int | None = None, limit_test: int | None = None) -> Problem:
    """The JP-LMEH suite: the mean of its subtasks' scores (x 100 in tables: the paper's JP-LMEH avg).

    ``models``: one model (scoring only) or several to merge; ``subtasks`` from jcqa, jnli, marc_ja,
    jsquad, jaqket, xlsum, xwinograd, mgsm (the default eight) and the optional jcola; ``limit_search``/``limit_test`` keep each subtask's
    first n documents; ``search_path`` is MGSM's search set.
    """
    names = check_common(models, base, max_new_tokens, batch_size, device, dtype)
    if isinstance(subtasks, str) or not isinstance(subtasks, list | tuple) or not subtasks:
        raise ValueError(f"subtasks must be a non-empty list of {', '.join(SUBTASKS)}, got {subtasks!r}")
    unknown = [s for s in subtasks if s not in MODULES]
    if unknown or len(set(subtasks)) != len(subtasks):
        raise ValueError(f"subtasks: {'unknown ' + repr(unknown) if unknown else 'repeated'} in {list(subtasks)}; "
                         f"choose from {', '.join(MODULES)}")
    if search_path is not None and "mgsm" not in subtasks:
        raise ValueError("search_path applies only to the mgsm subtask, which subtasks leaves out")
    data = {k: subtask_data(MODULES[k].SPEC, MODULES[k].load, data_dir, search_path if k == "mgsm" else None,
                            limit_search, limit_test, k == "mgsm") for k in subtasks}
    pool = lm_pool(names, base, device, dtype)
    engine = make_engine(pool, batch_size)
    tasks = [LMEHTask(MODULES[k].SPEC, *data[k], engine, max_new_tokens) for k in subtasks]
    return lm_problem("jp-lmeh", JPLMEHSuite(tasks), pool, f"JP-LMEH ({', '.join(subtasks)})")
