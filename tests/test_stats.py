"""Hand-computed checks for evobench.stats and a smoke test for evobench.plotting."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as st

from evobench.stats import (
    PairedTest,
    best_so_far_curves,
    compare_to_best,
    holm,
    mean_ci,
    paired_test,
    pointwise_mean_ci,
    thin_curve,
)

T_975_2 = 4.302652729749464  # Student-t 97.5 % quantile, 2 degrees of freedom


# ---------------------------------------------------------------- mean_ci
def test_mean_ci_hand_example():
    mean, half = mean_ci([1, 2, 3])
    assert mean == pytest.approx(2.0)
    # s = 1, n = 3: half = t_{0.975,2} * 1 / sqrt(3)
    assert half == pytest.approx(T_975_2 / math.sqrt(3))
    assert half == pytest.approx(2.4841, abs=1e-4)


def test_mean_ci_single_value_and_constant():
    assert mean_ci([0.7]) == (0.7, 0.0)
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 0.0)


def test_mean_ci_confidence_level():
    _, h90 = mean_ci([1, 2, 3], confidence=0.90)
    assert h90 == pytest.approx(st.t.ppf(0.95, 2) / math.sqrt(3))


def test_mean_ci_errors():
    with pytest.raises(ValueError, match="NaN"):
        mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="at least one value"):
        mean_ci([])
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1, 2], confidence=1.5)
    with pytest.raises(ValueError, match="one-dimensional"):
        mean_ci([[1, 2], [3, 4]])


def test_pointwise_mean_ci_handles_missing_seeds():
    mat = np.array([[np.nan, 1.0, 1.0], [np.nan, np.nan, 2.0], [np.nan, np.nan, 3.0]])
    mean, half = pointwise_mean_ci(mat)
    assert np.isnan(mean[0]) and np.isnan(half[0])
    assert mean[1] == 1.0 and half[1] == 0.0
    assert mean[2] == pytest.approx(2.0) and half[2] == pytest.approx(T_975_2 / math.sqrt(3))


# ---------------------------------------------------------------- paired_test
def test_paired_test_hand_example():
    # d = [2, 3, 3]: mean 8/3, s = sqrt(1/3), t = (8/3) / (s / sqrt 3) = 8.
    # For 2 df, F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - 8 / sqrt(66).
    r = paired_test([3, 5, 7], [1, 2, 4])
    assert isinstance(r, PairedTest)
    assert r.statistic == pytest.approx(8.0)
    assert r.p_value == pytest.approx(1 - 8 / math.sqrt(66))
    assert r.mean_diff == pytest.approx(8 / 3)
    assert r.n == 3 and r.method == "paired t-test"
    assert r.wilcoxon_p is None


def test_paired_test_matches_scipy_and_wilcoxon():
    rng = np.random.default_rng(0)
    a = rng.normal(size=8)
    b = a - 0.3 + 0.2 * rng.normal(size=8)
    r = paired_test(a, b)
    ref = st.ttest_rel(a, b)
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)
    assert r.wilcoxon_p == pytest.approx(st.wilcoxon(a, b, method="exact").pvalue)


def test_paired_test_wilcoxon_floor():
    # Six seeds, all in favour of a: exact two-sided p = 2 / 2^6. With five seeds no Wilcoxon is reported.
    six = paired_test([1.5, 2.5, 3.1, 4.9, 5.2, 6.8], [1, 2, 3, 4, 5, 6])
    assert six.wilcoxon_p == pytest.approx(2 / 64)
    assert paired_test([1.5, 2.5, 3.1, 4.9, 5.2], [1, 2, 3, 4, 5]).wilcoxon_p is None


def test_paired_test_aligns_mappings_by_seed():
    a = {0: 3.0, 1: 5.0, 2: 7.0, 9: 100.0}
    b = {2: 4.0, 1: 2.0, 0: 1.0, 5: -100.0}
    r = paired_test(a, b)
    assert r.n == 3
    assert r.statistic == pytest.approx(8.0)


def test_paired_test_degenerate_cases():
    same = paired_test([1, 2, 3], [1, 2, 3])
    assert same.p_value == 1.0 and "degenerate" in same.method
    assert same.statistic == 0.0
    # identical non-zero differences (deterministic baselines): t and p are undefined, not p = 0
    shifted = paired_test([1, 2, 3], [0, 1, 2])
    assert math.isnan(shifted.p_value) and math.isnan(shifted.statistic)
    assert "undefined: identical differences" in shifted.method and shifted.mean_diff == 1.0
    # Differences equal up to floating-point rounding count as identical too.
    fp = paired_test([0.3, 0.5, 0.7], [0.1, 0.3, 0.5])
    assert math.isnan(fp.p_value) and "undefined: identical differences" in fp.method
    one = paired_test([1.0], [0.5])
    assert math.isnan(one.p_value) and one.method == "n<2" and one.mean_diff == 0.5


def test_compare_to_best_identical_differences_give_nan_and_holm_skips_them():
    scores = {"A": {0: 0.9, 1: 0.8, 2: 0.7}, "B": {0: 0.8, 1: 0.7, 2: 0.6},  # B = A - 0.1 on every seed
              "C": {0: 0.5, 1: 0.7, 2: 0.4}}
    rows = {r.baseline: r for r in compare_to_best(scores)}
    assert math.isnan(rows["B"].p_vs_best) and math.isnan(rows["B"].p_holm)
    # C alone counts in Holm: m = 1, so its adjusted p equals its raw paired t p
    d = np.array([0.9 - 0.5, 0.8 - 0.7, 0.7 - 0.4])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    p = 2 * st.t.sf(abs(t), 2)
    assert rows["C"].p_vs_best == pytest.approx(p) and rows["C"].p_holm == pytest.approx(p)


def test_paired_test_errors():
    with pytest.raises(ValueError, match="equally long"):
        paired_test([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        paired_test([1, float("nan")], [1, 2])
    with pytest.raises(ValueError, match="mappings"):
        paired_test({0: 1.0}, [1.0])


# ---------------------------------------------------------------- holm
def test_holm_hand_example():
    # m = 3 valid: sorted a .01, c .03, b .04 -> .03, .06, max(.06, .04) = .06
    out = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": float("nan")})
    assert list(out) == ["a", "b", "c", "d"]
    assert out["a"] == pytest.approx(0.03)
    assert out["c"] == pytest.approx(0.06)
    assert out["b"] == pytest.approx(0.06)
    assert math.isnan(out["d"])


def test_holm_caps_at_one_and_empty():
    assert holm({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}
    assert holm({}) == {}
    with pytest.raises(ValueError, match="outside"):
        holm({"x": 1.5})


# ---------------------------------------------------------------- compare_to_best
def test_compare_to_best_order_and_seed_alignment():
    scores = {
        "B": {0: 0.5, 1: 1.7, 2: 2.4},  # seed 3 missing
        "A": {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0},
        "C": {0: 0.1, 1: 0.2, 2: 0.2, 3: 0.4},
    }
    rows = compare_to_best(scores)
    assert [r.baseline for r in rows] == ["A", "B", "C"]
    best, b, c = rows
    assert best.is_best and not b.is_best and not c.is_best
    assert math.isnan(best.p_vs_best) and math.isnan(best.p_holm)
    assert best.mean == pytest.approx(2.5) and best.n == 4
    assert b.n == 3 and b.mean == pytest.approx((0.5 + 1.7 + 2.4) / 3)
    # B is compared on seeds 0..2 only.
    assert b.p_vs_best == pytest.approx(st.ttest_rel([1, 2, 3], [0.5, 1.7, 2.4]).pvalue)
    assert c.p_vs_best == pytest.approx(st.ttest_rel([1, 2, 3, 4], [0.1, 0.2, 0.2, 0.4]).pvalue)
    assert {"B": b.p_holm, "C": c.p_holm} == pytest.approx(holm({"B": b.p_vs_best, "C": c.p_vs_best}))
    assert b.ci == pytest.approx(mean_ci([0.5, 1.7, 2.4])[1])


def test_compare_to_best_single_baseline_and_errors():
    rows = compare_to_best({"only": {0: 1.0}})
    assert len(rows) == 1 and rows[0].is_best and rows[0].ci == 0.0
    with pytest.raises(ValueError, match="at least one baseline"):
        compare_to_best({})
    with pytest.raises(ValueError, match="no seed scores"):
        compare_to_best({"x": {}})
    with pytest.raises(ValueError, match="NaN"):
        compare_to_best({"x": {0: float("nan")}})


# ---------------------------------------------------------------- curves
def test_best_so_far_curves_stepwise():
    grid = [0, 1, 2, 3, 5, 6, 10]
    curves = [([1, 3, 6], [0.1, 0.5, 0.7]), (np.array([2, 2, 5]), np.array([0.2, 0.3, 0.9]))]
    out = best_so_far_curves(curves, grid)
    assert out.shape == (2, 7)
    np.testing.assert_allclose(out[0], [np.nan, 0.1, 0.1, 0.5, 0.5, 0.7, 0.7])
    np.testing.assert_allclose(out[1], [np.nan, np.nan, 0.3, 0.3, 0.9, 0.9, 0.9])  # last of repeats wins


def test_best_so_far_curves_errors():
    with pytest.raises(ValueError, match="non-decreasing"):
        best_so_far_curves([([3, 1], [0.0, 1.0])], [0, 1])
    with pytest.raises(ValueError, match="2 evaluations but 3 values"):
        best_so_far_curves([([1, 2], [0.0, 1.0, 2.0])], [0, 1])


def test_thin_curve_keeps_changes_and_endpoints():
    steps = np.arange(10)
    values = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2], dtype=float)
    s, v = thin_curve(steps, values)
    np.testing.assert_array_equal(s, [0, 2, 5, 9])
    np.testing.assert_array_equal(v, [0, 1, 2, 2])
    # Lossless under step-wise interpolation.
    np.testing.assert_array_equal(best_so_far_curves([(s, v)], steps)[0], values)


def test_thin_curve_respects_max_points():
    steps = np.arange(10_000)
    values = np.sqrt(steps)  # changes at every step
    s, v = thin_curve(steps, values, max_points=500)
    assert s.size == v.size == 500
    assert s[0] == 0 and s[-1] == 9_999
    assert np.all(np.diff(s) > 0)
    s2, _ = thin_curve([1, 2, 3], [1.0, 1.0, 1.0], max_points=2)
    np.testing.assert_array_equal(s2, [1, 3])
    with pytest.raises(ValueError, match="max_points"):
        thin_curve(steps, values, max_points=1)


# ---------------------------------------------------------------- plotting
def test_plot_curves_writes_png(tmp_path):
    from evobench.plotting import plot_curves

    rng = np.random.default_rng(1)

    def curve(n):
        ev = np.sort(rng.choice(np.arange(1, 200), size=n, replace=False))
        return ev, np.maximum.accumulate(rng.random(n))

    curves = {
        "task_a": {"cma": [curve(30) for _ in range(3)], "random": [curve(25)]},  # single seed: no band
        "task_b": {"cma": [curve(20) for _ in range(2)]},
    }
    out = plot_curves(curves, tmp_path / "sub" / "curves.png", title="demo")
    data = out.read_bytes()
    assert out == tmp_path / "sub" / "curves.png"
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least one task"):
        plot_curves({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no seed curves"):
        plot_curves({"t": {"b": []}}, tmp_path / "x.png")


def test_line_styles_are_distinct_for_many_baselines():
    from evobench.plotting import line_style

    styles = [line_style(i) for i in range(500)]
    assert len(set(styles)) == 500
    assert styles[0] == ("C0", "-") and styles[10] == ("C0", "--") and styles[13] == ("C3", "--")
    assert styles[40] == ("C0", (0, (5, 2))) and styles[51] == ("C1", (0, (6, 2)))


def test_curves_figure_many_baselines_distinct_styles_and_legend_outside():
    from matplotlib.colors import to_rgba

    from evobench.plotting import curves_figure

    rng = np.random.default_rng(2)
    ev = np.arange(1, 51)
    names = [f"baseline-{i:02d}" for i in range(14)]
    runs = {n: [(ev, np.maximum.accumulate(rng.random(50))) for _ in range(2)] for n in names}
    fig = curves_figure({"task_a": runs, "task_b": dict(list(runs.items())[:3])})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax_a, ax_b = fig.axes[:2]
    pairs = [(to_rgba(line.get_color()), line.get_linestyle()) for line in ax_a.get_lines()]
    assert len(pairs) == 14 and len(set(pairs)) == 14  # colours repeat past ten; the pairs never do
    assert {ls for _, ls in pairs} == {"-", "--"}
    # a baseline keeps its style across panels
    assert [(to_rgba(x.get_color()), x.get_linestyle()) for x in ax_b.get_lines()] == pairs[:3]
    for ax in (ax_a, ax_b):
        legend = ax.get_legend().get_window_extent(renderer)
        area = ax.get_window_extent(renderer)
        assert not legend.overlaps(area)
        assert legend.x0 >= area.x1  # to the right of the axes
        assert fig.bbox.contains(legend.x1 - 1, legend.y0 + 1)  # and inside the figure


def test_import_plotting_is_light():
    code = "import sys, evobench.plotting; print('matplotlib' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def test_compare_to_best_carries_the_wilcoxon_p_from_six_seeds():
    from evobench.stats import compare_to_best

    seeds = range(6)
    rows = compare_to_best({"a": {s: 0.9 + 0.01 * s for s in seeds}, "b": {s: 0.5 + 0.02 * s for s in seeds}})
    best, other = rows
    assert best.wilcoxon_p is None and other.wilcoxon_p == pytest.approx(2 / 64)
    five = compare_to_best({"a": {s: 0.9 + 0.01 * s for s in range(5)}, "b": {s: 0.5 for s in range(5)}})
    assert five[1].wilcoxon_p is None
