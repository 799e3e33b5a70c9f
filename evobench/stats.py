"""Statistics over seeds: confidence intervals, paired tests, Holm correction, curve helpers.

Every number a benchmark table reports is computed here so that one convention holds everywhere:

* intervals are two-sided Student-t intervals over seeds (:func:`mean_ci`, :func:`pointwise_mean_ci`);
* two baselines are compared by a paired two-sided t-test over the seeds both ran
  (:func:`paired_test`), and the comparisons of every baseline against the best one are
  Holm–Bonferroni corrected (:func:`holm`, :func:`compare_to_best`);
* best-so-far curves recorded at irregular evaluation counts are put on a common grid step-wise
  (:func:`best_so_far_curves`) and thinned for logging (:func:`thin_curve`).

Scores are plain floats (higher is better); NaN scores are rejected with ``ValueError`` rather than
silently dropped, because a NaN test score means a run failed and the caller must decide what to do.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

__all__ = [
    "PairedTest", "Row", "best_so_far_curves", "compare_to_best", "holm", "mean_ci", "paired_test",
    "pointwise_mean_ci", "thin_curve",
]  # fmt: skip


def _as_1d(values, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half width of the two-sided Student-t confidence interval over seeds.

    The interval is ``mean ± t_{(1+confidence)/2, n-1} · s / √n`` with ``s`` the sample standard
    deviation (ddof=1). With a single value there is no spread to estimate; the half width is then
    reported as ``0.0`` (not NaN) so tables stay NaN-free — read it as "no interval", not "exact".
    Empty input and NaN values raise ``ValueError``.
    """
    _check_confidence(confidence)
    arr = _as_1d(values, "values")
    if arr.size == 0:
        raise ValueError("mean_ci needs at least one value, got none")
    if np.isnan(arr).any():
        raise ValueError(
            f"mean_ci got NaN values ({int(np.isnan(arr).sum())} of {arr.size}); drop failed runs first"
        )
    mean = float(arr.mean())
    if arr.size == 1:
        return mean, 0.0
    sem = float(arr.std(ddof=1)) / math.sqrt(arr.size)
    return mean, float(_st.t.ppf(0.5 + confidence / 2.0, arr.size - 1)) * sem


def pointwise_mean_ci(matrix, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise mean and t-interval half width of an ``(n_seeds, n_points)`` array.

    Unlike :func:`mean_ci`, NaN entries are allowed and mean "this seed has no value here yet" (e.g.
    before its first evaluation on a curve grid); each column uses its non-NaN entries only. A column
    with one value gets half width 0.0, a column with none gets NaN mean and NaN half width.
    """
    _check_confidence(confidence)
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"pointwise_mean_ci needs a 2-D array (seeds, points), got shape {m.shape}")
    ok = ~np.isnan(m)
    n = ok.sum(axis=0)
    filled = np.where(ok, m, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, filled.sum(axis=0) / np.maximum(n, 1), np.nan)
        sq = np.where(ok, (m - mean) ** 2, 0.0).sum(axis=0)
        sd = np.sqrt(sq / np.maximum(n - 1, 1))
        tq = _st.t.ppf(0.5 + confidence / 2.0, np.maximum(n - 1, 1))
        half = np.where(n > 1, tq * sd / np.sqrt(np.maximum(n, 1)), np.where(n == 1, 0.0, np.nan))
    return mean, half


@dataclass(frozen=True)
class PairedTest:
    """Result of :func:`paired_test`. ``mean_diff`` is ``mean(a - b)``; ``wilcoxon_p`` is None if n < 6."""

    statistic: float
    p_value: float
    mean_diff: float
    n: int
    method: str
    wilcoxon_p: float | None = None


def _paired_arrays(a, b) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise ValueError("paired_test needs both inputs as {seed: score} mappings or both as sequences")
    if isinstance(a, Mapping):
        seeds = sorted(set(a) & set(b))
        x = np.array([a[s] for s in seeds], dtype=float)
        y = np.array([b[s] for s in seeds], dtype=float)
    else:
        x, y = _as_1d(a, "a"), _as_1d(b, "b")
        if x.shape != y.shape:
            raise ValueError(f"paired_test needs equally long score lists, got {x.size} and {y.size}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("paired_test got NaN scores; drop failed seeds from both sides first")
    return x, y


def paired_test(
    a: Mapping[int, float] | Sequence[float], b: Mapping[int, float] | Sequence[float]
) -> PairedTest:
    """Paired two-sided test of ``a`` against ``b`` over seeds.

    ``a`` and ``b`` are either ``{seed: score}`` mappings (aligned on the seeds both contain) or
    equally long sequences already aligned by seed. The primary test is the paired t-test
    (``scipy.stats.ttest_rel``). It is primary because benchmark runs typically have about 5 seeds,
    and with n = 5 the exact two-sided Wilcoxon signed-rank p-value can never go below
    2 / 2**5 = 0.0625: a rank test could not reject at 5 % however large and consistent the gap.
    The exact Wilcoxon p (zero differences dropped) is still reported as ``wilcoxon_p`` when n ≥ 6,
    as a distribution-free cross-check; it is None otherwise.

    Degenerate cases: n < 2 gives ``p_value`` NaN and ``method == "n<2"``. When all differences are
    identical (zero variance, up to rounding) the t statistic is undefined. If the common difference
    is 0 there is no difference to test: statistic 0.0, ``p_value`` 1.0. If it is non-zero (e.g. two
    deterministic baselines) neither t nor p is defined: statistic and ``p_value`` are NaN and
    ``method`` says "undefined: identical differences" (a table shows no p rather than a tiny one).
    """
    x, y = _paired_arrays(a, b)
    n = int(x.size)
    d = x - y
    mean_diff = float(d.mean()) if n else math.nan
    if n < 2:
        return PairedTest(math.nan, math.nan, mean_diff, n, "n<2")
    wil = None
    if n >= 6:
        if np.all(d == 0):
            wil = 1.0
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wil = float(_st.wilcoxon(x, y, method="exact").pvalue)
    tol = 1e-12 * max(1.0, float(np.max(np.abs(np.concatenate([x, y])))))
    if float(np.ptp(d)) <= tol:
        if abs(mean_diff) <= tol:
            return PairedTest(0.0, 1.0, mean_diff, n, "paired t-test (degenerate: all differences zero)", wil)
        return PairedTest(math.nan, math.nan, mean_diff, n,
                          "paired t-test (undefined: identical differences, non-zero)", wil)
    res = _st.ttest_rel(x, y)
    return PairedTest(float(res.statistic), float(res.pvalue), mean_diff, n, "paired t-test", wil)


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm–Bonferroni step-down adjusted p-values, keyed and ordered like the input.

    With the m non-NaN p-values sorted ascending, ``p_adj(i) = max_{j≤i} min(1, (m - j + 1) p(j))``.
    NaN p-values pass through unchanged and do not count towards m.
    """
    out = {k: float(v) for k, v in pvalues.items()}
    valid = sorted((p, k) for k, p in out.items() if not math.isnan(p))
    for p, k in valid:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"holm got p-value {p} for {k!r}, outside [0, 1]")
    m = len(valid)
    running = 0.0
    for i, (p, k) in enumerate(valid):
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
    return out


