"""What surviving a kill costs: a digits-from-scratch run with its journal (every told batch appended,
evobench.journal) side by side with the same run without one, and the replay of a journal on resume.

Run: ``tox -e bench`` (or ``pytest benchmarks/test_journal.py --benchmark-only``). The journal's
overhead is ``with_journal / without_journal - 1`` (goal: <= 2 %).
"""

from __future__ import annotations

import shutil

import pytest

from evobench.journal import RunJournal
from evobench.registry import BASELINES, TASKS
from evobench.runner import run_one
from evobench.spaces import make_space

STEPS = 2000
pytestmark = pytest.mark.usefixtures("one_thread")  # benchmarks/conftest.py


@pytest.fixture(scope="module")
def scratch():
    return TASKS.get("digits-scratch")()


def _run(problem, journal=None):
    space = make_space("params", problem, 0)
    return run_one(problem, BASELINES.get("m2n2")(), space, STEPS, seed=0, journal=journal)


def test_run_without_journal(benchmark, scratch):
    benchmark.pedantic(lambda: _run(scratch), rounds=5)


def test_run_with_journal(benchmark, scratch, tmp_path):
    def go():
        shutil.rmtree(tmp_path / "j", ignore_errors=True)
        return _run(scratch, RunJournal(tmp_path / "j", {"bench": 1}))

    r = benchmark.pedantic(go, rounds=5)
    assert r.evaluations == STEPS


def test_resume_replays_a_whole_journal(benchmark, scratch, tmp_path):
    """Resuming a run killed right before its end: every batch replayed, nothing scored."""
    _run(scratch, RunJournal(tmp_path / "j", {"bench": 1}))

    def go():
        return _run(scratch, RunJournal(tmp_path / "j", {"bench": 1}))

    benchmark.pedantic(go, rounds=3)
