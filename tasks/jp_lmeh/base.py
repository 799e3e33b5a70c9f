"""One JP-LMEH subtask: its spec (prompt, choices or answer reader, metric) and its task.

Prompt (plain text, no chat template): the description, then for each shot ``text(shot) + "\\n" +
target(shot) + "\\n\\n"``, then ``text(doc)``. Multiple-choice subtasks score each choice by the
log-likelihood of ``"\\n" + choice`` after the prompt (no normalisation); the prediction is the
first choice of highest log-likelihood and the score is 1 when it is the label (``acc``).
Generation subtasks generate greedily until ``"\\n\\n"``, EOS or ``max_new_tokens`` (256, as the
harness) and read the completion with the subtask's filter and metric.

Splits. A data set's documents come from one file (or hub split); its last 100 documents are
the few-shot pool (JSQuAD counted per question) and are not evaluated. The test split is the
other documents, each with ``k`` shots drawn from the pool by the harness's sampler
(``random.Random(1234)``, one ``sample(pool, k)`` per document, in order). The search split is
the pool itself, each document with ``k`` shots drawn from the rest of the pool (the harness's rule
when the pool is the evaluated split): it is disjoint from the test split. MGSM differs: test =
the 250 MGSM problems, search = a translated-GSM8K set, shots = the eight MGSM exemplars.

Per-example records (``TaskResult.predictions``): ``id``, ``prompt_sha256``, ``prediction``,
``target``, ``score``; with ``choices`` and ``logprobs`` (multiple choice) or ``completion``,
``stopped_by`` and ``n_new_tokens`` (generation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evobench.task import SEARCH, TEST, Task, TaskResult
from evobench.tasks.lm_common import check_split, fewshot_prompt, head, rows_hash, sha256

DESCRIPTION = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
UNTIL = ("\n\n",)


@dataclass(frozen=True)
class Spec:
    """What a subtask is: prompt pieces, and either choices + label or a completion scorer."""

    key: str  # short name (suite metrics), e.g. "jcqa"
    title: str
    shots: int
    metric: str
    text: Callable[[dict], str]
    target: Callable[[dict], str]  # the answer written after a shot
    choices: Callable[[dict], list[str]] | None = None  # multiple choice
    label: Callable[[dict], int] | None = None
    gold: Callable[[dict], Any] | None = None  # generation: the reference
    read: Callable[[str, dict], tuple[Any, float]] | None = None  # completion -> (prediction, score)
    description: str = DESCRIPTION
    target_delimiter: str = "\n"
    # (per-example scores, their documents) -> the subtask's score; default: the mean of the scores
    aggregate: Callable[[np.ndarray, list[dict]], float] | None = None
    fewshot_delimiter: str = "\n\n"

    @property
    def name(self) -> str:
        return "jp-lmeh-" + self.key.replace("_", "-")

    def content(self, doc: dict) -> str:
        """The document's input (text and choices): what its example id hashes."""
        return "\0".join([self.text(doc), *(self.choices(doc) if self.choices else [])])


