"""Japanese visual question answering as EvoVLM-JP was scored: ja-vg-vqa-500 and ja-vlm-bench-itw.

- Test split: ``ja-vg-vqa-500``: the 500 images of ``SakanaAI/JA-VG-VQA-500`` (split ``test``), the
  first question/answer pair of each; ``ja-vlm-bench-itw``: the 50 questions of
  ``SakanaAI/JA-VLM-Bench-In-the-Wild`` (split ``test``).
- Search split (both tasks): the ``train`` split of ``SakanaAI/JA-VG-VQA-500`` (first pair of each
  image), a set of other Visual Genome images; ``limit_search`` keeps its first n.
- Prompt "ja-shisa-vqa" with ``<image>\\n`` before the question (the VLM's processor expands the
  placeholder and adds BOS); generation with 5 beams, repetition penalty 1.5, no sampling, at most
  512 new tokens; the answer is the completion stripped of surrounding whitespace.
- Metrics: ROUGE-1/2/L F-measure on Japanese words, as fractions like every task's score (tables
  show them x 100, the paper's scale) (text normalised: emoji removed,
  ``neologdn``, whitespace collapsed; split by MeCab), aggregated as rouge-score's bootstrap "mid"
  (:mod:`evobench.metrics.rouge`); the ``_ja`` variants score an answer that is not Japanese as
  empty when its reference is Japanese (language id, threshold 0.5). The primary metric is
  ``rougeL_ja``: the EvoVLM-JP evaluation reports ROUGE-L with that check on (its
  ``strict_japanese`` default). The per-example score is that answer's ROUGE-L F (0-1) under the
  ``_ja`` rule, and ``rougeL_ja`` is the bootstrap mid of those scores.

Models: ``models[0]`` is a LLaVA or LLaVA-NeXT model (hub id or directory, with its processor);
further models are causal LMs merged into its language model (:mod:`evobench.models.vlm`); the
vision tower and projector are kept. One model: scoring only.

Per-example records (``TaskResult.predictions``): ``id``, ``prompt_sha256``, ``image_sha256``,
``completion``, ``prediction`` (the stripped completion), ``target``, ``score``, ``rouge1``,
``rouge2``, ``rougeL`` (without the ``_ja`` rule), ``japanese`` (the prediction is Japanese),
``stopped_by``, ``n_new_tokens``. ``answers(model, split, limit)`` gives a comparison's answer table
(image / question / reference / answer, :mod:`evobench.answer_table`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evobench.lmdata import DataUnavailableError
from evobench.problem import Problem
from evobench.task import SEARCH, TEST, Task, TaskResult
from evobench.tasks.lm_common import (
    DataMissingError,
    check_common,
    check_split,
    head,
    lm_problem,
    optional_path,
    positive_int,
    rows_hash,
    sha256,
)

PROMPT = ("[INST] <<SYS>>\nあなたは役立つ、偏見がなく、検閲されていないアシスタントです。"
          "与えられた画像を下に、質問に答えてください。\n<</SYS>>\n\n{input} [/INST]")
IMAGE_PLACEHOLDER = "<image>"
TYPES = ("rouge1", "rouge2", "rougeL")
METRICS = (*TYPES, *(t + "_ja" for t in TYPES))
VG_FOLDER, WILD_FOLDER = "ja-vg-vqa-500", "ja-vlm-bench-in-the-wild"


def prompt(question: str) -> str:
    """The "ja-shisa-vqa" prompt of one question, the image placeholder first."""
    return PROMPT.replace("{input}", f"{IMAGE_PLACEHOLDER}\n{question}")


class JaVQATask(Task):
    """Generate an answer per (image, question) and score it by ROUGE on Japanese words."""

    primary_metric = "rougeL_ja"
    metrics = METRICS

    def __init__(self, name: str, splits: dict[str, list[dict[str, Any]]], engine, max_new_tokens: int = 512,
                 num_beams: int = 5, repetition_penalty: float = 1.5) -> None:
        self.name = name
        self.splits = splits
        self.engine = engine
        self.max_new_tokens, self.num_beams = int(max_new_tokens), int(num_beams)
        self.repetition_penalty = float(repetition_penalty)

    def split_sizes(self) -> dict[str, int]:
        return {s: len(rows) for s, rows in self.splits.items()}

    def aggregate(self, scores: np.ndarray) -> float:
        """rouge-score's bootstrap "mid" of the per-example scores (1,000 resamples, seed 0)."""
        from evobench.metrics.rouge import bootstrap_mid

        return bootstrap_mid(scores) if len(scores) else float("nan")

    def requests(self, rows: list[dict[str, Any]]) -> list:
        from evobench.scoring import GenerateRequest

        return [GenerateRequest(prompt(r["question"]), (), self.max_new_tokens, num_beams=self.num_beams,
                                repetition_penalty=self.repetition_penalty, images=(r["image"],)) for r in rows]

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        from evobench.metrics.language import is_japanese
        from evobench.metrics.rouge import blank_non_japanese, pair_scores
        from evobench.scoring import prompt_hash

        check_split(self.name, split, list(self.splits))
        rows = head(self.splits[split], limit)
        requests = self.requests(rows)
        generations = self.engine.generate(model, requests)
        preds = [g.text.strip() for g in generations]
        refs = [r["answer"] for r in rows]
        kept = blank_non_japanese(preds, refs)
        per = {t: [] for t in METRICS}
        records = []
        for row, req, gen, pred, keep in zip(rows, requests, generations, preds, kept, strict=True):
            raw = {t: v / 100.0 for t, v in pair_scores(pred, row["answer"], TYPES).items()}  # fractions
            for t in TYPES:
                per[t].append(raw[t])
                per[t + "_ja"].append(raw[t] if keep == pred else 0.0)
            records.append({"id": self._id(row), "prompt_sha256": prompt_hash(req.prompt),
                            "image_sha256": row["image"].sha256, "completion": gen.text, "prediction": pred,
                            "target": row["answer"], "score": per["rougeL_ja"][-1], **raw,
                            "japanese": is_japanese(pred), "stopped_by": gen.stopped_by,
                            "n_new_tokens": gen.n_new_tokens})
        scores = np.asarray(per["rougeL_ja"], dtype=float)
        metrics = {t: self.aggregate(np.asarray(v, dtype=float)) for t, v in per.items()}
        return TaskResult(scores=scores, metrics=metrics, primary=metrics["rougeL_ja"], predictions=records,
                          targets=refs, n_forward=len(rows))

    def answers(self, model, split: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The comparison's answer table (:mod:`evobench.answer_table`): per example of the split's first
        ``limit``, its ``image``, ``question``, ``reference`` and the model's ``answer`` (the stripped
        completion) with its ``score`` (ROUGE-L F under the ``_ja`` rule), as :meth:`evaluate` scores them."""
        result = self.evaluate(model, split, limit)
        return [{"image": row["image"], "question": row["question"], "reference": row["answer"],
                 "answer": rec["prediction"], "score": rec["score"]}
                for row, rec in zip(head(self.splits[split], limit), result.predictions, strict=True)]

    def _id(self, row: dict[str, Any]) -> str:
        return sha256(self.name, row["image"].sha256, row["question"])

    def example_ids(self, split: str) -> list[str]:
        """sha256 of each example's image and question (with the task name), in split order."""
        check_split(self.name, split, list(self.splits))
        return [self._id(r) for r in self.splits[split]]

    def data_hash(self) -> str:
        return rows_hash({s: [(r["image"].sha256, r["question"], r["answer"]) for r in rows]
                          for s, rows in self.splits.items()}, PROMPT, self.max_new_tokens, self.num_beams,
                         self.repetition_penalty)


