"""Every registered task that builds without options passes the task contract
(:class:`evobench.contract.TaskContract`), and the suite has teeth: deliberately broken tasks fail
the matching check."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect

import numpy as np
import pytest
import torch

from evobench.contract import TaskContract
from evobench.errors import NonFiniteError
from evobench.registry import TASKS
from evobench.task import TEST, Task, TaskResult
from evobench.tasks.digits import DigitsTask, scratch


class PerturbedDigits(DigitsTask):
    """Digits with one pixel of the first test image changed (the task over changed data)."""

    def __init__(self) -> None:
        super().__init__()
        x, y = self.data[TEST]
        x = x.clone()
        x[0, 0] += 1.0
        self.data = {**self.data, TEST: (x, y)}


CHANGED_DATA = {DigitsTask: PerturbedDigits}  # task class -> the same task over changed data


def with_task(factory, task_cls: type[Task]):
    """``factory`` with its problem's task replaced by a ``task_cls`` instance."""
    return lambda **options: dataclasses.replace(factory(**options), task=task_cls())


def builds_without_options(name: str) -> bool:
    """Whether the task's factory has no required parameter. Tasks that need options (the language-model
    tasks need ``models``) run the contract in their own test modules."""
    params = inspect.signature(TASKS.get(name)).parameters.values()
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


# tasks that build without options but run the contract in their own module, at test speed and with
# their optional packages (image-prompt: tests/test_vision_image_prompt.py, run by tox -e vision)
OWN_MODULE = {"image-prompt"}


class TestRegisteredTasks(TaskContract):
    @pytest.fixture(params=[n for n in TASKS.names() if builds_without_options(n) and n not in OWN_MODULE])
    def task_name(self, request):
        return request.param

    @pytest.fixture
    def task_factory(self, task_name):
        return TASKS.get(task_name)

    @pytest.fixture
    def changed_task_factory(self, task_name):
        factory = TASKS.get(task_name)
        changed = CHANGED_DATA.get(type(factory().task))
        return None if changed is None else with_task(factory, changed)


def test_perturbed_digits_leaves_digits_unchanged():
    before = DigitsTask().data_hash()
    changed = PerturbedDigits()
    assert changed.data_hash() != before
    assert DigitsTask().data_hash() == before  # the shared cached data was not modified
    assert changed.split_sizes() == DigitsTask().split_sizes()


def test_digits_example_ids_hash_each_image():
    task = DigitsTask()
    ids = task.example_ids(TEST)
    assert len(ids) == 360 and len(set(ids)) == 360
    from sklearn.datasets import load_digits

    first_test_image = np.asarray(load_digits().data[1437], dtype=np.float32)
    assert ids[0] == hashlib.sha256(first_test_image.tobytes()).hexdigest()
    assert task.example_ids("search")[:3] != ids[:3]
    with pytest.raises(ValueError, match="unknown split"):
        task.example_ids("validation")


def test_task_aggregate_defaults_to_the_mean():
    task = DigitsTask()
    assert task.aggregate(np.array([1.0, 0.0, 0.0, 1.0])) == 0.5
    assert np.isnan(task.aggregate(np.zeros(0)))


def test_example_ids_not_implemented_by_default():
    class Bare(Task):
        name = "bare"

        def split_sizes(self):
            return {"search": 1, "test": 1}

        def evaluate(self, model, split, limit=None):
            raise AssertionError("not scored")

    with pytest.raises(NotImplementedError, match="bare"):
        Bare().example_ids("search")


# ---- broken tasks: each fails exactly the check that names its fault -------------------------------------
class _IgnoresLimit(DigitsTask):
    def evaluate(self, model, split, limit=None):
        return super().evaluate(model, split)


class _PrimaryIsMax(DigitsTask):
    def evaluate(self, model, split, limit=None):
        r = super().evaluate(model, split, limit)
        r.primary = r.metrics["accuracy"] = float(np.max(r.scores))
        return r


