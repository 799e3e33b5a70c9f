"""Equal start: every baseline on a task gets the same free starting evaluations (the starting models),
and each space seeds its baseline with the genomes that build those models exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evobench.registry import BASELINES, TASKS
from evobench.runner import run_one
from evobench.spaces import make_space
from evobench.task import SEARCH


@pytest.fixture(scope="module")
def blocks():
    return TASKS.get("digits-specialists-blocks")()


def logits(model, problem):
    x, _ = problem.task.data[SEARCH]
    with torch.no_grad():
        return model(x[:64])


@pytest.mark.parametrize("kind, options", [
    ("ps", {}), ("ps", {"granularity": "tensor"}), ("ps", {"op": "ties"}), ("ps", {"op": "linear"}),
    ("ps", {"op": "task_arithmetic"}), ("ps+dfs", {}), ("ps+dfs", {"keep_sources": False}), ("params", {}),
])
def test_starting_genomes_build_the_sources_exactly(blocks, kind, options):
    space = make_space(kind, blocks, 0, **options)
    states = [s for _, s in blocks.pool.sources]
    idx, x0 = space.starting_genomes(states)
    assert idx == [0, 1] and x0.shape == (2, space.dim)
    for i, g in zip(idx, x0, strict=True):
        want = logits(blocks.pool.family.build(states[i]), blocks)
        got = logits(space.build(g), blocks)
        if kind == "params":
            assert torch.equal(got, want)
        else:  # base + (source - base) is the source up to float rounding
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=f"{kind} {options} source {i}")
            other = logits(blocks.pool.family.build(states[1 - i]), blocks)
            assert not torch.allclose(got, other, atol=1e-3)


def test_dfs_expresses_only_the_first_source(blocks):
    space = make_space("dfs", blocks)
    idx, x0 = space.starting_genomes([s for _, s in blocks.pool.sources])
    assert idx == [0]
    a = blocks.pool.sources[0][1]
    assert torch.equal(logits(space.build(x0[0]), blocks), logits(blocks.pool.family.build(a), blocks))


def test_ps_with_a_non_weight_knob_op_expresses_nothing(blocks):
    from evobench.spaces.ps import PSSpace

    ps = PSSpace(blocks.pool)
    ps.knobs = [type(ps.knobs[0])("gamma", 0.0, 1.0, "other", per_model=True)]  # an op with another knob
    assert ps.source_genome(0) is None


def test_every_baseline_gets_the_same_free_start(blocks):
    """Same step 0 (the best source's search accuracy) and the same starting forward passes, whatever the
    baseline or space; the sources' scores are computed here directly."""
    acc = [blocks.task.evaluate(blocks.pool.family.build(s), SEARCH).primary for _, s in blocks.pool.sources]
    n_search = blocks.task.split_sizes()[SEARCH]
    budget = 4
    for name in ("random-search", "cmaes-ps", "cmaes-dfs", "ps-dfs", "m2n2", "ga", "map-elites"):
        cls = BASELINES.get(name)
        kind = blocks.pick_space(cls.spaces)
        r = run_one(blocks, cls({"popsize": 4} if name in ("cmaes-dfs",) else {}), make_space(kind, blocks), budget,
                    seed=0)
        assert r.start_best == max(acc), (name, kind)
        # 2 starting models + the budget + the recommended model on both splits
        test_n = blocks.task.split_sizes()["test"]
        assert r.forward_examples == (2 + budget - r.failed + 1) * n_search + test_n, name


def test_cmaes_on_recipes_starts_at_the_papers_point_not_at_a_source(blocks):
    cls = BASELINES.get("cmaes-ps")
    space = make_space("ps", blocks)
    b = cls().setup(space, 10, 0)
    idx, x0 = space.starting_genomes([s for _, s in blocks.pool.sources])
    from evobench.evaluation import Evaluation

    b.seed(x0, Evaluation(value=np.array([0.5, 0.6]), scores=np.zeros((2, 3))))
    b.ask()
    np.testing.assert_array_equal(b.cma.es.x0, np.full(space.dim, 0.5))
