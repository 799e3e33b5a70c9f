"""The evaluation cache: exact hits, a key that misses when any part of it changes, the cheap-task
cut-off, the size cap, failures never stored, sharing between processes, the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evobench.evalcache import PROBE, EvalCache, open_cache, scope
from evobench.registry import TASKS
from evobench.spaces import make_space
from evobench.task import TaskResult

PROV = {"data_hash": "d", "model_family": "mlp", "model_hash.a": "1", "model_hash.b": "2"}


@pytest.fixture(scope="module")
def problem():
    return TASKS.get("digits-specialists-blocks")()


def _scope(problem, **change):
    kw = dict(split="search", space_kind="ps", space_options={"op": "dare_ties"}, task_options={},
              device="auto", provenance=PROV)
    kw.update(change)
    return scope(problem, **kw)


def _result(scores, primary=None, desc=None):
    scores = np.asarray(scores, dtype=float)
    p = float(scores.mean()) if primary is None else primary
    return TaskResult(scores=scores, metrics={"accuracy": p}, primary=p, descriptors=desc, n_forward=scores.size)


def test_a_hit_gives_back_exactly_what_was_scored(tmp_path, problem):
    c = EvalCache(tmp_path, min_seconds=0)
    s = c.session(_scope(problem))
    assert s.get("x") is None
    binary = _result([1.0, 0.0, 1.0, 1.0], desc=np.array([0.25, np.nan]))
    graded = _result([0.1, 1 / 3, 0.7], primary=0.42)
    s.put("x", binary, 1.0)
    s.put("y", graded, 1.0)
    for key, want in (("x", binary), ("y", graded)):
        got = s.get(key)
        np.testing.assert_array_equal(got.scores, want.scores)
        assert got.scores.dtype == np.float64 and (got.primary, got.metrics) == (want.primary, want.metrics)
        assert got.n_forward == 0  # a hit costs no forward pass
    np.testing.assert_array_equal(s.get("x").descriptors, binary.descriptors)
    assert s.get("y").descriptors is None
    assert (s.hits, s.misses) == (4, 2)  # a miss is counted when the scored candidate is offered
    c.close()


@pytest.mark.parametrize("change", [
    {"split": "test"}, {"space_kind": "params"}, {"space_options": {"op": "ties"}},
    {"task_options": {"hidden": 8}}, {"device": "cuda"}, {"provenance": {**PROV, "model_hash.b": "3"}},
    {"provenance": {**PROV, "data_hash": "e"}}, {"provenance": {**PROV, "model_hash.base": "0"}},
])
def test_changing_any_part_of_the_scope_misses(tmp_path, problem, change):
    c = EvalCache(tmp_path, min_seconds=0)
    c.session(_scope(problem)).put("x", _result([1.0]), 1.0)
    assert c.session(_scope(problem)).get("x") is not None
    assert c.session(_scope(problem, **change)).get("x") is None
    c.close()


def test_task_version_problem_and_code_versions_are_part_of_the_scope(tmp_path, problem, monkeypatch):
    import torch

    import evobench

    base = _scope(problem)
    assert base["task_version"] == str(problem.task.version) and base["problem"] == problem.name
    assert base["evobench"] == evobench.__version__ and base["torch"] == torch.__version__
    c = EvalCache(tmp_path, min_seconds=0)
    c.session(base).put("x", _result([1.0]), 1.0)
    monkeypatch.setattr(type(problem.task), "version", "changed-scoring", raising=False)
    assert c.session(_scope(problem)).get("x") is None
    monkeypatch.setattr(evobench, "__version__", "99")
    assert c.session({**base, "evobench": "99"}).get("x") is None
    c.close()


def test_candidate_keys_are_exact_and_shared_only_by_the_same_model(problem):
    rng = np.random.default_rng(0)
    ps = make_space("ps", problem, 0)
    x = rng.random(ps.dim)
    y = x.copy()
    y[0] += 1e-9  # a different model whose rounded recipe (6 decimals) is the same
    assert ps.recipe_json(x) == ps.recipe_json(y) and ps.candidate_key(x) != ps.candidate_key(y)
    z = x.copy()
    z[0] = 1.5  # clipped to 1.0 like 1.7: the same merge
    w = x.copy()
    w[0] = 1.7
    assert ps.candidate_key(z) == ps.candidate_key(w)
    dfs = make_space("dfs", problem, 0)
    g = dfs.initial(rng)[0]
    moved = g.copy()
    moved[: dfs.codec.n_slots] += np.where(g[: dfs.codec.n_slots] > 0.5, 0.01, -0.01)  # same slots on/off
    assert dfs.candidate_key(g) == dfs.candidate_key(moved)
    scaled = g.copy()
    scaled[dfs.codec.n_slots:] += 1e-9  # every scale 2e-9 larger: another model
    assert dfs.candidate_key(g) != dfs.candidate_key(scaled)
    params = make_space("params", problem, 0)
    p = params.initial(rng)[0]
    q = p.copy()
    q[5] = np.nextafter(np.float32(q[5]), np.float32(1))
    assert params.candidate_key(p) == params.candidate_key(p.copy()) != params.candidate_key(q)


def test_cheap_tasks_switch_the_cache_off_after_the_probe(tmp_path, problem):
    c = EvalCache(tmp_path, min_seconds=10.0)
    s = c.session(_scope(problem))
    for i in range(PROBE):
        assert s.active
        s.put(str(i), _result([1.0]), 0.001)
    assert not s.active and s.get("0") is None
    c.commit()
    assert c._db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0
    # one slow scoring among the probe keeps the run caching (and stores the slow one)
    s2 = c.session(_scope(problem))
    for i in range(PROBE):
        s2.put(str(i), _result([1.0]), 20.0 if i == 3 else 0.001)
    assert s2.active and s2.get("3") is not None and s2.get("2") is None
    c.close()


def test_the_file_stays_under_its_cap_oldest_first(tmp_path, problem):
    c = EvalCache(tmp_path, max_bytes=20_000, min_seconds=0)
    s = c.session(_scope(problem))
    for i in range(100):
        s.put(str(i), _result(np.linspace(0, 1, 50)), 1.0)  # ~500 bytes each
        c.commit()
    total = c._db.execute("SELECT SUM(size) FROM results").fetchone()[0]
    assert total <= 20_000
    assert s.get("99") is not None and s.get("0") is None
    c.close()


def test_entries_are_shared_between_processes_once_committed(tmp_path, problem):
    a, b = EvalCache(tmp_path, min_seconds=0), EvalCache(tmp_path, min_seconds=0)
    a.session(_scope(problem)).put("x", _result([0.0, 1.0]), 1.0)
    assert b.session(_scope(problem)).get("x") is None  # not committed yet
    a.commit()
    assert b.session(_scope(problem)).get("x").primary == 0.5
    a.close()
    b.close()


def test_a_repeated_comparison_is_all_hits_with_the_same_results(tmp_path):
    from evobench.compare import run_comparison
    from evobench.config import RunConfig

    cfg = RunConfig(tasks=["digits-specialists-blocks"], baselines=["cmaes-dfs", "m2n2", "cmaes-ps"], budget=60,
                    seeds=[0], out=str(tmp_path / "out"))
    runs = []
    for _ in range(2):
        cache = EvalCache(tmp_path / "cache", min_seconds=0)
        runs.append(run_comparison(cfg, progress=False, cache=cache).results)
        cache.close()
    first, second = runs
    for a, b in zip(first, second, strict=True):
        assert a.cache["misses"] + a.cache["hits"] == 60 and b.cache == {"hits": 60, "misses": 0, "active": True}
        np.testing.assert_array_equal(a.values, b.values)
        assert (a.recipe, a.test_score) == (b.recipe, b.test_score)
        assert b.forward_examples < a.forward_examples  # only the starting models and the test split
    data = json.loads(next((tmp_path / "out").glob("*/results.json")).read_text())
    assert {tuple(sorted(r["cache"])) for r in data["runs"]} == {("active", "hits", "misses")}


def test_failed_candidates_are_not_stored(tmp_path, problem):
    from evobench.runner import evaluate_genomes

    dfs = make_space("dfs", problem, 0)
    c = EvalCache(tmp_path, min_seconds=0)
    s = c.session(_scope(problem))
    empty = np.zeros((1, dfs.dim))  # every slot off: no layer path, a failed candidate
    ev, _ = evaluate_genomes(dfs, problem.task, empty, cache=s)
    assert np.isnan(ev.value[0]) and ev.errors[0]
    assert s.get(dfs.candidate_key(empty[0])) is None
    ev2, _ = evaluate_genomes(dfs, problem.task, dfs.initial(np.random.default_rng(0)), cache=s)
    assert np.isfinite(ev2.value[0]) and s.get(dfs.candidate_key(dfs.initial(np.random.default_rng(0))[0]))
    c.close()


def test_command_line_cache_settings(tmp_path, monkeypatch, capsys):
    from evobench.cli import main

    assert open_cache("off") is None
    monkeypatch.setenv("EVOBENCH_EVAL_CACHE", "off")
    assert open_cache(None) is None
    monkeypatch.setenv("EVOBENCH_EVAL_CACHE", str(tmp_path / "env-cache"))
    assert open_cache(None).path == tmp_path / "env-cache" / "evals.sqlite"
    args = ["run", "--tasks", "digits-specialists", "--baselines", "m2n2", "--budget", "12", "--seeds", "0",
            "--no-tracking", "--no-progress", "--out", str(tmp_path / "o")]
    assert main([*args, "--cache", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "evals.sqlite").exists()
    assert "evaluation cache: 0 of 12 evaluations were hits" in capsys.readouterr().out
    assert main([*args, "--cache", "off"]) == 0
    assert "evaluation cache" not in capsys.readouterr().out
    (tmp_path / "file").write_text("x")
    assert main([*args, "--cache", str(tmp_path / "file" / "sub")]) == 2
    assert "--cache:" in capsys.readouterr().err
