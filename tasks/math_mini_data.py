"""math-mini data: English arithmetic word problems from ja-math-mini's templates, fixed seeds.

A problem is ``a + b`` (a, b in 1..9) or ``a - b`` (a = b + c; b, c in 1..9), told as a short
English word problem (:func:`evobench.tasks.ja_math_mini_data.make_problem`). The task's problems are
distinct texts from their own seeded stream, additions and subtractions alternating; the first
:data:`MAX_PROBLEMS` are reserved (never a training text). Prompts are ``Q: {problem}\\nA:``; the
answer is the last number of the completion (MGSM's rule).

Training texts: ``"base"`` -- a problem followed by its restatement only (`` a + b``, no answer);
``"math"`` -- worked answers `` a + b = c.`` (a share ``bare`` to bare equations).
"""

from __future__ import annotations

import random

from evobench.tasks.ja_math_mini_data import WordProblem, make_problem

MAX_PROBLEMS = 512


def task_problems(n: int = MAX_PROBLEMS) -> list[WordProblem]:
    """The first ``n`` task problems (English, distinct texts, additions and subtractions alternating)."""
    rng = random.Random("math-mini-task")
    seen: set[str] = set()
    out: list[WordProblem] = []
    while len(out) < n:
        p = make_problem(rng, "en", "+" if len(out) % 2 == 0 else "-")
        if p.text not in seen:
            seen.add(p.text)
            out.append(p)
    return out


def task_splits(n_search: int = 64, n_test: int = 128) -> dict[str, list[WordProblem]]:
    """The first ``n_search`` task problems, then the next ``n_test``."""
    problems = task_problems(n_search + n_test)
    return {"search": problems[:n_search], "test": problems[n_search:]}


def training_texts(kind: str, n: int, seed: int, bare: float = 0.0) -> list[tuple[str, tuple[tuple[str, bool], ...]]]:
    """``n`` ``(prompt, segments)`` texts of ``kind`` ``"base"`` or ``"math"``, none a task problem."""
    if kind not in ("base", "math"):
        raise ValueError(f"math-mini: unknown training kind {kind!r}")
    exclude = {p.text for p in task_problems()}
    rng = random.Random(f"math-mini-{kind}-{seed}")
    out: list[tuple[str, tuple[tuple[str, bool], ...]]] = []
    while len(out) < n:
        p = make_problem(rng, "en")
        if p.text in exclude:
            continue
        if kind == "math" and rng.random() < bare:
            p = WordProblem("en", p.op, p.a, p.b, p.equation)
        answer = f" {p.equation}" if kind == "base" else f" {p.equation} = {p.answer}."
        out.append((p.prompt, ((answer, True),)))
    return out
