"""mean-of: several tasks searched at once, fitness a declared weighted mean (hand-computed), one-line
errors, and the task contract on two tiny WebShop agents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evobench.models.base import ModelPool
from evobench.models.mlp import MLPFamily
from evobench.problem import Problem
from evobench.registry import TASKS
from evobench.task import Task, TaskResult
from evobench.tasks.mean_of import mean_of

FAMILY = MLPFamily(n_in=4, hidden=8, n_out=2)


def _sources(seed):
    gen = torch.Generator().manual_seed(seed)
    return [(f"mlp-{i}", {k: torch.randn(s, generator=gen) for k, s in FAMILY.shapes.items()}) for i in range(2)]


class FixedTask(Task):
    """Fixed per-example scores whatever the model (predictions: the example index)."""

    primary_metric = "acc"

    def __init__(self, name, search, test):
        self.name = name
        self.data = {"search": np.asarray(search, float), "test": np.asarray(test, float)}

    def split_sizes(self):
        return {s: len(v) for s, v in self.data.items()}

    def evaluate(self, model, split, limit=None):
        s = self.data[split][:limit]
        return TaskResult(scores=s, metrics={"acc": self.aggregate(s), "other": 7.0}, primary=self.aggregate(s),
                          predictions=np.arange(len(s)), targets=np.ones(len(s), dtype=int), n_forward=len(s))

    def example_ids(self, split):
        return [f"{self.name}-{split}-{i}" for i in range(len(self.data[split]))]


@pytest.fixture
def toys():
    made = {"toy-a": lambda: Problem("toy-a", FixedTask("toy-a", [1, 1], [1, 0, 1, 1]), ModelPool(FAMILY, sources=_sources(0))),
            "toy-b": lambda: Problem("toy-b", FixedTask("toy-b", [0], [0, 0]), ModelPool(FAMILY, sources=_sources(0))),
            "toy-c": lambda: Problem("toy-c", FixedTask("toy-c", [0], [0]), ModelPool(FAMILY, sources=_sources(1)))}
    for name, factory in made.items():
        TASKS.register(name, factory)
    yield
    for name in made:
        TASKS._entries.pop(name)


def test_weighted_mean_by_hand(toys):
    problem = mean_of(["toy-a", "toy-b"], weights=[1, 3])
    task, model = problem.task, FAMILY.build(problem.pool.sources[0][1])
    assert task.split_sizes() == {"search": 3, "test": 6}
    r = task.evaluate(model, "test")
    # round-robin: a0 b0 a1 b1 a2 a3
    assert r.scores.tolist() == [1, 0, 0, 0, 1, 1]
    assert [p["task"] for p in r.predictions] == ["toy-a", "toy-b", "toy-a", "toy-b", "toy-a", "toy-a"]
    assert r.predictions[2] == {"task": "toy-a", "prediction": 1, "target": 1}
    # (1 * 3/4 + 3 * 0) / 4
    assert r.primary == r.metrics["mean"] == pytest.approx(0.1875) == task.aggregate(r.scores)
    assert r.metrics["toy-a"] == 0.75 and r.metrics["toy-b.other"] == 7.0 and r.n_forward == 6
    # the first three positions: a = (1, 0), b = (0): (1 * 0.5 + 3 * 0) / 4
    r3 = task.evaluate(model, "test", limit=3)
    assert r3.scores.tolist() == [1, 0, 0] and r3.primary == pytest.approx(0.125) == task.aggregate(r3.scores)
    # equal weights by default; a split's ids interleave the same way, each hashed with its label
    assert mean_of(["toy-a", "toy-b"]).task.evaluate(model, "search").primary == pytest.approx(0.5)
    ids = task.example_ids("test")
    assert len(set(ids)) == 6 and ids != mean_of(["toy-b", "toy-a"]).task.example_ids("test")


@pytest.mark.parametrize("kwargs, message", [
    ({"tasks": ["toy-a"]}, "two or more tasks"),
    ({"tasks": ["toy-a", "toy-a"]}, "listed twice; give one of them a distinct label"),
    ({"tasks": ["toy-a", "toy-bb"]}, "Did you mean"),
    ({"tasks": ["toy-a", "toy-b"], "weights": [1, -1]}, "weights must be 2 non-negative numbers"),
    ({"tasks": ["toy-a", "toy-b"], "weights": [0, 0]}, "not all 0"),
    ({"tasks": ["toy-a", {"name": "toy-b", "options": {"models": ["x"]}}]}, "option 'models' is mean-of's"),
    ({"tasks": ["toy-a", "toy-c"]}, "scores other models than task 'toy-a'"),
    ({"tasks": ["toy-a", {"name": "toy-b", "colour": 1}]}, "each task is a name or"),
])
def test_bad_options_are_one_line_errors(toys, kwargs, message):
    with pytest.raises(ValueError, match=message) as e:
        mean_of(**kwargs)
    assert "\n" not in str(e.value)


def test_labels_tell_two_uses_of_a_task_apart(toys):
    problem = mean_of(["toy-a", {"name": "toy-a", "label": "toy-a-again"}])
    assert problem.task.labels == ["toy-a", "toy-a-again"] and problem.name == "mean-of"



def test_a_comparison_searches_on_the_mean(toys, tmp_path):
    from evobench.compare import run_comparison
    from evobench.config import RunConfig

    cfg = RunConfig(tasks=[{"name": "mean-of", "options": {"tasks": ["toy-a", "toy-b"], "weights": [3, 1]}}],
                    baselines=["random-search"], budget=3, seeds=[0], device="cpu", out=str(tmp_path), name="mean")
    [run] = run_comparison(cfg, progress=False, write=False).results
    # search: (3 * 1 + 1 * 0) / 4; test: (3 * 0.75 + 1 * 0) / 4
    assert run.evaluations == 3 and run.best_search == pytest.approx(0.75)
    assert run.test_score == pytest.approx(0.5625) and run.test_metrics["toy-a"] == 0.75

# ---- two tiny WebShop agents: the contract and a comparison -------------------------------------------

pytest.importorskip("transformers")
pytest.importorskip("bm25s")

from evobench.task_contract import TaskContract  # noqa: E402
from tests.lm_task_helpers import save_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return str(save_tiny_model(tmp_path_factory.mktemp("tiny-lm")))


def _two_shops(tiny_dir, seed=0):
    small = {"max_new_tokens": 3, "step_limit": 2, "batch_size": 4}
    return {"tasks": [{"name": "webshop", "options": small},
                      {"name": "webshop", "label": "webshop-b", "options": {**small, "seed": 1 + seed}}],
            "models": [tiny_dir], "weights": [1, 2]}


class TestMeanOfContract(TaskContract):
    limit = 3

    @pytest.fixture
    def task_factory(self, tiny_dir):
        return mean_of, _two_shops(tiny_dir)

    @pytest.fixture
    def changed_task_factory(self, tiny_dir):
        return mean_of, _two_shops(tiny_dir, seed=1)
