"""Per-example records of every comparison run and source, and report tasks, on digits.

The report task here is ``digits-noisy`` (registered by a fixture): the digit specialists of
``digits-specialists-shared`` — the very same models — scored on the test images with Gaussian pixel
noise, a robustness report beside the clean test score.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats as st

from evobench import cli
from evobench.compare import run_comparison
from evobench.config import validate
from evobench.problem import Problem
from evobench.registry import TASKS
from evobench.task import TEST
from evobench.tasks.digits import DigitsTask, specialists_shared
from evobench.tracking import Tracker

SEARCH_TASK = "digits-specialists-shared"


class NoisyDigits(DigitsTask):
    """digits whose test images carry N(0, noise^2) pixel noise (clipped to 0-16), drawn once."""

    def __init__(self, noise: float = 4.0) -> None:
        super().__init__()
        x, y = self.data[TEST]
        gen = torch.Generator().manual_seed(0)
        self.data = {**self.data, TEST: ((x + noise * torch.randn(x.shape, generator=gen)).clamp(0, 16), y)}


def digits_noisy(noise: float = 4.0) -> Problem:
    """The shared-init digit specialists scored on noisy test images."""
    return Problem("digits-noisy", NoisyDigits(noise), specialists_shared().pool)


@pytest.fixture(scope="module", autouse=True)
def _noisy_task():
    TASKS.register("digits-noisy", digits_noisy)
    yield
    TASKS._entries.pop("digits-noisy")


class Recorder(Tracker):
    def __init__(self):
        super().__init__()
        self.metrics: list[dict] = []

    def log_metrics(self, metrics, step=None):
        self.metrics.append(dict(metrics))


def _config(out, **extra):
    return validate({"tasks": [SEARCH_TASK], "baselines": ["random-search", "m2n2"], "budget": 8, "seeds": [0, 1],
                     "out": str(out), **extra})


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    tracker = Recorder()
    comp = run_comparison(_config(out, report_tasks=["digits-noisy"]), tracker=tracker, progress=False)
    plain = run_comparison(_config(tmp_path_factory.mktemp("plain")), progress=False)
    return comp, plain, tracker


def _lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_report_tasks_change_nothing_of_the_search(compared):
    comp, plain, _ = compared
    for a, b in zip(comp.results, plain.results, strict=True):
        assert (a.baseline, a.seed) == (b.baseline, b.seed)
        np.testing.assert_array_equal(a.values, b.values)  # not one evaluation more
        assert a.test_score == b.test_score and a.forward_examples == b.forward_examples
        assert a.recipe == b.recipe
        assert set(a.report) == {"digits-noisy"} and not b.report
    run = json.loads((plain.out_dir / plain.results[0].record / "run.json").read_text())
    assert "report" not in run  # a comparison without report tasks writes what it wrote before


def test_no_per_example_results_are_held_after_saving(compared):
    comp, _, _ = compared
    assert all(r.test_result is None and r.report_results == {} and r.best_state is None and r.best_genome is None
               for r in comp.results)


def test_run_records_are_the_test_scores_and_rescore_to_the_saved_model(compared, tmp_path, capsys):
    comp, _, _ = compared
    r = comp.results[0]
    folder = comp.out_dir / r.record
    assert {f.name for f in folder.iterdir()} == {"run.json", "fitness.npy", "test_scores.npy", "records",
                                                  "best_model.safetensors"} | ({"best_genome.npy"} if r.space != "params"
                                                                              else set())
    recs = _lines(folder / "records" / f"{SEARCH_TASK}.jsonl")
    np.testing.assert_array_equal([x["score"] for x in recs], np.load(folder / "test_scores.npy"))
    assert [x["index"] for x in recs] == list(range(360))
    assert all(x["score"] == float(x["prediction"] == x["target"]) for x in recs)
    # the report score equals re-scoring the saved weights on the report task with `evobench eval`
    code = cli.main(["eval", str(folder / "best_model.safetensors"), "--tasks", f"digits-noisy,{SEARCH_TASK}",
                     "--no-tracking", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    (ev,) = tmp_path.iterdir()
    res = json.loads((ev / "results.json").read_text())
    run = json.loads((folder / "run.json").read_text())
    assert run["report"]["digits-noisy"]["score"] == res["tasks"]["digits-noisy"]["score"] == r.report[
        "digits-noisy"]["score"]
    assert res["tasks"][SEARCH_TASK]["score"] == r.test_score
    assert run["report"]["digits-noisy"]["examples"] == 360
    assert _lines(folder / "records" / "digits-noisy.jsonl") == _lines(ev / "records" / "digits-noisy.jsonl")
    assert _lines(folder / "records" / f"{SEARCH_TASK}.jsonl") == _lines(ev / "records" / f"{SEARCH_TASK}.jsonl")
    # noise changes the images, not their labels: the report is a different test of the same model
    assert run["report"]["digits-noisy"]["score"] != r.test_score


def test_sources_are_scored_once_with_records(compared):
    comp, _, _ = compared
    problem = specialists_shared()
    noisy = NoisyDigits()
    rows = comp.sources[SEARCH_TASK]
    assert [row["source"] for row in rows] == ["digits-0to4", "digits-5to9"]
    for (name, state), row in zip(problem.pool.sources, rows, strict=True):
        model = problem.pool.family.build(state)
        x, y = noisy.data[TEST]
        expect = float((model(x).argmax(dim=1) == y).double().mean())  # scored here, not by the task
        assert row["report"]["digits-noisy"]["score"] == pytest.approx(expect, abs=1e-12)
        folder = comp.out_dir / row["record"]
        saved = json.loads((folder / "source.json").read_text())
        assert saved["task"] == SEARCH_TASK and saved["source"] == name
        assert saved["report"]["digits-noisy"]["score"] == row["report"]["digits-noisy"]["score"]
        assert saved["test_score"] == row["test_score"]
        recs = _lines(folder / "records" / "digits-noisy.jsonl")
        assert len(recs) == 360 and sum(x["score"] for x in recs) / 360 == pytest.approx(expect)
        assert len(_lines(folder / "records" / f"{SEARCH_TASK}.jsonl")) == 360


def test_table_and_results_show_report_means_with_intervals(compared, capsys):
    comp, _, _ = compared
    res = json.loads((comp.out_dir / "results.json").read_text())
    table = (comp.out_dir / "table.txt").read_text()
    assert f"{SEARCH_TASK}: report tasks, test score (mean ± 95% CI over seeds)" in table
    for row in res["tables"][SEARCH_TASK]:
        scores = [r["report"]["digits-noisy"]["score"] for r in res["runs"] if r["baseline"] == row["baseline"]]
        mean = sum(scores) / 2
        half = st.t.ppf(0.975, 1) * np.std(scores, ddof=1) / math.sqrt(2)
        cell = row["report"]["digits-noisy"]
        assert cell["seeds"] == 2 and cell["mean"] == pytest.approx(mean) and cell["ci95"] == pytest.approx(half)
        line = next(ln for ln in table.splitlines()[table.splitlines().index(
            f"{SEARCH_TASK}: report tasks, test score (mean ± 95% CI over seeds)"):] if ln.startswith(row["baseline"]))
        assert line.split()[-3:] == [f"{100 * mean:.2f}", "±", f"{100 * half:.2f}"]
    src = res["sources"][SEARCH_TASK][0]
    assert f"{100 * src['report']['digits-noisy']['score']:.2f}" in table.split("report tasks")[1]
    # `evobench report` reads the records back and prints the same table (wall time aside)
    assert cli.main(["report", str(comp.out_dir)]) == 0
    printed = capsys.readouterr().out
    assert printed.split("total wall time")[0].strip() == table.split("total wall time")[0].strip()


def test_report_metrics_reach_the_tracker(compared):
    comp, _, tracker = compared
    logged = [m for m in tracker.metrics if "test_score" in m]
    assert [m["report.digits-noisy"] for m in logged] == [r.report["digits-noisy"]["score"] for r in comp.results]
    assert [m["report.digits-noisy.accuracy"] for m in logged] == [m["report.digits-noisy"] for m in logged]


def test_incomplete_folder_keeps_sources_and_report(tmp_path, capsys, monkeypatch):
    import evobench.compare as compare

    real, calls = compare.run_one, []

    def interrupt_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(compare, "run_one", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(_config(tmp_path, report_tasks=["digits-noisy"]), progress=False)
    (kept,) = tmp_path.iterdir()
    assert kept.name.endswith(".incomplete")
    assert cli.main(["report", str(kept)]) == 0
    out = capsys.readouterr().out
    assert "report tasks" in out and "(source) digits-0to4" in out
    row = json.loads(next((kept / "sources").glob("*/0-*/source.json")).read_text())
    assert f"{100 * row['report']['digits-noisy']['score']:.2f}" in out.split("report tasks")[1]


def test_search_scores_of_every_candidate_are_optional(tmp_path):
    cfg = validate({"tasks": [SEARCH_TASK], "baselines": ["random-search"], "budget": 6, "seeds": [0],
                    "out": str(tmp_path), "save_search_scores": True})
    comp = run_comparison(cfg, progress=False)
    (r,) = comp.results
    scores = np.load(comp.out_dir / r.record / "search_scores.npy", allow_pickle=False)
    assert scores.shape == (6, 1437) and scores.dtype == np.float32
    np.testing.assert_array_equal(np.round(scores.sum(axis=1)), np.round(r.values * 1437))
    assert set(np.unique(scores)) <= {0.0, 1.0}


@pytest.mark.parametrize("extra, needle", [
    (["--report-tasks", "digits-noisyy"], "Did you mean 'digits-noisy'"),
    (["--report-tasks", "digits-specialists"], "brings its own models, which are not the models of"),
    (["--report-tasks", "digits-specialists-blocks"], "cannot score its models"),
    (["--report-tasks", "jp-lmeh-jcqa"], "loads models by name (option 'models'), but task"),
    (["--report-tasks", SEARCH_TASK], "is also a task of this comparison"),
    (["--report-tasks", "digits-noisy,digits-noisy"], "'digits-noisy' is listed twice"),
])
def test_bad_report_tasks_are_refused_before_running(extra, needle, tmp_path, capsys):
    code = cli.main(["run", "--tasks", SEARCH_TASK, "--baselines", "random-search", "--budget", "4", "--seeds", "0",
                     "--no-tracking", "--no-progress", "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_report_task_options_cannot_name_the_models(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"tasks: [{SEARCH_TASK}]\nbaselines: [random-search]\nbudget: 4\nseeds: [0]\n"
                   "report_tasks:\n  - name: digits-noisy\n    options: {noise: 2.0, device: cpu}\n")
    code = cli.main(["run", "--config", str(cfg), "--no-tracking", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "report task 'digits-noisy': option 'device' cannot be set" in err, err


def test_report_refuses_parts_with_other_report_task_options(tmp_path, capsys):
    for name, noise in (("a", 4.0), ("b", 2.0)):
        cfg = validate({"tasks": [SEARCH_TASK], "baselines": ["random-search" if name == "a" else "m2n2"],
                        "budget": 3, "seeds": [0], "out": str(tmp_path), "name": name,
                        "report_tasks": [{"name": "digits-noisy", "options": {"noise": noise}}]})
        run_comparison(cfg, progress=False)
    a, b = sorted(tmp_path.iterdir())
    assert cli.main(["report", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "report task 'digits-noisy' options {'noise': 2.0} differ from {'noise': 4.0}" in err, err
