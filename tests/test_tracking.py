"""Tracking: a real MLflow server, the default sqlite store, fast URI checks, lazy import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from evobench import tracking
from evobench.tracking import (
    MAX_PARAM_VAL_LENGTH,
    MLflowTracker,
    NullTracker,
    TrackingError,
    check_tracking_uri,
    flatten_params,
)
from tests.mlflow_server import free_port

N_POINTS = 2500


def _png(path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [0, 1, 4])
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def _status(client, run_id: str) -> str:
    return client.get_run(run_id).info.status


def _artifact_paths(client, run_id: str, folder: str) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id, folder)}


@pytest.mark.integration
def test_comparison_with_nested_runs_on_server(mlflow_server, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    png = _png(tmp_path / "curve.png")
    steps = list(range(1, N_POINTS + 1))
    params = {"budget": N_POINTS, "task": {"name": "digits", "split": {"search": 0.5}}, "long": "x" * 7000}
    tracker = MLflowTracker(mlflow_server, experiment="it-comparison")
    child_ids: list[str] = []
    with tracker:
        tracker.start_comparison("cmaes-vs-ga", params=params, tags={"suite": "tests"})
        parent_id = tracker.comparison_id
        for seed in (0, 1):
            run_params = {"seed": seed, "baseline": {"name": "cmaes", "sigma": 0.3}}
            with tracker.run(f"cmaes/digits/seed{seed}", params=run_params, tags={"seed": seed}):
                child_ids.append(tracker.run_id)
                tracker.log_curve("search/best", steps, [seed + i / N_POINTS for i in range(N_POINTS)])
                tracker.log_metrics({"test/accuracy": 0.9 + seed / 100}, step=N_POINTS)
                tracker.log_dict({"method": "linear", "weights": [0.25, 0.75], "seed": seed}, "best/recipe.json")
                tracker.log_artifact(png, "plots")
        tracker.log_text("summary", "summary.txt")
        tracker.log_artifact(png)

    assert capsys.readouterr().out.count("View run") == 1  # mlflow 3 prints links: the comparison's only
    client = MlflowClient(mlflow_server)
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")  # uploads go through the server
    assert parent.data.params["task.split.search"] == "0.5"
    assert parent.data.params["task.name"] == "digits"
    assert len(parent.data.params["long"]) == MAX_PARAM_VAL_LENGTH
    assert parent.data.tags["mlflow.runName"] == "cmaes-vs-ga"
    assert {"summary.txt", "curve.png"} <= {f.path for f in client.list_artifacts(parent_id)}

    found = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(r.info.run_id for r in found) == sorted(child_ids)
    for seed, run_id in enumerate(child_ids):
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent_id
        assert run.data.params["baseline.sigma"] == "0.3" and run.data.params["seed"] == str(seed)
        assert run.data.metrics["test/accuracy"] == pytest.approx(0.9 + seed / 100)
        history = sorted(client.get_metric_history(run_id, "search/best"), key=lambda m: m.step)
        assert [m.step for m in history] == steps
        assert history[-1].value == pytest.approx(seed + (N_POINTS - 1) / N_POINTS)
        assert _artifact_paths(client, run_id, "best") == {"best/recipe.json"}
        assert _artifact_paths(client, run_id, "plots") == {"plots/curve.png"}
        local = client.download_artifacts(run_id, "best/recipe.json", str(tmp_path / f"dl{seed}"))
        with open(local) as f:
            assert json.load(f)["seed"] == seed


@pytest.mark.integration
def test_exceptions_end_open_runs_failed_or_killed(mlflow_server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    tracker = MLflowTracker(mlflow_server, experiment="it-failure")
    with pytest.raises(ValueError, match="boom"), tracker:
        tracker.start_comparison("fails")
        tracker.start_run("fails/run")
        ids = (tracker.comparison_id, tracker.run_id)
        raise ValueError("boom")
    assert [_status(client, i) for i in ids] == ["FAILED", "FAILED"]
    assert tracker.comparison_id is None and tracker.run_id is None

    with tracker:  # a failing nested run does not fail the comparison
        tracker.start_comparison("survives")
        with pytest.raises(ZeroDivisionError), tracker.run("bad-seed"):
            bad = tracker.run_id
            1 / 0  # noqa: B018
        parent = tracker.comparison_id
    assert (_status(client, bad), _status(client, parent)) == ("FAILED", "FINISHED")

    with pytest.raises(KeyboardInterrupt), tracker:
        tracker.start_comparison("interrupted")
        interrupted = tracker.comparison_id
        raise KeyboardInterrupt
    assert _status(client, interrupted) == "KILLED"


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")  # raised inside mlflow's sqlite store
def test_default_sqlite_store_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracker = MLflowTracker()
    assert tracker.tracking_uri == f"sqlite:///{tmp_path / 'mlruns.db'}"
    with pytest.raises(TrackingError, match="no open MLflow run"):
        tracker.log_metrics({"a": 1.0})
    with tracker:
        tracker.start_comparison("local", params={"a": {"b": 1}})
        with tracker.run("local/run"):
            tracker.log_curve("fitness", [1, 2, 3], [0.1, 0.2, 0.3])
            tracker.log_dict({"x": 1}, "recipe.json")
            run_id = tracker.run_id
    assert (tmp_path / "mlruns.db").is_file()
    assert [p.name for p in (tmp_path / "mlartifacts").rglob("recipe.json")] == ["recipe.json"]
    history = tracker.client.get_metric_history(run_id, "fitness")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.1), (2, 0.2), (3, 0.3)]


@pytest.mark.parametrize("kind", ["closed-port", "missing-dir", "bad-scheme", "bare-path"])
def test_check_tracking_uri_fails_fast(kind, tmp_path):
    uri = {
        "closed-port": f"http://127.0.0.1:{free_port()}",
        "missing-dir": f"sqlite:///{tmp_path / 'missing' / 'mlruns.db'}",
        "bad-scheme": "ftp://example.org/mlruns",
        "bare-path": str(tmp_path / "mlruns"),
    }[kind]
    t0 = time.monotonic()
    with pytest.raises(TrackingError) as err:
        check_tracking_uri(uri)
    assert time.monotonic() - t0 < 5
    assert uri in str(err.value) and "\n" not in str(err.value)
    if kind in ("bad-scheme", "bare-path"):
        assert "sqlite:" in str(err.value) and "https:" in str(err.value)
    with pytest.raises(TrackingError):
        MLflowTracker(uri)


def test_check_tracking_uri_accepts_local_stores(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    check_tracking_uri(f"sqlite:///{tmp_path / 'x.db'}")
    check_tracking_uri(f"file://{tmp_path / 'mlruns'}")
    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"


def test_limits_match_mlflow():
    from mlflow.utils import validation

    assert tracking.MAX_PARAM_VAL_LENGTH == validation.MAX_PARAM_VAL_LENGTH
    assert tracking.MAX_TAG_VAL_LENGTH == validation.MAX_TAG_VAL_LENGTH
    assert tracking.MAX_PARAMS_PER_BATCH == validation.MAX_PARAMS_TAGS_PER_BATCH
    assert tracking.MAX_METRICS_PER_BATCH == validation.MAX_METRICS_PER_BATCH


def test_flatten_params_and_null_tracker():
    flat = flatten_params({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None, "f": {}, "g": "y" * 7000})
    assert flat["a.b"] == "1" and flat["a.c.d"] == "[1, 2]" and flat["e"] == "None" and flat["f"] == "{}"
    assert len(flat["g"]) == MAX_PARAM_VAL_LENGTH and flat["g"].endswith("...")
    with NullTracker() as t:
        t.start_comparison("c", {"a": 1}, {})
        with t.run("r"):
            t.log_curve("k", [1], [1.0])


def test_import_does_not_import_mlflow():
    code = "import evobench.tracking, sys; assert 'mlflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
