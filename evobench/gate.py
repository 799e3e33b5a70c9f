"""The regression gate's statistics and `evobench results diff`: is a candidate model worse than a
reference on the same examples, by more than a margin, beyond chance?

Per task, the two models' per-example scores are paired by example (the same examples in the same
order, checked by their ids). The effect is ``delta = mean(candidate) - mean(reference)`` and the
margin ``m`` (in points: 1.0 = one percentage point of a score in [0, 1]) says how much worse is
tolerated. The null hypothesis is "no regression beyond the margin", ``delta >= -m``; a **regression**
is its rejection at level ``alpha`` (one-sided), reported with the effect, its 95 % interval and the
p-value.

* **Per-example correctness** (every score 0 or 1): an exact McNemar test on the discordant pairs
  (``b`` examples right before and wrong now, ``c`` the reverse). Conditional on ``n_d = b + c``,
  ``b ~ Binomial(n_d, pi)``; at the margin's boundary ``p_b - p_c = m`` with ``p_b + p_c = n_d / n``,
  so ``pi0 = (n_d / n + m) / (2 n_d / n)``, and ``p = P(Binomial(n_d, pi0) >= b)``. With ``m = 0``
  this is the exact one-sided McNemar test (``pi0 = 1/2``); when ``pi0 >= 1`` (the discordant pairs
  cannot make up a regression of ``m``) ``p = 1``.
* **Graded scores** (ROUGE, CLIP, rewards): a seeded paired bootstrap of the mean difference
  (examples resampled with replacement, :data:`N_BOOT` times, ``numpy.random.default_rng(seed)``),
  ``p = (1 + #{delta* >= -m}) / (N_BOOT + 1)``.

The interval shown is the paired bootstrap's 95 % percentile interval of ``delta`` for both kinds.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evobench.config import ConfigError

N_BOOT = 10_000


class GateRefusal(ConfigError):
    """Two results that cannot be compared (other examples, task versions, prompts, tokenizers)."""


@dataclass
class Verdict:
    task: str
    kind: str  # "binary" (exact McNemar) or "graded" (paired bootstrap)
    examples: int
    reference: float  # mean score, in [0, 1]
    candidate: float
    effect: float  # candidate - reference
    ci95: tuple[float, float]  # bootstrap percentile interval of the effect
    p: float  # one-sided: regression beyond the margin
    regression: bool
    margin: float  # in the scores' own units (points / 100)
    discordant: dict[str, int] = field(default_factory=dict)  # binary: {"worse": b, "better": c}


def mcnemar_regression_p(worse: int, better: int, n: int, margin: float = 0.0) -> float:
    """One-sided exact conditional McNemar p-value for "the candidate is worse by more than
    ``margin``" from ``worse``/``better`` discordant pairs among ``n`` examples (see the module)."""
    from scipy.stats import binom

    if min(worse, better) < 0 or worse + better > n or n <= 0:
        raise ValueError(f"mcnemar: need 0 <= worse + better <= n, got {worse}, {better}, {n}")
    nd = worse + better
    if nd == 0:
        return 1.0
    pi0 = 0.5 + margin * n / (2 * nd)
    if pi0 >= 1.0:
        return 1.0
    return float(binom.sf(worse - 1, nd, pi0))


