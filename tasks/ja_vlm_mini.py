"""ja-vlm-mini: the EvoVLM-JP story at toy scale -- merge the language model of a VLM that sees but
answers in English with a Japanese LM, so that questions about images are answered in Japanese.

Models (:mod:`evobench.tasks.ja_vlm_mini_models`): a tiny LLaVA ``en-vlm`` (CLIP tower, projector,
Mistral language model) whose vision tower, projector and lower decoder layers are fine-tuned from a
text-only base to answer in English (``red circle``), and a tiny Mistral LM ``ja-lm``, the same base
with its last decoder layer fine-tuned to answer in Japanese (``赤い丸``) without ever seeing an
image. The pool is the VLM family's (:mod:`evobench.models.vlm`): merges touch the language model
only, the VLM's vision tower and projector are kept; the text-only base is the pool's base for
task vectors. Every merge space of the family is offered (``ps``, ``params``, ``dfs``, ``ps+dfs``).

Data (:mod:`evobench.tasks.ja_vlm_mini_data`): 32 x 32 images of one coloured shape, the question
``何がありますか。``, Japanese references such as ``赤い丸``, in the JA-VG-VQA-500 row schema, scored by
:class:`evobench.tasks.ja_vqa.JaVQATask` exactly as ``ja-vg-vqa-500`` (the ja-shisa-vqa prompt,
ROUGE-L on MeCab words with the ``_ja`` rule as the primary metric, bootstrap mid); by default
greedy (``num_beams=1``) with repetition penalty 1.5 and at most 16 new tokens. Behaviour descriptors
(MAP-Elites): ``rougeL`` (the mean per-example ROUGE-L F without the ``_ja`` rule: does it name the
object, in any language) and ``ja_rate`` (the share of Japanese answers); ``ja_rate`` is also a metric.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from evobench.problem import Problem
from evobench.task import TaskResult
from evobench.tasks.ja_vqa import METRICS, JaVQATask

NAME = "ja-vlm-mini"
MAX_EXAMPLES = 1000  # per split


class JaVLMMiniTask(JaVQATask):
    """:class:`JaVQATask` with behaviour descriptors ``rougeL`` and ``ja_rate`` (per-example means)."""

    metrics = (*METRICS, "ja_rate")
    descriptor_names = ("rougeL", "ja_rate")
    descriptor_bounds = ((0.0, 1.0), (0.0, 1.0))

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        r = super().evaluate(model, split, limit)
        if not r.predictions:
            return TaskResult(scores=r.scores, metrics={**r.metrics, "ja_rate": float("nan")}, primary=r.primary,
                              predictions=r.predictions, targets=r.targets, descriptors=np.zeros(2), n_forward=0)
        rouge = float(np.mean([p["rougeL"] for p in r.predictions]))
        ja_rate = float(np.mean([p["japanese"] for p in r.predictions]))
        return TaskResult(scores=r.scores, metrics={**r.metrics, "ja_rate": ja_rate}, primary=r.primary,
                          predictions=r.predictions, targets=r.targets, descriptors=np.array([rouge, ja_rate]),
                          n_forward=r.n_forward)


@lru_cache(maxsize=1)
def _models():
    from evobench.tasks.ja_vlm_mini_models import load_or_train

    return load_or_train()


def _check(**options) -> None:
    for k, v in options.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{k} must be a positive integer, got {v!r}")
    for k in ("n_search", "n_test"):
        if options[k] > MAX_EXAMPLES:
            raise ValueError(f"{k} must be at most {MAX_EXAMPLES}, got {options[k]}")


def ja_vlm_mini(n_search: int = 32, n_test: int = 64, max_new_tokens: int = 16, num_beams: int = 1,
                repetition_penalty: float = 1.5, batch_size: int = 64) -> Problem:
    """Merge a tiny VLM that answers in English with a tiny Japanese LM (shared text-only base) so
    that questions about images of coloured shapes are answered in Japanese; the models are trained
    once and cached."""
    _check(n_search=n_search, n_test=n_test, max_new_tokens=max_new_tokens, num_beams=num_beams,
           batch_size=batch_size)
    from evobench.models.vlm import pool_from_vlm
    from evobench.scoring import LMEngine
    from evobench.tasks.ja_vlm_mini_data import task_splits
    from evobench.tasks.ja_vqa import _check_decoding

    _check_decoding(num_beams, repetition_penalty)
    tok, processor, models = _models()
    pool = pool_from_vlm(models["en"], {"ja-lm": models["ja"]}, models["base"], processor=processor,
                         tokenizers={"ja-lm": tok, "base": tok}, vlm_name="en-vlm")
    engine = LMEngine(tok, batch_size=batch_size, processor=processor)
    task = JaVLMMiniTask(NAME, task_splits(n_search, n_test), engine, max_new_tokens, num_beams, repetition_penalty)
    return Problem(NAME, task, pool, baseline_defaults={"mutation_std": 0.0},
                   description="merge a tiny VLM answering in English and a tiny Japanese LM to answer "
                               "questions about images in Japanese")
