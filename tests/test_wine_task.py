"""A third-party task package (``tests/plugins/wine_task``) passes the task contract, registers into
evobench's task registry and runs head-to-head through the public API like a built-in task."""

from __future__ import annotations

import numpy as np
import pytest

from evobench.compare import run_comparison
from evobench.config import build_config
from evobench.contract import TaskContract
from evobench.registry import TASKS
from tests.plugins.wine_task import NAME, wine_specialists


class TestWineContract(TaskContract):
    @pytest.fixture
    def task_factory(self):
        return wine_specialists, {}

    @pytest.fixture
    def changed_task_factory(self):
        return wine_specialists, {"test_every": 5}  # another split: other data in each split


@pytest.fixture
def wine_registered(monkeypatch):
    """``wine-specialists`` registered in ``TASKS`` for one test (the registry is restored after)."""
    monkeypatch.setattr(TASKS, "_entries", dict(TASKS._entries))
    TASKS.register(NAME, wine_specialists)
    return NAME


def test_wine_split_is_deterministic_and_covers_the_data():
    a, b = wine_specialists().task, wine_specialists().task
    assert a.split_sizes() == {"search": 133, "test": 45}
    for s in ("search", "test"):
        assert np.array_equal(a.data[s][0].numpy(), b.data[s][0].numpy())
    x = a.data["search"][0].numpy()
    assert np.allclose(x.mean(axis=0), 0.0, atol=1e-5) and np.allclose(x.std(axis=0), 1.0, atol=1e-4)
    assert set(np.unique(a.data["test"][1].numpy())) == {0, 1, 2}


def test_wine_specialists_know_their_own_cultivars():
    p = wine_specialists()
    x, y = p.task.data["test"]
    for (_, state), own in zip(p.pool.sources, ({0, 1}, {1, 2}), strict=True):
        pred = p.pool.family.build(state)(x).argmax(dim=1).numpy()
        mine = np.isin(y.numpy(), sorted(own))
        assert (pred[mine] == y.numpy()[mine]).mean() > 0.8
    assert p.task.descriptor_names == () and p.space_kinds() == ["ps", "params"]


def test_registered_wine_task_is_listed_and_resolves(wine_registered):
    assert wine_registered in TASKS.names()
    assert TASKS.get(wine_registered) is wine_specialists


@pytest.mark.slow
def test_head_to_head_on_the_wine_task(wine_registered):
    cfg = build_config(config_file=None, tasks=wine_registered,
                       baselines="m2n2,cmaes-ps,random-search,brute-force-slerp", budget=30, seeds=[0, 1])
    comp = run_comparison(cfg, progress=False, write=False)
    runs = {(r.baseline, r.seed): r for r in comp.results}
    assert set(runs) == {(b, s) for b in ("m2n2", "cmaes-ps", "random-search", "brute-force-slerp") for s in (0, 1)}
    for key, r in runs.items():
        assert r.task == NAME, key
        assert r.evaluations == 30 and r.values.shape == (30,), key
        assert np.isfinite(r.test_score) and 0.0 <= r.test_score <= 1.0, (key, r.test_score)
    assert len(comp.tables[NAME]) == 4


def test_map_elites_named_on_the_wine_task_exits_2_at_plan_time(wine_registered, capsys, tmp_path, monkeypatch):
    import evobench.compare as compare
    from evobench import cli

    monkeypatch.setattr(compare, "run_one", lambda *a, **k: pytest.fail("a run started"))
    code = cli.main(["run", "--tasks", wine_registered, "--baselines", "m2n2,map-elites", "--budget", "5",
                     "--no-tracking", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "map-elites" in err and "behaviour descriptors" in err and NAME in err
    assert not (tmp_path / "o").exists()


def test_all_baselines_on_the_wine_task_list_map_elites_as_skipped(wine_registered):
    from evobench.compare import plan

    pairs, skipped = plan(build_config(config_file=None, tasks=wine_registered, baselines="all", budget=5))
    reasons = {b: why for t, b, why in skipped if t == NAME}
    assert "map-elites" in reasons and "behaviour descriptors" in reasons["map-elites"]
    assert {"m2n2", "cmaes-ps", "random-search", "ga", "brute-force-slerp"} <= {p.spec.name for p in pairs}
    assert build_config(config_file=None, tasks=wine_registered).name == NAME  # not the default preset's
