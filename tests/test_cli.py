"""The command line: help, list, bad input (one line, exit 2, nothing written), a small real run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evobench import cli
from tests.mlflow_server import free_port

SMALL = ["run", "--tasks", "digits-specialists", "--baselines", "random-search,cmaes-ps", "--budget", "24",
         "--seeds", "0,1", "--no-progress"]


def run_cli(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


EVOBENCH = Path(sys.executable).parent / "evobench"  # the console script pip installed


def test_help_from_the_installed_entry_point():
    assert EVOBENCH.exists(), f"the evobench console script is not installed beside {sys.executable}"
    for args in (["--help"], ["run", "--help"], ["list", "--help"], ["compare", "--help"], ["report", "--help"]):
        p = subprocess.run([str(EVOBENCH), *args], capture_output=True, text=True)
        assert p.returncode == 0 and "usage: evobench" in p.stdout
    p = subprocess.run([str(EVOBENCH), "run", "--help"], capture_output=True, text=True)
    for flag in ("--tasks", "--baselines", "--budget", "--seeds", "--tracking-uri", "--out", "--preset", "--tracker"):
        assert flag in p.stdout


def test_installed_script_runs_and_fails_with_one_line(tmp_path):
    """The console script end to end: a tiny run writes results; bad seeds exit 2 with one line."""
    out = tmp_path / "o"
    p = subprocess.run([str(EVOBENCH), *SMALL[:-1], "--budget", "6", "--seeds", "0", "--no-tracking",
                        "--no-progress", "--out", str(out), "--name", "script"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    (folder,) = out.iterdir()
    assert folder.name.startswith("script-") and (folder / "results.json").exists()
    p = subprocess.run([str(EVOBENCH), *SMALL, "--seeds=-1", "--no-tracking", "--out", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "2**63" in p.stderr


def test_list_names_everything(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    for name in ("digits-scratch", "digits-specialists-blocks", "m2n2-no-attraction", "map-elites",
                 "cmaes-dfs", "dare_ties", "split_slerp", "m2n2-digits-scratch"):
        assert name in out
    assert "M2N2 paper, digits from scratch" in out  # a preset's description


@pytest.mark.parametrize("args, needle", [
    (["run", "--baselines", "m2m2"], "Did you mean 'm2n2'"),
    (["run", "--tasks", "digit-scratch"], "Did you mean 'digits-scratch'"),
    (["run", "--budget", "0"], "budget"),
    (["run", "--budget", "-5"], "budget"),
    (["run", "--preset", "m2n2-digits"], "unknown preset"),
    (["run", "--config", "/nonexistent/x.yaml"], "does not exist"),
    (["run", "--tasks", "digits-specialists", "--baselines", "cmaes-dfs"], "cmaes-dfs"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli([*args, "--no-tracking", "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert err.startswith("evobench: error:") and needle in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_unreachable_tracking_uri_fails_fast(capsys, tmp_path):
    t0 = time.perf_counter()
    code, _, err = run_cli([*SMALL, "--tracking-uri", f"http://127.0.0.1:{free_port()}",
                            "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "127.0.0.1" in err and err.count("\n") == 1
    assert time.perf_counter() - t0 < 10
    assert not (tmp_path / "out").exists()


def test_bad_config_value_names_the_field(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("tasks: [digits-specialists]\nbaselines:\n  - name: cmaes-ps\n    config: {popsize: 1}\n")
    code, _, err = run_cli(["run", "--config", str(cfg), "--no-tracking"], capsys)
    assert code == 2 and "baselines[0]" in err and "popsize" in err


def test_small_run_writes_complete_results(capsys, tmp_path):
    code, out, _ = run_cli([*SMALL, "--no-tracking", "--out", str(tmp_path / "out"), "--name", "t"], capsys)
    assert code == 0
    assert "random-search" in out and "cmaes-ps" in out and "± " in out
    (folder,) = (tmp_path / "out").iterdir()
    assert folder.name.startswith("t-")
    res = json.loads((folder / "results.json").read_text())
    assert {r["baseline"] for r in res["runs"]} == {"random-search", "cmaes-ps"}
    assert all(r["evaluations"] == 24 for r in res["runs"]) and len(res["runs"]) == 4
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert len(res["tables"]["digits-specialists"]) == 2


def test_interrupted_run_keeps_finished_runs_but_no_results(capsys, tmp_path, monkeypatch):
    import evobench.compare as compare

    calls = []

    def boom(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    real = compare.run_one
    monkeypatch.setattr(compare, "run_one", boom)
    code, _, err = run_cli([*SMALL, "--no-tracking", "--out", str(tmp_path / "out")], capsys)
    assert code == 130 and "no complete results written" in err
    assert not any((tmp_path / "out").glob("*/results.json"))
    (kept,) = (tmp_path / "out").iterdir()
    assert kept.name.endswith(".incomplete") and str(kept) in err
    (run,) = (kept / "runs").iterdir()  # the one run that finished before the interrupt, whole
    assert {f.name for f in run.iterdir()} == {"run.json", "fitness.npy", "test_scores.npy", "records",
                                               "best_model.safetensors", "best_genome.npy"}
    code, out, _ = run_cli(["report", str(kept)], capsys)
    assert code == 0 and "random-search" in out and "cmaes-ps" not in out
    # resumed: the finished run is kept as it was, the other three run, the folder gets its final name
    monkeypatch.setattr(compare, "run_one", real)
    before = (run / "run.json").read_text()
    code, out, _ = run_cli(["run", "--resume", str(kept), "--no-progress", "--no-tracking"], capsys)
    assert code == 0 and "cmaes-ps" in out
    (done,) = (tmp_path / "out").iterdir()
    assert not done.name.endswith(".incomplete") and (done / "runs" / run.name / "run.json").read_text() == before
    assert len(json.loads((done / "results.json").read_text())["runs"]) == 4


def test_bad_space_option_fails_before_running(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("tasks: [digits-specialists]\nbaselines: [cmaes-ps]\nspaces:\n  ps: {granularty: tensor}\n")
    code, _, err = run_cli(["run", "--config", str(cfg), "--no-tracking", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "granularty" in err and "granularity" in err
    assert not (tmp_path / "o").exists()


def test_a_baseline_without_any_test_score_does_not_sink_the_comparison(capsys, tmp_path, monkeypatch):
    import evobench.compare as compare

    real = compare.run_one

    def all_failed(problem, baseline, *a, **k):
        r = real(problem, baseline, *a, **k)
        if r.baseline == "random-search":
            r.test_score, r.failed = float("nan"), r.evaluations
        return r

    monkeypatch.setattr(compare, "run_one", all_failed)
    code, out, _ = run_cli([*SMALL, "--no-tracking", "--out", str(tmp_path / "out")], capsys)
    assert code == 0
    assert "random-search         no test score: no candidate succeeded (48 failed)" in out
    (folder,) = (tmp_path / "out").iterdir()
    res = json.loads((folder / "results.json").read_text())
    assert [r["baseline"] for r in res["tables"]["digits-specialists"]] == ["cmaes-ps"]


def test_report_merges_parts_and_refuses_overlaps(capsys, tmp_path):
    base = ["run", "--tasks", "digits-specialists", "--budget", "12", "--seeds", "0,1", "--no-progress",
            "--no-tracking", "--out", str(tmp_path)]
    assert run_cli([*base, "--baselines", "random-search", "--name", "a"], capsys)[0] == 0
    assert run_cli([*base, "--baselines", "cmaes-ps", "--name", "b"], capsys)[0] == 0
    a, b = sorted(tmp_path.iterdir())
    code, out, _ = run_cli(["report", str(a), str(b / "results.json"), "--json", str(tmp_path / "m.json")], capsys)
    assert code == 0 and "random-search" in out and "cmaes-ps" in out
    merged = json.loads((tmp_path / "m.json").read_text())
    assert len(merged["runs"]) == 4 and len(merged["tables"]["digits-specialists"]) == 2
    code, _, err = run_cli(["report", str(a), str(a)], capsys)
    assert code == 2 and "more than one results file" in err
    (tmp_path / "bad.json").write_text("{}")
    code, _, err = run_cli(["report", str(tmp_path / "bad.json")], capsys)
    assert code == 2 and "not an evobench results file" in err
