"""The runner's loop: exact budgets, failed candidates, uncounted starting models, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from evobench.models.base import ModelPool
from evobench.models.mlp import MLPFamily
from evobench.problem import Problem
from evobench.registry import BASELINES, TASKS
from evobench.runner import evaluate_genomes, run_one
from evobench.spaces import make_space
from evobench.task import Task, TaskResult
from evobench.testing import ToySpace, toy_evaluation


class ToyTask(Task):
    """Scores the toy 'model' (a genome) like ``toy_evaluation``; genomes with x[0] > 0.9 fail."""

    name = "toy"
    primary_metric = "score"
    descriptor_names = ("even", "odd")
    descriptor_bounds = ((0.0, 1.0), (0.0, 1.0))

    def split_sizes(self):
        return {"search": 32, "test": 32}

    def evaluate(self, model, split, limit=None):
        if model[0] > 0.9:
            raise FloatingPointError("toy blow-up")
        ev = toy_evaluation(model[None, :])
        return TaskResult(scores=ev.scores[0], metrics={"score": float(ev.value[0])}, primary=float(ev.value[0]),
                          descriptors=ev.descriptors[0], n_forward=32)


def toy_problem() -> Problem:
    return Problem("toy", ToyTask(), ModelPool(MLPFamily(2, 2, 2)))


@pytest.fixture(scope="module")
def specialists():
    return TASKS.get("digits-specialists")()


@pytest.mark.parametrize("budget", [1, 13, 50])
def test_budget_is_exact_when_batches_do_not_divide_it(budget):
    b = BASELINES.get("random-search")(batch_size=6)
    r = run_one(toy_problem(), b, ToySpace("ps", 5), budget, seed=0)
    assert r.evaluations == budget == r.values.size == b.n_told
    # failed candidates push nothing; starting models and the final scoring come on top
    assert r.forward_examples >= (budget - r.failed) * 32


def test_failed_candidates_are_recorded_not_fatal():
    b = BASELINES.get("random-search")(batch_size=10)
    r = run_one(toy_problem(), b, ToySpace("ps", 5), 200, seed=1)
    assert 0 < r.failed < 200  # about 10 % of uniform genomes have x[0] > 0.9
    assert r.failed == int(np.isnan(r.values).sum())
    assert np.isfinite(r.test_score) and np.isfinite(r.recommended_search)


def test_evaluate_genomes_marks_build_and_score_failures():
    x = np.array([[0.5] * 5, [0.95] + [0.5] * 4])
    ev, n = evaluate_genomes(ToySpace("ps", 5), ToyTask(), x)
    assert ev.ok.tolist() == [True, False]
    assert "toy blow-up" in ev.errors[1]
    assert n == 32


def test_starting_models_are_scored_but_not_counted(specialists):
    space = make_space("params", specialists, 0)
    b = BASELINES.get("m2n2")(mutation_std=0.0)
    r = run_one(specialists, b, space, 5, seed=0)
    assert r.evaluations == 5 and b.n_told == 5
    start_acc = [specialists.task.evaluate(specialists.pool.family.build(s), "search").primary
                 for _, s in specialists.pool.sources]
    assert r.start_best == pytest.approx(max(start_acc))
    steps, best = r.best_curve()
    assert steps[0] == 0 and best[0] == pytest.approx(max(start_acc)) and steps[-1] == 5


def _run(problem, name, seed, **cfg):
    cls = BASELINES.get(name)
    space = make_space(problem.pick_space(cls.spaces), problem, seed)
    return run_one(problem, cls(cfg), space, 40, seed)


@pytest.mark.parametrize("name", ["cmaes-ps", "m2n2", "random-search"])
def test_same_seed_same_result(specialists, name):
    a, b = _run(specialists, name, 3), _run(specialists, name, 3)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.test_score == b.test_score and a.recipe == b.recipe
    c = _run(specialists, name, 4)
    assert not np.array_equal(a.values, c.values)


def test_one_candidate_evaluation_is_the_batch_row_and_read_only():
    """A one-candidate step (M2N2, GA, MAP-Elites) gets what a batch gives for that candidate, and a
    baseline cannot write into the scores it shares with the task's result (a cached result)."""
    problem = TASKS.get("digits-specialists")()
    space = make_space("params", problem, 0)
    x = space.initial(np.random.default_rng(0))
    batch, n_batch = evaluate_genomes(space, problem.task, x)
    for i in range(len(x)):
        one, n_one = evaluate_genomes(space, problem.task, x[i:i + 1])
        assert n_one * len(x) == n_batch
        np.testing.assert_array_equal(one.value, batch.value[i:i + 1])
        np.testing.assert_array_equal(one.scores, batch.scores[i:i + 1])
        np.testing.assert_array_equal(one.descriptors, batch.descriptors[i:i + 1])
        assert one.scores.dtype == np.float64 and one.errors == [None]
        with pytest.raises(ValueError, match="read-only"):
            one.scores[0, 0] = 0.5
