"""ja-math-mini: the EvoLLM-JP story at toy scale -- merge a math model and a Japanese model so that
arithmetic word problems written in Japanese are answered correctly AND in Japanese.

Models (:mod:`evobench.tasks.ja_math_mini_models`): a tiny Llama base pretrained on bilingual
problems followed by their equation with a random result (no computed answers), a math specialist
``en-math`` whose lower decoder layers are fine-tuned on correct results ``a + b = c`` (it computes,
but never writes Japanese) and a Japanese specialist ``ja`` whose last decoder layer is fine-tuned on
answers ``a + b = n個`` with random ``n`` and the problem's counter word (it answers in Japanese, but
cannot add). Both are fine-tuned from the base, which is the pool's base for task vectors; the two
task vectors live in disjoint layers. Every merge space is offered (``ps``, ``params``, ``dfs``,
``ps+dfs``).

Task: Japanese word problems (``a + b`` and ``a - b`` with a, b, results in 1..18; search split 64,
test split 128, distinct texts, fixed seeds), prompt ``Q: {problem}\\nA:``, greedy generation through
:class:`evobench.scoring.LMEngine` (stop at a newline or ``Q:``, at most ``max_new_tokens``).
As MGSM-JA: the answer is the LAST number in the completion (regex ``\\d*\\.?\\d+``); ``acc`` = that
number equals the answer; ``acc_ja`` (primary metric, per-example score 1/0) = correct AND the
completion is Japanese, which here means: at least one kana/kanji character and no Latin letter
(:func:`~evobench.tasks.ja_math_mini_data.is_japanese`). ``ja_rate`` = share of Japanese completions.
Behaviour descriptors (MAP-Elites): ``acc`` and ``ja_rate``. ``predictions`` are the completions,
``targets`` the answers.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from evobench.problem import Problem
from evobench.task import SEARCH, TEST, Task, TaskResult
from evobench.tasks.ja_math_mini_data import MAX_PROBLEMS, check_answer, is_japanese, task_splits

STOP = ("\n", "Q:")


class JaMathMiniTask(Task):
    """Japanese arithmetic word problems scored by greedy generation; 1 iff right and in Japanese."""

    name = "ja-math-mini"
    primary_metric = "acc_ja"
    metrics = ("acc_ja", "acc", "ja_rate")
    descriptor_names = ("acc", "ja_rate")
    descriptor_bounds = ((0.0, 1.0), (0.0, 1.0))

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
            raise ValueError(f"ja-math-mini: unknown split {split!r} (have: {', '.join(self.data)})")
        problems, requests = self.data[split][:limit], self.requests[split][:limit]
        texts = [g.text for g in self.engine.generate(model, requests)]  # NonFiniteError on NaN/inf logits
        checked = [check_answer(t, p.answer) for t, p in zip(texts, problems, strict=True)]
        correct = np.array([c for c, _ in checked], dtype=np.float64)
        scores = np.array([j for _, j in checked], dtype=np.float64)
        japanese = np.array([is_japanese(t) for t in texts], dtype=np.float64)

        def mean(a: np.ndarray) -> float:
            return float(a.mean()) if a.size else float("nan")

        acc_ja = self.aggregate(scores)
        metrics = {"acc_ja": acc_ja, "acc": mean(correct), "ja_rate": mean(japanese)}
        desc = np.array([metrics["acc"], metrics["ja_rate"]]) if scores.size else np.zeros(2)
        return TaskResult(scores=scores, metrics=metrics, primary=acc_ja, predictions=texts,
                          targets=[p.answer for p in problems], descriptors=desc, n_forward=len(texts))

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
    from evobench.tasks.ja_math_mini_models import load_or_train

    return load_or_train()


def _check(n_search, n_test, max_new_tokens, batch_size) -> None:
    for k, v in (("n_search", n_search), ("n_test", n_test), ("max_new_tokens", max_new_tokens),
                 ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{k} must be a positive integer, got {v!r}")
    if n_search + n_test > MAX_PROBLEMS:
        raise ValueError(f"n_search + n_test must be at most {MAX_PROBLEMS}, got {n_search + n_test}")


def ja_math_mini(n_search: int = 64, n_test: int = 128, max_new_tokens: int = 16, batch_size: int = 64) -> Problem:
    """Merge a math specialist and a Japanese specialist (tiny Llamas with a shared base) so that Japanese
    word problems are answered right and in Japanese; the models are trained once and cached."""
    _check(n_search, n_test, max_new_tokens, batch_size)
    from evobench.models.causal_lm import pool_from_models

    tok, models = _models()
    pool = pool_from_models({"en-math": models["en"], "ja": models["ja"]}, models["base"], tokenizers=tok)
    task = JaMathMiniTask(tok, n_search, n_test, max_new_tokens, batch_size)
    return Problem("ja-math-mini", task, pool, baseline_defaults={"mutation_std": 0.0},
                   description="merge a tiny math LM and a tiny Japanese LM to answer Japanese "
                               "arithmetic word problems in Japanese")
