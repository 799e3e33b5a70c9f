"""Evaluation throughput on the digits suite, side by side with the pure forward-pass floor.

Run: ``tox -e bench`` (or ``pytest benchmarks --benchmark-only``). Each case reports the time of
``STEPS`` evaluations, so ``STEPS / mean`` is evaluations per second; the difference to
``test_floor_forward_only`` is the harness's own overhead (ask, build, score bookkeeping, tell).
"""

from __future__ import annotations

import numpy as np
import pytest

from evobench.registry import BASELINES, TASKS
from evobench.runner import run_one
from evobench.spaces import make_space

STEPS = 2000
pytestmark = pytest.mark.usefixtures("one_thread")  # benchmarks/conftest.py


@pytest.fixture(scope="module")
def scratch():
    return TASKS.get("digits-scratch")()


@pytest.fixture(scope="module")
def specialists():
    return TASKS.get("digits-specialists")()


def test_floor_forward_only(benchmark, scratch):
    """One forward pass + accuracy per evaluation, no search: the floor."""
    space = make_space("params", scratch, 0)
    model = space.build(space.initial(np.random.default_rng(0))[0])
    benchmark.pedantic(lambda: [scratch.task.evaluate(model, "search") for _ in range(STEPS)], rounds=3)


@pytest.mark.parametrize("name", ["m2n2", "ga", "map-elites", "cmaes-ps"])
def test_scratch_run(benchmark, scratch, name):
    """A from-scratch run of STEPS evaluations through the runner (what the 50k preset does)."""
    cls = BASELINES.get(name)

    def go():
        space = make_space(scratch.pick_space(cls.spaces), scratch, 0)
        return run_one(scratch, cls(), space, STEPS, seed=0)

    r = benchmark.pedantic(go, rounds=3)
    assert r.evaluations == STEPS


@pytest.mark.parametrize("name", ["cmaes-ps", "m2n2"])
def test_specialists_run(benchmark, specialists, name):
    """Merging specialists: PS (DARE-TIES merge per candidate) vs parameter-space SLERP."""
    cls = BASELINES.get(name)

    def go():
        space = make_space(specialists.pick_space(cls.spaces), specialists, 0)
        return run_one(specialists, cls(mutation_std=0.0) if "mutation_std" in cls.Config.model_fields
                       else cls(), space, STEPS // 2, seed=0)

    benchmark.pedantic(go, rounds=3)