@dataclass(frozen=True)
class Row:
    """One line of a comparison table. ``ci`` is the t half width; p-values are NaN for the best row."""

    baseline: str
    mean: float
    ci: float
    n: int
    p_vs_best: float
    p_holm: float
    is_best: bool
    wilcoxon_p: float | None = None  # exact Wilcoxon vs best (unadjusted), n >= 6 only


def compare_to_best(scores: Mapping[str, Mapping[int, float]], confidence: float = 0.95) -> list[Row]:
    """Compare every baseline to the one with the highest mean test score.

    ``scores`` maps baseline -> {seed: test score}. The best baseline is the highest mean (ties broken
    by name). Each other baseline gets :func:`paired_test` against the best on the seeds both have
    (a seed missing on either side is left out of that comparison; fewer than 2 shared seeds, or
    identical non-zero differences, give p NaN), then the p-values are Holm-corrected together (a
    NaN p stays NaN and does not count in Holm's m). Rows are sorted by mean, descending.
    """
    if not scores:
        raise ValueError("compare_to_best needs at least one baseline")
    summary: dict[str, tuple[float, float, int]] = {}
    for name, per_seed in scores.items():
        if not per_seed:
            raise ValueError(f"baseline {name!r} has no seed scores")
        mean, half = mean_ci(list(per_seed.values()), confidence)
        summary[name] = (mean, half, len(per_seed))
    order = sorted(summary, key=lambda k: (-summary[k][0], k))
    best = order[0]
    tests = {k: paired_test(scores[best], scores[k]) for k in order[1:]}
    raw = {k: t.p_value for k, t in tests.items()}
    adj = holm(raw)
    nan = math.nan
    return [Row(k, *summary[k], raw.get(k, nan), adj.get(k, nan), k == best,
                tests[k].wilcoxon_p if k in tests else None) for k in order]


def best_so_far_curves(curves: Sequence[tuple[Sequence[float], Sequence[float]]], grid) -> np.ndarray:
    """Put step curves ``(evaluations, best-so-far)`` on a common ``grid``; shape (n_curves, len(grid)).

    The value at a grid point is the last recorded value at or before it (step-wise, no linear
    interpolation); before a curve's first evaluation it is NaN. Evaluations must be non-decreasing;
    at repeated evaluation counts the last value wins. Values are taken as given (no running max).
    """
    g = _as_1d(grid, "grid")
    out = np.full((len(curves), g.size), np.nan)
    for i, curve in enumerate(curves):
        if len(curve) != 2:
            raise ValueError(f"curve {i} must be a pair (evaluations, values)")
        steps, vals = _as_1d(curve[0], f"curve {i} evaluations"), _as_1d(curve[1], f"curve {i} values")
        if steps.shape != vals.shape:
            raise ValueError(f"curve {i}: {steps.size} evaluations but {vals.size} values")
        if steps.size == 0:
            continue
        if np.any(np.diff(steps) < 0):
            raise ValueError(f"curve {i}: evaluations must be non-decreasing")
        idx = np.searchsorted(steps, g, side="right") - 1
        out[i] = np.where(idx >= 0, vals[np.clip(idx, 0, None)], np.nan)
    return out


def thin_curve(steps, values, max_points: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Thin a long step curve for logging: at most ``max_points`` points, endpoints always kept.

    Keeps the first and last point and every point whose value differs from the previous one (NaN
    counts as equal to NaN), which is lossless under step-wise interpolation. If more than
    ``max_points`` remain, they are subsampled uniformly by position, still keeping both endpoints.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    s, v = _as_1d(steps, "steps"), _as_1d(values, "values")
    if s.shape != v.shape:
        raise ValueError(f"thin_curve: {s.size} steps but {v.size} values")
    if s.size <= 2:
        return s.copy(), v.copy()
    prev, cur = v[:-1], v[1:]
    changed = (prev != cur) & ~(np.isnan(prev) & np.isnan(cur))
    keep = np.flatnonzero(np.concatenate([[True], changed]))
    if keep[-1] != s.size - 1:
        keep = np.append(keep, s.size - 1)
    if keep.size > max_points:
        pos = np.unique(np.round(np.linspace(0, keep.size - 1, max_points)).astype(int))
        keep = keep[pos]
    return s[keep], v[keep]
