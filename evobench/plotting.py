"""Figures for benchmark reports: best-so-far search-fitness curves, one panel per task.

matplotlib (and scipy, through :mod:`evobench.stats`) is imported inside the function so that
``import evobench.plotting`` stays cheap; the figure is rendered with the Agg canvas directly, so
no global pyplot state or interactive backend is touched.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["curves_figure", "line_style", "plot_curves"]

Curve = tuple[np.ndarray, np.ndarray]

_COLOURS = 10  # matplotlib's default colour cycle, "C0".."C9"
_NAMED_STYLES = ("-", "--", ":", "-.")


def line_style(i: int) -> tuple[str, str | tuple[int, tuple[int, ...]]]:
    """(colour, linestyle) of the ``i``-th baseline; distinct for every ``i >= 0``.

    Colours cycle through C0..C9; each further round of ten takes the next line style: solid,
    dashed, dotted, dash-dot, then dash patterns ``(0, (k, 2))`` with k = 5, 6, 7, ... .
    """
    if i < 0:
        raise ValueError(f"line_style: index must be >= 0, got {i}")
    colour, rnd = f"C{i % _COLOURS}", i // _COLOURS
    if rnd < len(_NAMED_STYLES):
        return colour, _NAMED_STYLES[rnd]
    return colour, (0, (rnd - len(_NAMED_STYLES) + 5, 2))

# Grids with at most this many distinct evaluation counts use them all; larger ones use a linspace.
_MAX_GRID = 2000


def _task_grid(runs: Mapping[str, Sequence[Curve]]) -> np.ndarray:
    steps = [np.asarray(c[0], dtype=float).ravel() for seeds in runs.values() for c in seeds]
    steps = [s for s in steps if s.size]
    if not steps:
        return np.empty(0)
    grid = np.unique(np.concatenate(steps))
    if grid.size > _MAX_GRID:
        grid = np.linspace(grid[0], grid[-1], _MAX_GRID)
    return grid


def curves_figure(
    curves: Mapping[str, Mapping[str, Sequence[Curve]]],
    title: str = "",
    confidence: float = 0.95,
):
    """The figure of :func:`plot_curves` (a matplotlib ``Figure`` on an Agg canvas), not yet saved."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from evobench.stats import best_so_far_curves, pointwise_mean_ci

    if not curves:
        raise ValueError("plot_curves needs at least one task")
    for task, runs in curves.items():
        if not runs:
            raise ValueError(f"task {task!r} has no baselines to plot")
        for name, seeds in runs.items():
            if len(seeds) == 0:
                raise ValueError(f"task {task!r}, baseline {name!r} has no seed curves")

    names = sorted({b for runs in curves.values() for b in runs})
    style = {name: line_style(i) for i, name in enumerate(names)}

    n = len(curves)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(6.5 * ncols, 3.8 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)

    for ax, (task, runs) in zip(axes, curves.items(), strict=False):
        grid = _task_grid(runs)
        for name, seeds in runs.items():
            if grid.size == 0:
                break
            mat = best_so_far_curves(seeds, grid)
            mean, half = pointwise_mean_ci(mat, confidence)
            shown = ~np.isnan(mean)
            colour, ls = style[name]
            label = f"{name} (n={len(seeds)})"
            ax.plot(grid[shown], mean[shown], drawstyle="steps-post", color=colour, linestyle=ls, label=label,
                    lw=1.6)
            if len(seeds) > 1:
                ax.fill_between(
                    grid[shown],
                    (mean - half)[shown],
                    (mean + half)[shown],
                    step="post",
                    color=colour,
                    alpha=0.2,
                    lw=0,
                )
        ax.set_title(str(task))
        ax.set_xlabel("evaluations")
        ax.set_ylabel("best-so-far search fitness")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # beside the axes, never over the curves
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    if title:
        fig.suptitle(title)
    return fig


def plot_curves(
    curves: Mapping[str, Mapping[str, Sequence[Curve]]],
    path: str | os.PathLike,
    title: str = "",
    confidence: float = 0.95,
) -> Path:
    """Plot mean best-so-far search fitness against evaluations, one subplot per task.

    ``curves`` maps task -> baseline -> list over seeds of ``(evaluations, best-so-far fitness)``.
    Each baseline's seeds are put on a common per-task grid step-wise
    (:func:`evobench.stats.best_so_far_curves`); the line is the mean over the seeds that have
    started at that evaluation count, and the shaded band is the pointwise Student-t interval at
    ``confidence`` (no band for a single seed). Every baseline has its own colour and line style
    (:func:`line_style`, baselines in name order), kept across panels; each panel's legend sits to
    the right of its axes. The figure is written as PNG (dpi 110), parent folders are created, and
    the path is returned.
    """
    fig = curves_figure(curves, title, confidence)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, format="png")
    return out
