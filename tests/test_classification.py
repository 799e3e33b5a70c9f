"""Default behaviour descriptors for classification tasks (the paper's odd/even accuracy, generalised)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evobench.classification import ClassificationTask, label_halves
from evobench.compare import plan
from evobench.config import validate
from evobench.registry import TASKS
from evobench.tasks import digits


def test_label_halves_alternate_over_sorted_classes():
    even, odd = label_halves(["c", "a", "d", "b"])
    assert list(even) == ["a", "c"] and list(odd) == ["b", "d"]
    with pytest.raises(ValueError, match="at least 2 classes"):
        label_halves([1])


class Letters(ClassificationTask):
    name = "letters"
    classes = ("x", "y", "z")

    def split_sizes(self):
        return {"search": 5, "test": 5}

    def evaluate(self, model, split, limit=None):
        return self.classification_result(np.array(model), np.array(["x", "y", "z", "x", "z"]))


def test_descriptors_by_hand():
    # classes sorted x, y, z: even positions {x, z}, odd {y}. Targets x y z x z, predictions x x z y z:
    # correct 1 0 1 0 1 -> odd-position classes {y}: 0/1; even-position {x, z}: 3/4
    r = Letters().evaluate(["x", "x", "z", "y", "z"], "search")
    np.testing.assert_array_equal(r.scores, [1, 0, 1, 0, 1])
    assert r.primary == pytest.approx(0.6) and r.metrics == {"accuracy": pytest.approx(0.6)}
    np.testing.assert_allclose(r.descriptors, [0.0, 0.75])


class DigitsGeneric(ClassificationTask):
    """Digits through the generic classification descriptors."""

    name = "digits-generic"
    classes = tuple(range(10))

    def __init__(self):
        self.data = digits.load_digits_split()

    def split_sizes(self):
        return {s: int(y.shape[0]) for s, (_, y) in self.data.items()}

    def evaluate(self, model, split, limit=None):
        x, y = self.data[split]
        with torch.no_grad():
            pred = model(x).argmax(1).numpy()
        return self.classification_result(pred, y.numpy())


def test_generic_descriptors_are_the_papers_odd_even_accuracy_on_digits():
    p = digits.specialists()
    model = p.pool.family.build(p.pool.sources[0][1])
    ours = DigitsGeneric().evaluate(model, "test")
    ref = p.task.evaluate(model, "test")
    y = digits.load_digits_split()["test"][1].numpy()
    correct = ours.scores.astype(bool)
    np.testing.assert_allclose(ours.descriptors, [correct[y % 2 == 1].mean(), correct[y % 2 == 0].mean()])
    np.testing.assert_allclose(ours.descriptors, ref.descriptors)


def test_map_elites_plans_on_any_classification_task():
    def factory():
        """Digits specialists scored through the generic classification task."""
        prob = digits.specialists()
        prob.task = DigitsGeneric()
        return prob

    TASKS.register("digits-generic", factory)
    try:
        pairs, _ = plan(validate({"tasks": ["digits-generic"], "baselines": ["map-elites"], "budget": 3}))
        assert [p.spec.name for p in pairs] == ["map-elites"]
    finally:
        TASKS._entries.pop("digits-generic")


def test_list_takes_the_task_class_docstring_when_the_factory_has_none(capsys, tmp_path, monkeypatch):
    import sys

    from evobench import cli

    (tmp_path / "wine_like.py").write_text(
        'from evobench.task import Task\n\n\nclass WineTask(Task):\n    """Wine cultivars from 13 chemical '
        'measurements."""\n\n\ndef factory():\n    return None\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    TASKS.register("wine-like", "wine_like:factory")
    try:
        assert cli.main(["list", "tasks"]) == 0
        line = next(ln for ln in capsys.readouterr().out.splitlines() if "wine-like" in ln)
        assert line.split(None, 1)[1] == "Wine cultivars from 13 chemical measurements."
    finally:
        TASKS._entries.pop("wine-like")
        sys.modules.pop("wine_like", None)
