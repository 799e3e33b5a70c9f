"""Evaluation throughput on the digits suite, side by side with the pure forward-pass floor.

Run: ``tox -e bench`` (or ``pytest benchmarks --benchmark-only``). Each case reports the time of
``STEPS`` evaluations, so ``STEPS / mean`` is evaluations per second; the difference to
``test_floor_forward_only`` is the harness's own overhead (ask, build, score bookkeeping, tell).

On a shared machine the speed of a core drifts by 10-20 % within minutes, more than the overhead
being measured changes, so a run's time is also paired with a floor measured just before it, in
each round (pytest-benchmark's untimed ``setup``): the ratio of the two is the run's cost in floors,
and the table printed at the end (``conftest.py``) gives its median and range over the rounds.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from evobench.registry import BASELINES, TASKS
from evobench.runner import run_one
from evobench.spaces import make_space

STEPS = 2000
ROUNDS = 5
pytestmark = pytest.mark.usefixtures("one_thread")  # benchmarks/conftest.py


@pytest.fixture(scope="module")
def scratch():
    return TASKS.get("digits-scratch")()


@pytest.fixture(scope="module")
def specialists():
    return TASKS.get("digits-specialists")()


@pytest.fixture(scope="module")
def floor(scratch):
    """``STEPS`` forward passes + accuracy of one model, no search: the floor (a callable)."""
    space = make_space("params", scratch, 0)
    model = space.build(space.initial(np.random.default_rng(0))[0])
    return lambda: [scratch.task.evaluate(model, "search") for _ in range(STEPS)]


def test_floor_forward_only(benchmark, floor):
    """One forward pass + accuracy per evaluation, no search: the floor."""
    benchmark.pedantic(floor, rounds=ROUNDS)


@pytest.mark.parametrize("name", ["m2n2", "ga", "map-elites", "cmaes-ps"])
def test_scratch_run(benchmark, scratch, floor, floor_pairs, name):
    """A from-scratch run of STEPS evaluations through the runner (what the 50k preset does), each
    round after a floor of its own."""
    cls = BASELINES.get(name)
    floors: list[float] = []

    def before():
        t = time.perf_counter()
        floor()
        floors.append(time.perf_counter() - t)

    def go():
        space = make_space(scratch.pick_space(cls.spaces), scratch, 0)
        return run_one(scratch, cls(), space, STEPS, seed=0)

    r = benchmark.pedantic(go, setup=before, rounds=ROUNDS)
    assert r.evaluations == STEPS
    runs = benchmark.stats.stats.data
    assert len(runs) == len(floors) == ROUNDS
    ratios = [run / fl for run, fl in zip(runs, floors, strict=True)]
    benchmark.extra_info.update(floor_s=floors, ratio_to_floor=ratios)
    floor_pairs[name] = (STEPS, runs, floors)


@pytest.mark.parametrize("name", ["cmaes-ps", "m2n2"])
def test_specialists_run(benchmark, specialists, name):
    """Merging specialists: PS (DARE-TIES merge per candidate) vs parameter-space SLERP."""
    cls = BASELINES.get(name)

    def go():
        space = make_space(specialists.pick_space(cls.spaces), specialists, 0)
        return run_one(specialists, cls(mutation_std=0.0) if "mutation_std" in cls.Config.model_fields
                       else cls(), space, STEPS // 2, seed=0)

    benchmark.pedantic(go, rounds=3)
