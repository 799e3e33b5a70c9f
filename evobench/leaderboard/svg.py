"""The best-so-far curve of a method on a track as inline SVG (no scripts, no external resources).

One faint step line per seed and the bold mean over seeds on a common grid
(:func:`evobench.stats.best_so_far_curves`), axes with round ticks; the track name is escaped.
"""

from __future__ import annotations

import html
import math

import numpy as np

from evobench.leaderboard.results import SeedRun
from evobench.stats import best_so_far_curves, pointwise_mean_ci


def _e(v) -> str:
    return html.escape(str(v), quote=True)


def _ticks(lo: float, hi: float, n: int = 5) -> tuple[float, float, list[float]]:
    if not hi > lo:
        lo, hi = lo - 0.5 * max(abs(lo), 1.0), hi + 0.5 * max(abs(hi), 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    lo, hi = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    return lo, hi, [lo + i * step for i in range(round((hi - lo) / step) + 1)]


def curve_svg(runs: list[SeedRun], track: str) -> str:
    """Best search fitness against evaluations: a faint step line per seed, the bold mean on a common grid."""
    curves = []
    for run in runs:
        pairs = zip(run.curve.evaluations, run.curve.best_so_far, strict=False)
        pts = [(float(x), float(y)) for x, y in pairs if y is not None and math.isfinite(y)]
        if pts and all(a[0] <= b[0] for a, b in zip(pts, pts[1:], strict=False)):
            curves.append(pts)
    if not curves:
        return '<p class="muted">No best-so-far curve was recorded.</p>'
    grid = np.array(sorted({x for c in curves for x, _ in c}))
    grid = grid if grid.size <= 400 else np.linspace(grid[0], grid[-1], 400)
    matrix = best_so_far_curves([([x for x, _ in c], [y for _, y in c]) for c in curves], grid)
    mean = [(float(x), float(y)) for x, y in zip(grid, pointwise_mean_ci(matrix)[0], strict=True)
            if math.isfinite(y)]
    ys = [y for c in curves for _, y in c]
    (x0, x1, xt), (y0, y1, yt) = _ticks(min(0.0, float(grid[0])), float(grid[-1])), _ticks(min(ys), max(ys))
    w, h, left, right, top, bottom = 680, 300, 64, 16, 12, 44

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (w - left - right)

    def sy(y: float) -> float:
        return h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)

    def line(pts: list[tuple[float, float]], attrs: str) -> str:
        steps = [pts[0]] + [p for a, b in zip(pts, pts[1:], strict=False) for p in ((b[0], a[1]), b)]
        xy = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in steps)
        return f'<polyline fill="none" {attrs} points="{xy}"/>'

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           f'role="img" data-testid="curve-{_e(track)}"><title>Best search fitness by evaluations</title>']
    out += [f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{h - bottom}" stroke="#eaeef2"/>'
            f'<text x="{sx(x):.1f}" y="{h - bottom + 16}" text-anchor="middle">{x:g}</text>' for x in xt]
    out += [f'<line x1="{left}" x2="{w - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eaeef2"/>'
            f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>' for y in yt]
    out += [line(c, 'class="seed" stroke="#0969da" stroke-opacity="0.35"') for c in curves]
    out += [line(mean, 'class="mean" stroke="#0550ae" stroke-width="2.5"'),
            f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="none" '
            f'stroke="#8c959f"/><text x="{(w + left) / 2:.0f}" y="{h - 6}" text-anchor="middle">evaluations'
            f'</text><text transform="translate(14 {(h - bottom + top) / 2:.0f}) rotate(-90)" '
            'text-anchor="middle">best search fitness</text></svg>',
            '<p class="note">Faint: one line per seed; bold: mean over seeds.</p>']
    return "\n".join(out)