def paired_bootstrap(reference: np.ndarray, candidate: np.ndarray, margin: float = 0.0, seed: int = 0,
                     n_boot: int = N_BOOT) -> tuple[float, tuple[float, float]]:
    """(one-sided p for a regression beyond ``margin``, 95 % percentile interval of the effect)."""
    d = np.asarray(candidate, dtype=float) - np.asarray(reference, dtype=float)
    n = d.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 1000):  # bounded memory: 1,000 resamples at a time
        k = min(1000, n_boot - start)
        means[start:start + k] = d[rng.integers(0, n, size=(k, n))].mean(axis=1)
    p = (1 + int(np.count_nonzero(means >= -margin))) / (n_boot + 1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(p), (float(lo), float(hi))


def verdict(task: str, reference: np.ndarray, candidate: np.ndarray, alpha: float = 0.05, margin: float = 1.0,
            seed: int = 0) -> Verdict:
    """Compare per-example scores (same examples, same order); ``margin`` in points."""
    r, c = np.asarray(reference, dtype=float), np.asarray(candidate, dtype=float)
    if r.shape != c.shape or r.ndim != 1 or r.size == 0:
        raise GateRefusal(f"task {task!r}: {r.size} reference scores vs {c.size} candidate scores")
    if not (np.isfinite(r).all() and np.isfinite(c).all()):
        raise GateRefusal(f"task {task!r}: non-finite per-example scores")
    if not 0 < alpha < 1 or not math.isfinite(margin) or margin < 0:
        raise ConfigError(f"alpha must be in (0, 1) and margin >= 0, got {alpha}, {margin}")
    m = margin / 100.0
    p_boot, ci = paired_bootstrap(r, c, m, seed)
    binary = bool(np.isin(r, (0.0, 1.0)).all() and np.isin(c, (0.0, 1.0)).all())
    disc: dict[str, int] = {}
    if binary:
        worse, better = int(np.sum((r == 1) & (c == 0))), int(np.sum((r == 0) & (c == 1)))
        disc = {"worse": worse, "better": better}
        p = mcnemar_regression_p(worse, better, r.size, m)
    else:
        p = p_boot
    return Verdict(task, "binary" if binary else "graded", int(r.size), float(r.mean()), float(c.mean()),
                   float(c.mean() - r.mean()), ci, p, p < alpha, m, disc)


# ---- stored results: `evobench eval` folders ------------------------------------------------------

def _read_eval(folder: Path) -> tuple[dict[str, Any], Path]:
    f = folder / "results.json" if folder.is_dir() else folder
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise GateRefusal(f"{str(f)!r} is not a results file ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise GateRefusal(f"{str(f)!r} is not the results of `evobench eval` (no 'tasks')")
    return data, f.parent


def _records(folder: Path, task: str) -> list[dict[str, Any]]:
    from evobench.rundir import records_file

    f = folder / records_file(task)
    try:
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise GateRefusal(f"{str(f)!r}: no per-example records of task {task!r} ({type(e).__name__})") from None
    if not all(isinstance(r, dict) and isinstance(r.get("score"), int | float) for r in rows):
        raise GateRefusal(f"{str(f)!r}: a record has no numeric score")
    return rows


_SAME = ("split", "limit")
_TASK_SAME = ("data_hash", "task_version", "options")


def _fingerprint(record: Any) -> dict[str, Any]:
    """What must match between two records of one example: its id, the hashes of every prompt the
    model was given (language-model records nest them), and the token counts of those prompts (the
    same prompt with other counts means another tokenizer)."""
    prompts, tokens = [], []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if "prompt_sha256" in x:
                prompts.append(x["prompt_sha256"])
                tokens.append(x.get("n_prompt_tokens", x.get("n_tokens")))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(record)
    return {"example_id": record.get("example_id"), "prompt": prompts, "tokenizer": tokens}


def diff(reference: str | Path, candidate: str | Path, tasks: list[str] | None = None, alpha: float = 0.05,
         margin: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Compare two stored `evobench eval` results task by task (refusing what cannot be compared)."""
    ref, ref_dir = _read_eval(Path(reference))
    cand, cand_dir = _read_eval(Path(candidate))
    for k in _SAME:
        if ref.get(k) != cand.get(k):
            raise GateRefusal(f"the results differ in {k}: reference {ref.get(k)!r}, candidate {cand.get(k)!r}")
    names = tasks or sorted(ref["tasks"])
    out = []
    for t in names:
        if t not in ref["tasks"] or t not in cand["tasks"]:
            raise GateRefusal(f"task {t!r} is not in both results (reference: {sorted(ref['tasks'])}, "
                              f"candidate: {sorted(cand['tasks'])})")
        for k in _TASK_SAME:
            a, b = ref["tasks"][t].get(k), cand["tasks"][t].get(k)
            if a != b:
                raise GateRefusal(f"task {t!r}: the results differ in {k} (reference {a!r}, candidate {b!r})")
        rr, cr = _records(ref_dir, t), _records(cand_dir, t)
        if len(rr) != len(cr):
            raise GateRefusal(f"task {t!r}: {len(rr)} reference examples vs {len(cr)} candidate examples")
        for i, (a, b) in enumerate(zip(rr, cr, strict=True)):
            fa, fb = _fingerprint(a), _fingerprint(b)
            for k, what in (("example_id", "another example"), ("prompt", "another prompt"),
                            ("tokenizer", "another tokenizer (same prompt, other token counts)")):
                if fa[k] != fb[k]:
                    raise GateRefusal(f"task {t!r}, example {i}: {what} ({k} {str(fa[k])[:70]} vs {str(fb[k])[:70]})")
        out.append(verdict(t, np.array([r["score"] for r in rr]), np.array([r["score"] for r in cr]),
                           alpha, margin, seed))
    return {"reference": str(reference), "candidate": str(candidate), "alpha": alpha, "margin_points": margin,
            "seed": seed, "regression": any(v.regression for v in out), "tasks": [asdict(v) for v in out]}


def check(candidate: str, reference: str, tasks: list[str] | None = None, limit: int | None = None,
          alpha: float = 0.05, margin: float = 1.0, seed: int = 0, out: str = "evobench-results",
          device: str = "auto") -> dict[str, Any]:
    """`evobench check`: score ``candidate`` on exactly the examples of ``reference`` and :func:`diff`.

    ``reference`` is a stored `evobench eval` result (folder or results.json; its split, limit and
    task options are reused), or a checkpoint, which is scored first with ``tasks`` and ``limit``.
    Both results are written under ``out``."""
    from evobench.evaluate import run_eval

    ref_path = Path(reference)
    stored = ref_path.is_file() and ref_path.name == "results.json" or (ref_path / "results.json").is_file()
    if stored:
        data, _ = _read_eval(ref_path)
        names = tasks or sorted(data["tasks"])
        missing = [t for t in names if t not in data["tasks"]]
        if missing:
            raise GateRefusal(f"the reference was not scored on {missing} (it has {sorted(data['tasks'])})")
        if limit is not None and limit != data.get("limit"):
            raise GateRefusal(f"--limit {limit}: the reference was scored with limit {data.get('limit')!r}")
        split, limit = data.get("split", "test"), data.get("limit")
        options = {t: dict(data["tasks"][t].get("options") or {}) for t in names}
    else:
        if not tasks:
            raise ConfigError("check: give --tasks when the reference is a checkpoint, not stored results")
        names, split, options = tasks, "test", {}
        ref_path, _ = run_eval(reference, names, out, split=split, limit=limit, device=device, name="reference",
                               options=options)
    cand_path, _ = run_eval(candidate, names, out, split=split, limit=limit, device=device, name="candidate",
                            options=options)
    return diff(ref_path, cand_path, names, alpha=alpha, margin=margin, seed=seed)


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (for a pull-request comment)."""
    head = "**Regression**" if report["regression"] else "No significant regression"
    lines = [f"{head} (alpha {report['alpha']}, margin {report['margin_points']} points)", "",
             "| task | test | examples | reference | candidate | effect (95 % CI) | p | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for v in report["tasks"]:
        lo, hi = v["ci95"]
        test = "exact McNemar" if v["kind"] == "binary" else "paired bootstrap"
        lines.append(f"| {v['task']} | {test} | {v['examples']} | {100 * v['reference']:.2f} | "
                     f"{100 * v['candidate']:.2f} | {100 * v['effect']:+.2f} ({100 * lo:+.2f}, {100 * hi:+.2f}) | "
                     f"{v['p']:.3g} | {'REGRESSION' if v['regression'] else 'ok'} |")
    return "\n".join(lines) + "\n"