class _Noisy(DigitsTask):
    def evaluate(self, model, split, limit=None):
        r = super().evaluate(model, split, limit)
        r.scores = r.scores + np.random.default_rng().uniform(0, 1e-6, r.scores.shape)
        r.primary = r.metrics["accuracy"] = float(r.scores.mean())
        return r


class _Overlapping(DigitsTask):
    def example_ids(self, split):
        return super().example_ids("search")[: self.split_sizes()[split]]


class _DescriptorsOutOfBounds(DigitsTask):
    def evaluate(self, model, split, limit=None):
        r = super().evaluate(model, split, limit)
        r.descriptors = r.descriptors * 100.0 + 2.0
        return r


class _SwallowsNaN(DigitsTask):
    def evaluate(self, model, split, limit=None):
        x, y = self._split(split, limit)
        logits = torch.nan_to_num(model(x), nan=0.0)
        return self._result(split, logits.argmax(dim=1).numpy(), y.numpy())


class _SwallowsOOM(DigitsTask):
    def evaluate(self, model, split, limit=None):
        try:
            return super().evaluate(model, split, limit)
        except torch.OutOfMemoryError as e:
            raise NonFiniteError("no logits") from e  # hides the cause


class _ConstantHash(DigitsTask):
    def data_hash(self):
        return "same"


class _NoName(DigitsTask):
    name = ""


class _ShortScores(DigitsTask):
    def evaluate(self, model, split, limit=None):
        r = super().evaluate(model, split, limit)
        return TaskResult(scores=r.scores[:-1], metrics=r.metrics, primary=r.primary, descriptors=r.descriptors)


def _small_digits(**options):
    return scratch(hidden=16)


@pytest.mark.parametrize(("cls", "test"), [
    (_NoName, "test_problem_and_task"),
    (_ShortScores, "test_split_sizes"),
    (_PrimaryIsMax, "test_scores_and_primary"),
    (_Noisy, "test_deterministic"),
    (_IgnoresLimit, "test_limit"),
    (_Overlapping, "test_splits_disjoint"),
    (_DescriptorsOutOfBounds, "test_descriptors"),
    (_SwallowsNaN, "test_non_finite_model_fails_the_candidate"),
    (_SwallowsOOM, "test_out_of_memory_model_fails_the_candidate"),
])
def test_contract_catches_broken_tasks(cls, test):
    suite = TaskContract()
    getattr(suite, test)(_small_digits)  # the sound task passes ...
    with pytest.raises(AssertionError):
        getattr(suite, test)(with_task(_small_digits, cls))  # ... the broken one does not


def test_contract_catches_a_data_hash_blind_to_the_data():
    suite = TaskContract()
    suite.test_data_hash_changes_with_data(_small_digits, with_task(_small_digits, PerturbedDigits))
    with pytest.raises(AssertionError):
        suite.test_data_hash_changes_with_data(with_task(_small_digits, _ConstantHash),
                                               with_task(_small_digits, _ConstantHash))


def test_contract_skips_what_a_task_does_not_declare():
    class NoIds(DigitsTask):
        def example_ids(self, split):
            return Task.example_ids(self, split)

    suite = TaskContract()
    with pytest.raises(pytest.skip.Exception, match="example_ids"):
        suite.test_splits_disjoint(with_task(_small_digits, NoIds))
    with pytest.raises(pytest.skip.Exception, match="changed_task_factory"):
        suite.test_data_hash_changes_with_data(_small_digits, None)


def test_contract_with_a_limit_scores_only_a_prefix():
    seen = []

    class Counting(DigitsTask):
        def evaluate(self, model, split, limit=None):
            seen.append(limit)
            return super().evaluate(model, split, limit)

    class Limited(TaskContract):
        limit = 40

    factory = with_task(_small_digits, Counting)
    for test in ("test_split_sizes", "test_scores_and_primary", "test_non_finite_model_fails_the_candidate"):
        getattr(Limited(), test)(factory)
    assert seen and all(n is not None and n <= 40 for n in seen), seen
