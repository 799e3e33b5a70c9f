"""A comparison table recomputed by hand: mean, 95 % CI half width, paired t p and Holm-adjusted p."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from evobench.compare import Comparison
from evobench.config import RunConfig
from evobench.report import task_rows
from evobench.runner import RunResult
from evobench.stats import compare_to_best

SEEDS = [0, 1, 2, 3, 4]
# test scores per baseline and seed (seed 4 of "ga" is missing: that run had no test score)
SCORES = {
    "m2n2": [0.91, 0.88, 0.93, 0.90, 0.92],
    "cmaes-ps": [0.86, 0.87, 0.89, 0.84, 0.90],
    "ga": [0.80, 0.83, 0.85, 0.79, math.nan],
    "random-search": [0.70, 0.75, 0.72, 0.78, 0.71],
}


def comparison() -> Comparison:
    cfg = RunConfig(tasks="digits-specialists", baselines=",".join(SCORES), budget=10, seeds=SEEDS)
    comp = Comparison(cfg)
    for name, values in SCORES.items():
        for seed, v in zip(SEEDS, values, strict=True):
            comp.results.append(RunResult(task="digits-specialists", baseline=name, baseline_name=name,
                                          seed=seed, space="ps", budget=10, evaluations=10,
                                          best_search=0.5, test_score=v))
    comp.tables = {"digits-specialists": compare_to_best(comp.scores("digits-specialists"))}
    return comp


def hand_rows() -> dict[str, dict[str, float]]:
    """The table written out: Student-t CI, paired t-test vs the best on shared seeds, Holm by hand."""
    per_seed = {k: {s: v for s, v in zip(SEEDS, vs, strict=True) if not math.isnan(v)} for k, vs in SCORES.items()}
    out = {}
    for k, d in per_seed.items():
        x = np.array(list(d.values()))
        n = x.size
        half = st.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)
        out[k] = {"mean": x.mean(), "ci": half, "n": n}
    best = max(out, key=lambda k: out[k]["mean"])
    raw = {}
    for k in out:
        if k == best:
            continue
        shared = sorted(set(per_seed[best]) & set(per_seed[k]))
        diff = np.array([per_seed[best][s] - per_seed[k][s] for s in shared])
        t = diff.mean() / (diff.std(ddof=1) / math.sqrt(diff.size))
        raw[k] = 2.0 * st.t.sf(abs(t), diff.size - 1)
        # the same p from scipy's paired test, as a check on the hand formula
        assert raw[k] == pytest.approx(st.ttest_rel([per_seed[best][s] for s in shared],
                                                    [per_seed[k][s] for s in shared]).pvalue)
    ordered = sorted(raw, key=raw.get)
    m, running = len(ordered), 0.0
    for i, k in enumerate(ordered):  # Holm: step-down, (m - i) * p, running maximum, capped at 1
        running = max(running, min(1.0, (m - i) * raw[k]))
        out[k]["p_holm"], out[k]["p"] = running, raw[k]
    out[best]["p_holm"] = out[best]["p"] = math.nan
    return out


def test_table_rows_match_hand_computation():
    rows = task_rows(comparison(), "digits-specialists")
    want = hand_rows()
    assert [r["baseline"] for r in rows] == sorted(want, key=lambda k: -want[k]["mean"])
    assert rows[0]["baseline"] == "m2n2" and rows[0]["best"] and not any(r["best"] for r in rows[1:])
    for r in rows:
        w = want[r["baseline"]]
        assert r["seeds"] == w["n"]
        assert r["test_mean"] == pytest.approx(w["mean"], abs=1e-12)
        assert r["test_ci95"] == pytest.approx(w["ci"], rel=1e-9)
        if r["best"]:
            assert math.isnan(r["p_vs_best"]) and math.isnan(r["p_holm"])
        else:
            assert r["p_vs_best"] == pytest.approx(w["p"], rel=1e-9)
            assert r["p_holm"] == pytest.approx(w["p_holm"], rel=1e-9)


def test_hand_table_values():
    """A few of the hand values pinned as numbers, so the recomputation itself is checked."""
    want = hand_rows()
    assert want["m2n2"]["mean"] == pytest.approx(0.908)
    # sd of m2n2 = sqrt(0.00148 / 4) = 0.019235...; t(0.975, 4) = 2.776445...
    assert want["m2n2"]["ci"] == pytest.approx(2.7764451051977987 * math.sqrt(0.00148 / 4) / math.sqrt(5))
    assert want["ga"]["n"] == 4 and want["ga"]["mean"] == pytest.approx(0.8175)
    # Holm order: random-search (x3), ga (x2), cmaes-ps (x1)
    assert want["random-search"]["p"] < want["ga"]["p"] < want["cmaes-ps"]["p"]
    assert want["random-search"]["p_holm"] == pytest.approx(3 * want["random-search"]["p"])
    assert want["ga"]["p_holm"] == pytest.approx(2 * want["ga"]["p"])
    assert want["cmaes-ps"]["p_holm"] == pytest.approx(want["cmaes-ps"]["p"])
