"""mgsm-ja: MGSM in Japanese as the evolutionary-merge paper scored it (zero-shot, greedy, CoT).

- Test split: the 250 MGSM ``ja`` test problems (``mgsm_ja.tsv`` from google-research/url-nlp, or
  the hub's ``juletxara/mgsm``, config ``ja``, split ``test``).
- Search split: a translated-GSM8K JSON-lines file (``question``, ``answer_number``) given as
  ``search_path``; by default the 32 generated problems of :mod:`evobench.tasks.mgsm_search`.
- Prompt "ja-alpaca-cot" (zero-shot, the question as ``{input}``, nothing after "### 応答:");
  greedy generation until EOS, a stop string (``Instruction:``, ``Instruction``, ``Response:``,
  ``Response``) or ``max_new_tokens`` (1024 in the paper).
- Answer: the last match of ``\\d*\\.?\\d+`` in the completion as a float (``strict=True`` also reads
  thousands separators and a minus sign); no number is wrong.
- Per-example score: 1 when the answer equals the gold number. Metrics: ``acc`` (primary, the
  paper's MGSM-JA accuracy) and ``acc_ja`` (correct AND the completion, newlines removed, is
  Japanese by fastText language id with P(ja) > 0.5).

Per-example records (``TaskResult.predictions``, one dict per problem): ``id``, ``prompt_sha256``,
``completion``, ``prediction`` (the number read, or None), ``target``, ``score``, ``japanese``,
``stopped_by``, ``n_new_tokens``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evobench.problem import Problem
from evobench.task import SEARCH, TEST, Task, TaskResult
from evobench.tasks.lm_common import (
    check_common,
    check_split,
    data_missing,
    find_data,
    head,
    lm_pool,
    lm_problem,
    make_engine,
    optional_path,
    positive_int,
    rows_hash,
    sha256,
)

PROMPT = ("以下に、あるタスクを説明する指示があります。リクエストを適切に完了するための回答を日本語で記述してください。"
          "一歩一歩考えましょう。\n\n### 指示:\n{input}\n\n### 応答:")
STOP = ("Instruction:", "Instruction", "Response:", "Response")


def prompt(question: str) -> str:
    """The "ja-alpaca-cot" prompt of one question."""
    return PROMPT.replace("{input}", question)


class MGSMJATask(Task):
    name = "mgsm-ja"
    primary_metric = "acc"
    metrics = ("acc", "acc_ja")

    def __init__(self, splits: dict[str, list[dict[str, Any]]], engine, max_new_tokens: int = 1024,
                 strict: bool = False) -> None:
        self.splits = splits
        self.engine = engine
        self.max_new_tokens = int(max_new_tokens)
        self.strict = bool(strict)

    def split_sizes(self) -> dict[str, int]:
        return {s: len(rows) for s, rows in self.splits.items()}

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        from evobench.metrics.language import is_japanese
        from evobench.metrics.numbers import last_number, number_match
        from evobench.scoring import GenerateRequest, prompt_hash

        check_split(self.name, split, list(self.splits))
        rows = head(self.splits[split], limit)
        requests = [GenerateRequest(prompt(r["question"]), STOP, self.max_new_tokens) for r in rows]
        generations = self.engine.generate(model, requests)
        records, correct, japanese = [], [], []
        for row, req, gen in zip(rows, requests, generations, strict=True):
            answer = last_number(gen.text, strict=self.strict)
            ok = number_match(answer, row["answer_number"])
            ja = is_japanese(gen.text)
            correct.append(ok)
            japanese.append(ja)
            records.append({"id": self._id(row), "prompt_sha256": prompt_hash(req.prompt), "completion": gen.text,
                            "prediction": answer, "target": row["answer_number"], "score": float(ok),
                            "japanese": ja, "stopped_by": gen.stopped_by, "n_new_tokens": gen.n_new_tokens})
        scores = np.asarray(correct, dtype=float)
        acc = self.aggregate(scores)
        acc_ja = float(np.mean(np.logical_and(correct, japanese))) if rows else float("nan")
        return TaskResult(scores=scores, metrics={"acc": acc, "acc_ja": acc_ja}, primary=acc,
                          predictions=records, targets=[r["answer_number"] for r in rows], n_forward=len(rows))

    def _id(self, row: dict[str, Any]) -> str:
        return sha256(self.name, row["question"])

    def example_ids(self, split: str) -> list[str]:
        """sha256 of each problem's question (with the task name), in split order."""
        check_split(self.name, split, list(self.splits))
        return [self._id(r) for r in self.splits[split]]

    def data_hash(self) -> str:
        return rows_hash({s: [(r["question"], r["answer_number"]) for r in rows] for s, rows in self.splits.items()},
                         PROMPT, STOP)


def load_splits(data_dir=None, search_path=None, limit_search: int | None = None,
                limit_test: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """The search and test problems (see the module docstring), each cut to its limit."""
    from evobench.lmdata import DataUnavailableError, load_gsm8k_ja, load_mgsm
    from evobench.tasks.mgsm_search import generated_search_set

    data = optional_path("data_dir", data_dir, "any")
    search = optional_path("search_path", search_path, "file")
    test_file = data if data is not None and data.is_file() else \
        find_data(data, "mgsm-ja", ["mgsm_ja.tsv"], ["mgsm"], "mgsm_ja.tsv (google-research/url-nlp, mgsm/)")
    try:
        test = load_mgsm(test_file)
    except DataUnavailableError as e:
        raise data_missing(e) from None
    train = load_gsm8k_ja(search) if search is not None else generated_search_set()
    return {SEARCH: head(train, limit_search), TEST: head(test, limit_test)}


def mgsm_ja(models, base: str | None = None, data_dir=None, search_path=None, max_new_tokens: int = 1024,
            batch_size: int = 8, device: str = "cpu", dtype: str = "float32", limit_search: int | None = None,
            limit_test: int | None = None, strict: bool = False) -> Problem:
    """MGSM-JA as the evolutionary-merge paper scored it: zero-shot CoT, acc and acc_ja.

    ``models``: hub ids, directories or ``.gguf`` files (one model: scoring only).

    ``data_dir``: ``mgsm_ja.tsv`` or a folder holding it (or its ``mgsm/`` folder); None reads the
    hub. ``search_path``: a translated-GSM8K JSON-lines file (default: the generated set).
    ``limit_search``/``limit_test`` keep the first n problems of a split.
    """
    names = check_common(models, base, max_new_tokens, batch_size, device, dtype)
    positive_int("limit_search", limit_search, optional=True)
    positive_int("limit_test", limit_test, optional=True)
    if not isinstance(strict, bool):
        raise ValueError(f"strict must be true or false, got {strict!r}")
    splits = load_splits(data_dir, search_path, limit_search, limit_test)
    pool = lm_pool(names, base, device, dtype)
    task = MGSMJATask(splits, make_engine(pool, batch_size), max_new_tokens, strict)
    return lm_problem("mgsm-ja", task, pool, f"MGSM-JA ({len(splits[TEST])} test problems, zero-shot CoT)")