class LMEHTask(Task):
    """A subtask over fixed documents and shots per split, scored through an ``LMEngine``."""

    def __init__(self, spec: Spec, docs: dict[str, list[dict]], shots: dict[str, list[list[dict]]], engine,
                 max_new_tokens: int = 256) -> None:
        self.spec = spec
        self.name, self.primary_metric, self.metrics = spec.name, spec.metric, (spec.metric,)
        self.docs, self.shots = docs, shots
        self.engine = engine
        self.max_new_tokens = int(max_new_tokens)
        self._prompts: dict[str, list[str]] = {}

    def split_sizes(self) -> dict[str, int]:
        return {s: len(d) for s, d in self.docs.items()}

    def prompts(self, split: str, limit: int | None = None) -> list[str]:
        """The full prompts (description, shots, document) of a split's first ``limit`` documents."""
        check_split(self.name, split, list(self.docs))
        done = self._prompts.setdefault(split, [])
        docs = head(self.docs[split], limit)
        s = self.spec
        for doc, shots in zip(docs[len(done):], self.shots[split][len(done):len(docs)], strict=True):
            done.append(fewshot_prompt(s.description, [(s.text(x), s.target(x)) for x in shots], s.text(doc),
                                       s.target_delimiter, s.fewshot_delimiter))
        return done[:len(docs)]

    def run(self, model, split: str, limit: int | None = None) -> tuple[np.ndarray, list[dict]]:
        """Per-example scores and records of the first ``limit`` documents of ``split``."""
        from evobench.scoring import prompt_hash

        prompts = self.prompts(split, limit)
        docs = self.docs[split][:len(prompts)]
        ids = [sha256(self.name, self.spec.content(d)) for d in docs]
        if self.spec.choices is not None:
            rows = self._choose(model, docs, prompts)
        else:
            rows = self._generate(model, docs, prompts)
        records = [{"id": i, "prompt_sha256": prompt_hash(p), **r} for i, p, r in zip(ids, prompts, rows, strict=True)]
        return np.array([r["score"] for r in records], dtype=float), records

    def _choose(self, model, docs: list[dict], prompts: list[str]) -> list[dict]:
        from evobench.scoring import LoglikelihoodRequest

        s = self.spec
        choices = [s.choices(d) for d in docs]
        requests = [LoglikelihoodRequest(p, s.target_delimiter + c) for p, cs in zip(prompts, choices, strict=True)
                    for c in cs]
        results = iter(self.engine.loglikelihood(model, requests))
        rows = []
        for doc, cs in zip(docs, choices, strict=True):
            logprobs = [next(results).logprob for _ in cs]
            pred, label = int(np.argmax(logprobs)), s.label(doc)
            rows.append({"choices": cs, "logprobs": logprobs, "prediction": pred, "target": label,
                         "score": float(pred == label)})
        return rows

    def _generate(self, model, docs: list[dict], prompts: list[str]) -> list[dict]:
        from evobench.scoring import GenerateRequest

        s = self.spec
        gens = self.engine.generate(model, [GenerateRequest(p, UNTIL, self.max_new_tokens) for p in prompts])
        rows = []
        for doc, gen in zip(docs, gens, strict=True):
            pred, score = s.read(gen.text, doc)
            rows.append({"completion": gen.text, "prediction": pred, "target": s.gold(doc), "score": float(score),
                         "stopped_by": gen.stopped_by, "n_new_tokens": gen.n_new_tokens})
        return rows

    def aggregate(self, scores: np.ndarray, split: str | None = None) -> float:
        """The subtask's score of the first ``len(scores)`` documents of ``split``. Without ``split``:
        the split whose size equals ``len(scores)``, else the test split when it has that many
        documents, else the search split."""
        scores = np.asarray(scores, dtype=float)
        if not scores.size:
            return float("nan")
        if self.spec.aggregate is None:
            return float(scores.mean())
        if split is None:
            sizes = self.split_sizes()
            split = next((s for s in (TEST, SEARCH) if sizes.get(s) == scores.size), None)
            split = split or (TEST if scores.size <= sizes.get(TEST, 0) else SEARCH)
        docs = self.docs[split]
        if scores.size > len(docs):
            raise ValueError(f"{self.name}: {scores.size} scores for the {len(docs)} documents of split {split!r}")
        return float(self.spec.aggregate(scores, docs[:scores.size]))

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        scores, records = self.run(model, split, limit)
        value = self.aggregate(scores, split)
        return TaskResult(scores=scores, metrics={self.primary_metric: value}, primary=value, predictions=records,
                          targets=[r["target"] for r in records], n_forward=len(records))

    def example_ids(self, split: str) -> list[str]:
        """sha256 of each document's input (text and choices, with the subtask name), in split order."""
        check_split(self.name, split, list(self.docs))
        return [sha256(self.name, self.spec.content(d)) for d in self.docs[split]]

    def data_hash(self) -> str:
        s = self.spec
        return rows_hash({k: [s.content(d) for d in v] for k, v in self.docs.items()},
                         {k: [[s.content(x) + "\0" + s.target(x) for x in shots] for shots in v]
                          for k, v in self.shots.items()}, s.description, s.shots)


def splits_from_pool(docs: list[dict], k: int, pool_size: int = 100) -> tuple[dict, dict]:
    """Test = all but the last ``pool_size`` documents (shots from the pool); search = the pool (shots
    from the rest of the pool). Returns ``(docs, shots)`` per split."""
    from evobench.lmdata import draw_fewshot, fewshot_indices, split_fewshot_pool

    evaluated, pool = split_fewshot_pool(docs, pool_size)
    search_shots = [[pool[j] for j in idx] for idx in fewshot_indices(len(pool), len(pool), k, same_split=True)]
    return {SEARCH: pool, TEST: evaluated}, {SEARCH: search_shots, TEST: draw_fewshot(evaluated, pool, k)}


def splits_from_exemplars(search: list[dict], test: list[dict], exemplars: list[dict], k: int) -> tuple[dict, dict]:
    """Search and test documents, each split's shots drawn from ``exemplars`` (its own draw)."""
    from evobench.lmdata import draw_fewshot

    return {SEARCH: search, TEST: test}, {SEARCH: draw_fewshot(search, exemplars, k),
                                          TEST: draw_fewshot(test, exemplars, k)}


def truncate(docs: dict, shots: dict, limit_search: int | None, limit_test: int | None) -> tuple[dict, dict]:
    """Each split cut to its first ``limit`` documents (shots were drawn before the cut)."""
    limits = {SEARCH: limit_search, TEST: limit_test}
    return ({s: head(d, limits[s]) for s, d in docs.items()}, {s: head(v, limits[s]) for s, v in shots.items()})
