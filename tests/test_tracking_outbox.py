"""Tracking through an outage: a real `mlflow server` stopped in the middle of a comparison and
started again; afterwards the server holds every metric, param and artifact exactly once."""

from __future__ import annotations

import json
import warnings

import pytest

pytest.importorskip("mlflow")

from evobench.tracking import MLflowTracker  # noqa: E402
from evobench.tracking_outbox import OutboxTracker, is_outage  # noqa: E402
from tests.mlflow_server import MlflowServer  # noqa: E402

pytestmark = pytest.mark.timeout(900)


def _everything(uri, experiment):
    """Per run name: status, params, metrics (key -> sorted (step, value)), artifact paths."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    out = {}
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        name = r.info.run_name
        assert name not in out, f"run {name} exists twice"
        history = {k: sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, k))
                   for k in r.data.metrics}
        arts = sorted(a.path for a in client.list_artifacts(r.info.run_id))
        out[name] = {"status": r.info.status, "params": r.data.params, "metrics": history, "artifacts": arts,
                     "parent": r.data.tags.get("mlflow.parentRunId") is not None}
    return out


def test_a_server_outage_mid_comparison_loses_nothing_and_duplicates_nothing(tmp_path):
    from evobench import compare
    from evobench.compare import run_comparison
    from evobench.config import RunConfig

    cfg = RunConfig(tasks=["digits-specialists"], baselines=["random-search", "cmaes-ps"], budget=30,
                    seeds=[0, 1], out=str(tmp_path / "out"), name="outage")
    server = MlflowServer(tmp_path / "server").start()
    try:
        # the reference: the same comparison, server up all along, another experiment
        run_comparison(cfg, tracker=OutboxTracker(MLflowTracker(server.uri, experiment="reference")), progress=False)
        tracker = OutboxTracker(MLflowTracker(server.uri, experiment="outage"), retry_seconds=0.0)
        real = compare.run_one
        calls = []

        def run_one(*a, **k):  # the server goes down after the first run and is back for the fourth
            calls.append(1)
            if len(calls) == 2:
                server.stop()
            if len(calls) == 4:
                server.start()
            return real(*a, **k)

        compare.run_one = run_one
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                comp = run_comparison(cfg, tracker=tracker, progress=False)
        finally:
            compare.run_one = real
        assert any("unreachable" in str(w.message) for w in caught)
        assert tracker.queue == [] and not (comp.out_dir / "tracking").exists()  # all delivered at the end
        got, want = _everything(server.uri, "outage"), _everything(server.uri, "reference")
    finally:
        server.stop()
    assert len(got) == 5  # the comparison and its four runs, each once
    for name, run in want.items():
        g = got[name]
        assert g["status"] == run["status"] == "FINISHED" and g["parent"] == run["parent"]
        assert g["artifacts"] == run["artifacts"]
        assert {k: v for k, v in g["params"].items() if k != "git_sha"} == \
            {k: v for k, v in run["params"].items() if k != "git_sha"}
        assert {k: [s for s, _ in v] for k, v in g["metrics"].items()} == \
            {k: [s for s, _ in v] for k, v in run["metrics"].items()}  # every step exactly once
        for k in ("test_score", "best_search_fitness_final"):
            if k in run["metrics"]:
                assert g["metrics"][k] == run["metrics"][k]


def test_what_is_still_queued_at_the_end_waits_for_evobench_sync(tmp_path, capsys):
    from evobench.cli import main
    from evobench.compare import run_comparison
    from evobench.config import RunConfig

    cfg = RunConfig(tasks=["digits-specialists"], baselines=["random-search"], budget=10, seeds=[0],
                    out=str(tmp_path / "out"), name="later")
    server = MlflowServer(tmp_path / "server").start()
    try:
        tracker = OutboxTracker(MLflowTracker(server.uri, experiment="later"), retry_seconds=3600)
        server.stop()
        with pytest.warns(UserWarning, match="evobench sync"):
            comp = run_comparison(cfg, tracker=tracker, progress=False)
        queued = (comp.out_dir / "tracking" / "outbox.jsonl").read_text().splitlines()
        assert len(queued) >= 6 and json.loads(queued[0])["op"] == "create"
        assert main(["sync", str(comp.out_dir)]) == 1  # still down
        assert "nothing delivered" in capsys.readouterr().err
        server.start()
        assert main(["sync", str(comp.out_dir)]) == 0
        assert f"delivered {len(queued)} of {len(queued)}" in capsys.readouterr().out
        assert not (comp.out_dir / "tracking").exists()
        runs = _everything(server.uri, "later")
        assert main(["sync", str(comp.out_dir)]) == 2  # nothing left to deliver
        assert _everything(server.uri, "later") == runs
    finally:
        server.stop()
    assert sorted(r["status"] for r in runs.values()) == ["FINISHED", "FINISHED"]
    (run,) = [r for r in runs.values() if r["parent"]]
    assert "test_score" in run["metrics"] and "best_recipe.json" in run["artifacts"]


def test_only_outages_are_queued():
    import requests
    from mlflow.exceptions import MlflowException, RestException

    assert is_outage(requests.exceptions.ConnectionError("refused"))
    assert is_outage(MlflowException("API request to http://x/api failed with exception Max retries exceeded"))
    assert is_outage(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}))
    assert not is_outage(RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad param"}))
    assert not is_outage(MlflowException("Experiment 'x' is deleted"))
    assert not is_outage(ValueError("a bug"))