def _load(loader, data_dir, folder: str, hub_id: str, split: str, task: str, limit: int | None):
    """Rows of one split from ``data_dir/folder`` or the hub; unavailable data is one line saying what
    to download and where."""
    path = None if data_dir is None else data_dir / folder
    try:
        return loader(path, split, limit)
    except DataUnavailableError as e:
        where = f"{data_dir}/{folder}" if data_dir is not None else f"<data_dir>/{folder}"
        raise DataMissingError(f"{task}: the {split} split of {hub_id} is not available ({' '.join(str(e).split())}); "
                               f"download it (huggingface-cli download {hub_id} --repo-type dataset --local-dir "
                               f"{where}) and give data_dir= the folder above it") from None


def load_splits(task: str, data_dir=None, limit_search: int | None = None,
                limit_test: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Search rows (JA-VG-VQA-500 train) and test rows of ``task``, each cut to its limit."""
    from evobench.lmdata.vqa import VG_HUB, WILD_HUB, load_ja_vg_vqa, load_ja_vlm_wild

    root = optional_path("data_dir", data_dir, "dir")
    search = _load(load_ja_vg_vqa, root, VG_FOLDER, VG_HUB, "train", task, limit_search)
    if task == "ja-vg-vqa-500":
        test = _load(load_ja_vg_vqa, root, VG_FOLDER, VG_HUB, "test", task, limit_test)
    else:
        test = _load(load_ja_vlm_wild, root, WILD_FOLDER, WILD_HUB, "test", task, limit_test)
    return {SEARCH: search, TEST: test}


def _check_decoding(num_beams: Any, repetition_penalty: Any) -> None:
    positive_int("num_beams", num_beams)
    if isinstance(repetition_penalty, bool) or not isinstance(repetition_penalty, int | float) \
            or not 0.0 < repetition_penalty < float("inf"):
        raise ValueError(f"repetition_penalty must be a positive number, got {repetition_penalty!r}")


def _problem(task: str, what: str, models, base, data_dir, max_new_tokens, num_beams, repetition_penalty,
             batch_size, device, dtype, limit_search, limit_test) -> Problem:
    from evobench.models.vlm import load_vlm_pool
    from evobench.scoring import LMEngine

    names = check_common(models, base, max_new_tokens, batch_size, device, dtype)
    _check_decoding(num_beams, repetition_penalty)
    positive_int("limit_search", limit_search, optional=True)
    positive_int("limit_test", limit_test, optional=True)
    splits = load_splits(task, data_dir, limit_search, limit_test)
    pool = load_vlm_pool(names, base, device=device, dtype=dtype)
    family = pool.family
    engine = LMEngine(family.tokenizer, batch_size=batch_size, processor=family.processor)
    vqa = JaVQATask(task, splits, engine, max_new_tokens, num_beams, repetition_penalty)
    return lm_problem(task, vqa, pool, f"{what} ({len(splits[TEST])} test questions)")


def ja_vg_vqa_500(models, base: str | None = None, data_dir=None, max_new_tokens: int = 512, num_beams: int = 5,
                  repetition_penalty: float = 1.5, batch_size: int = 4, device: str = "cpu", dtype: str = "float32",
                  limit_search: int | None = None, limit_test: int | None = None) -> Problem:
    """JA-VG-VQA-500 as EvoVLM-JP was scored: a VLM answers in Japanese, ROUGE-L on MeCab words.

    ``models``: a LLaVA(-NeXT) hub id or directory, then causal LMs to merge into its language model.
    ``data_dir``: a folder holding ``ja-vg-vqa-500/`` (a download of the hub repository); None reads
    the hub. ``limit_search``/``limit_test`` keep the first n examples of a split.
    """
    return _problem("ja-vg-vqa-500", "JA-VG-VQA-500", models, base, data_dir, max_new_tokens, num_beams,
                    repetition_penalty, batch_size, device, dtype, limit_search, limit_test)


def ja_vlm_bench_itw(models, base: str | None = None, data_dir=None, max_new_tokens: int = 512, num_beams: int = 5,
                     repetition_penalty: float = 1.5, batch_size: int = 4, device: str = "cpu",
                     dtype: str = "float32", limit_search: int | None = None,
                     limit_test: int | None = None) -> Problem:
    """JA-VLM-Bench-In-the-Wild as EvoVLM-JP was scored: 50 questions on Japanese scenes, ROUGE-L.

    Options as ``ja-vg-vqa-500``; ``data_dir`` holds ``ja-vlm-bench-in-the-wild/`` and, for the search
    split, ``ja-vg-vqa-500/``.
    """
    return _problem("ja-vlm-bench-itw", "JA-VLM-Bench-In-the-Wild", models, base, data_dir, max_new_tokens,
                    num_beams, repetition_penalty, batch_size, device, dtype, limit_search, limit_test)
