"""Shared benchmark fixtures."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a whole module, on both sides of a comparison: the harness's own work is
    single-threaded (presets run their parts with ``--threads 1``), so a multi-threaded forward pass
    would mix thread scaling into the overhead."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_FLOOR_PAIRS = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def floor_pairs(pytestconfig) -> dict[str, tuple[int, list[float], list[float]]]:
    """Per baseline: (evaluations per run, run times, the floor timed just before each run), filled
    by ``test_throughput.test_scratch_run`` and printed at the end of the session."""
    return pytestconfig.stash.setdefault(_FLOOR_PAIRS, {})


def pytest_terminal_summary(terminalreporter, config):
    import statistics

    pairs = config.stash.get(_FLOOR_PAIRS, {})
    if not pairs:
        return
    w = terminalreporter
    w.section("runner vs forward-pass floor, paired per round")
    w.line(f"{'baseline':<12} {'ms/eval (median)':>17} {'floor ms/eval':>14} {'x floor: median':>16} {'min':>6} {'max':>6}")
    for name, (steps, runs, floors) in pairs.items():
        ratios = [r / f for r, f in zip(runs, floors, strict=True)]
        w.line(f"{name:<12} {statistics.median(runs) / steps * 1e3:>17.3f} "
               f"{statistics.median(floors) / steps * 1e3:>14.3f} {statistics.median(ratios):>16.2f} "
               f"{min(ratios):>6.2f} {max(ratios):>6.2f}")
