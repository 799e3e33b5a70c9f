"""End to end against a real `mlflow server` process: runs, metrics, params, artifacts exist."""

from __future__ import annotations

import json

import pytest

from evobench import cli

pytestmark = pytest.mark.integration


def test_comparison_is_logged_to_a_real_mlflow_server(mlflow_server, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    code = cli.main(["run", "--tasks", "digits-specialists", "--baselines", "random-search,cmaes-ps,m2n2",
                     "--budget", "30", "--seeds", "0,1", "--tracking-uri", mlflow_server,
                     "--experiment", "it", "--name", "e2e", "--out", str(tmp_path), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("it")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 3 * 2
    assert sorted(r.data.params["baseline"] for r in children) == ["cmaes-ps"] * 2 + ["m2n2"] * 2 + \
        ["random-search"] * 2
    assert all(r.info.status == "FINISHED" for r in runs)

    parent_files = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"curves.png", "results.json", "table.txt"} <= parent_files
    assert parents[0].data.params["budget"] == "30"

    for child in children:
        rid = child.info.run_id
        hist = client.get_metric_history(rid, "best_search_fitness")
        steps = [m.step for m in hist]
        values = [m.value for m in hist]
        assert steps[0] == 0 and steps[-1] == 30 and values == sorted(values)  # best-so-far never drops
        assert client.get_metric_history(rid, "search_fitness")
        m = child.data.metrics
        assert m["evaluations"] == 30 and 0.0 <= m["test_score"] <= 1.0
        assert {"seed", "git_sha", "data_hash", "model_hash.digits-0to4"} <= set(child.data.tags)
        assert child.data.params["budget"] == "30"  # every run's budget, whatever its baseline
        if child.data.params["baseline"] == "random-search":
            assert "baseline_config.batch_size" in child.data.params
        local = client.download_artifacts(rid, "best_recipe.json", str(tmp_path / rid))
        recipe = json.load(open(local))
        assert recipe["kind"] in ("ps", "params")
