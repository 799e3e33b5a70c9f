"""webshop-mini models and tasks: the M2N2 paper's math + WebShop merge at toy scale.

The models (:mod:`evobench.tasks.webshop_mini_models`): a tiny agent LM (imitates the oracle on
webshop-mini) and a tiny math LM (English arithmetic word problems), fine-tuned from one shared base
(the pool's base for task vectors), trained once in code and cached. Both factories below bring
these two models (no ``models`` option), so ``mean-of`` can score them on both tasks at once
(preset ``webshop-mini``).

- ``math-mini``: English word problems (:mod:`evobench.tasks.math_mini_data`; ``a + b`` and
  ``a - b``, results 1..18; search 64, test 128), prompt ``Q: {problem}\\nA:``, greedy generation
  (stop at a newline or ``Q:``), answer = the last number of the completion (MGSM's rule). Per-example
  score 1/0, primary metric ``acc``.
- ``webshop-mini``: the ``webshop`` task on the generated catalogue with the compact prompt (the
  current page, the last 5 actions, ``Action:``) and snapped clicks (a click naming no button of the
  page clicks the most similar one), at most ``step_limit`` actions (6 by default: the teacher
  needs 3-5).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from evobench.problem import Problem
from evobench.task import SEARCH, TEST, Task, TaskResult
from evobench.tasks.ja_math_mini_data import read_number
from evobench.tasks.math_mini_data import MAX_PROBLEMS, task_splits

STOP = ("\n", "Q:")
SOURCES = ("agent", "math")


class MathMiniTask(Task):
    """English arithmetic word problems scored by greedy generation; 1 iff the last number is right."""

    name = "math-mini"
    primary_metric = "acc"
    metrics = ("acc",)

    def __init__(self, tokenizer, n_search: int = 64, n_test: int = 128, max_new_tokens: int = 16,
                 batch_size: int = 64) -> None:
        from evobench.scoring import GenerateRequest, LMEngine

        self.data = task_splits(n_search, n_test)
        self.engine = LMEngine(tokenizer, batch_size=batch_size, add_bos=True)
        self.requests = {s: [GenerateRequest(p.prompt, stop=STOP, max_new_tokens=max_new_tokens) for p in ps]
                         for s, ps in self.data.items()}

    def split_sizes(self) -> dict[str, int]:
        return {s: len(ps) for s, ps in self.data.items()}

    def evaluate(self, model, split: str, limit: int | None = None) -> TaskResult:
        if split not in self.data:
            raise ValueError(f"math-mini: unknown split {split!r} (have: {', '.join(self.data)})")
        problems, requests = self.data[split][:limit], self.requests[split][:limit]
        texts = [g.text for g in self.engine.generate(model, requests)]  # NonFiniteError on NaN/inf logits
        scores = np.array([read_number(t) == float(p.answer) for t, p in zip(texts, problems, strict=True)],
                          dtype=np.float64)
        acc = self.aggregate(scores)
        return TaskResult(scores=scores, metrics={"acc": acc}, primary=acc, predictions=texts,
                          targets=[p.answer for p in problems], n_forward=len(texts))

    def data_hash(self) -> str:
        h = hashlib.sha256()
        for s in (SEARCH, TEST):
            for p in self.data[s]:
                h.update(f"{s}\x00{p.prompt}\x00{p.answer}\x00".encode())
        return h.hexdigest()[:16]

    def example_ids(self, split: str) -> list[str]:
        """sha256 of each problem's prompt, in split order."""
        return [hashlib.sha256(p.prompt.encode()).hexdigest() for p in self.data[split]]


@lru_cache(maxsize=1)
def _models():
    from evobench.tasks.webshop_mini_models import load_or_train

    return load_or_train()


def _pool():
    from evobench.models.causal_lm import pool_from_models

    tok, models = _models()
    return tok, pool_from_models({n: models[n] for n in SOURCES}, models["base"], tokenizers=tok)


def _positive(**values) -> None:
    for k, v in values.items():
        if v is None and k.startswith("limit_"):
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{k} must be a positive integer, got {v!r}")


def math_mini(n_search: int = 64, n_test: int = 128, max_new_tokens: int = 16, batch_size: int = 64) -> Problem:
    """English arithmetic word problems on webshop-mini's tiny agent and math LMs (shared base; trained
    once and cached): 1 iff the last number of the answer is right."""
    _positive(n_search=n_search, n_test=n_test, max_new_tokens=max_new_tokens, batch_size=batch_size)
    if n_search + n_test > MAX_PROBLEMS:
        raise ValueError(f"n_search + n_test must be at most {MAX_PROBLEMS}, got {n_search + n_test}")
    tok, pool = _pool()
    task = MathMiniTask(tok, n_search, n_test, max_new_tokens, batch_size)
    return Problem("math-mini", task, pool, baseline_defaults={"mutation_std": 0.0},
                   description="merge a tiny agent LM and a tiny math LM on English arithmetic word problems")


def webshop_mini(step_limit: int = 6, max_new_tokens: int = 24, batch_size: int = 64,
                 limit_search: int | None = None, limit_test: int | None = None) -> Problem:
    """WebShop (webshop-mini, compact prompt) on webshop-mini's tiny agent and math LMs (shared base;
    trained once and cached): score = mean reward of the purchases."""
    _positive(step_limit=step_limit, max_new_tokens=max_new_tokens, batch_size=batch_size,
              limit_search=limit_search, limit_test=limit_test)
    from evobench.scoring import LMEngine
    from evobench.tasks.webshop.task import WebShopTask, shop_splits
    from evobench.tasks.webshop_mini_models import HISTORY

    shop, splits = shop_splits(None, 0, step_limit, limit_search, limit_test)
    tok, pool = _pool()
    task = WebShopTask(shop, splits, LMEngine(tok, batch_size=batch_size, add_bos=True), max_new_tokens,
                       history=HISTORY, prompt="compact", snap=True)
    return Problem("webshop-mini", task, pool, baseline_defaults={"mutation_std": 0.0},
                   description=f"merge a tiny agent LM and a tiny math LM on WebShop ({shop.catalogue.source}, "
                               f"{len(splits[TEST])} test goals)")
