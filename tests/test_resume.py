"""Resume: the run journal (format, torn writes, wrong journals), replayed runs equal uninterrupted
ones for every baseline, and `evobench run --resume` after kill -9 at random moments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evobench.evaluation import Evaluation
from evobench.journal import ResumeError, RunJournal, decode, encode, genes_checksum, read_chunks
from evobench.registry import BASELINES, TASKS
from evobench.runner import run_one
from evobench.spaces import make_space

KEY = {"task": "t", "baseline": "b", "seed": 0, "budget": 10}


def _evaluations():
    nan = float("nan")
    yield Evaluation(value=np.array([0.5, nan, 1.0]), scores=np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0],
                                                                        [1.0, 1.0, 1.0]]),
                     descriptors=np.array([[0.1, 0.9], [nan, nan], [1.0, 0.0]]), errors=[None, "boom: ü", None])
    yield Evaluation(value=np.array([0.25]), scores=np.array([[0.125, 1 / 3, 0.0, 1.0]]), errors=[None])
    yield Evaluation(value=np.array([nan, nan]), errors=["a", "b"])  # every candidate failed: no scores
    yield Evaluation(value=np.array([0.5]), scores=np.array([[-0.0, 1.0]]), errors=[None])  # -0.0 is not a bit


@pytest.mark.parametrize("ev", list(_evaluations()))
def test_a_chunk_gives_back_exactly_what_the_baseline_was_told(ev):
    chunk = encode(ev, forward_examples=12, elapsed=3.5, checksum=77)
    b = decode(chunk[12:])
    assert (b.forward_examples, b.elapsed, b.checksum, len(b)) == (12, 3.5, 77, len(ev))
    np.testing.assert_array_equal(b.evaluation.value, ev.value)
    assert b.evaluation.errors == ev.errors
    for got, want in ((b.evaluation.scores, ev.scores), (b.evaluation.descriptors, ev.descriptors)):
        if want is None:
            assert got is None
        else:
            assert got.dtype == np.float64
            np.testing.assert_array_equal(got, want)
            assert np.array_equal(np.signbit(got), np.signbit(want))  # bit for bit, -0.0 included


def test_binary_scores_are_stored_as_bits():
    s = (np.random.default_rng(0).random((1, 1437)) > 0.5).astype(float)
    small = encode(Evaluation(value=np.array([0.5]), scores=s, errors=[None]), 0, 0.0, 0)
    big = encode(Evaluation(value=np.array([0.5]), scores=s * 0.5, errors=[None]), 0, 0.0, 0)
    assert len(small) < 250 < 1437 * 8 < len(big)


def _write(folder, evs, key=KEY):
    j = RunJournal(folder, key)
    assert j.open() == []
    for i, ev in enumerate(evs):
        j.append(np.full((len(ev), 4), float(i), np.float32), ev, i, float(i))
    j.close()
    return folder / "journal.bin"


def test_a_torn_or_corrupt_tail_is_dropped_and_truncated(tmp_path):
    evs = list(_evaluations())
    path = _write(tmp_path, evs)
    data = path.read_bytes()
    ends = [0]
    for ev, i in zip(evs, range(len(evs)), strict=True):
        ends.append(ends[-1] + len(encode(ev, i, float(i), 0)))
    assert ends[-1] == len(data)
    for cut in range(len(data) + 1):  # a process killed at every byte of its writes
        path.write_bytes(data[:cut])
        batches, size = read_chunks(path)
        whole = max(k for k, e in enumerate(ends) if e <= cut)
        assert (len(batches), size) == (whole, ends[whole])
    # a flipped byte inside chunk 2: chunks 0-1 stay, the rest is not trusted
    bad = bytearray(data)
    bad[ends[2] + 20] ^= 0xFF
    path.write_bytes(bytes(bad))
    assert len(read_chunks(path)[0]) == 2
    j = RunJournal(tmp_path, KEY)
    assert [b.forward_examples for b in j.open()] == [0, 1]
    j.close()
    assert path.stat().st_size == ends[2]  # truncated: the next append follows chunk 1


def test_a_journal_of_another_run_is_refused(tmp_path):
    _write(tmp_path, list(_evaluations())[:1])
    with pytest.raises(ResumeError, match="budget differs"):
        RunJournal(tmp_path, {**KEY, "budget": 11}).open()
    (tmp_path / "journal.json").write_text(json.dumps({"format": 99, "key": KEY}))
    with pytest.raises(ResumeError, match="journal format 99"):
        RunJournal(tmp_path, KEY).open()


def test_checksum_sees_any_diverged_genome():
    x = np.random.default_rng(0).standard_normal((2, 19210)).astype(np.float32)
    y = x.copy()
    y[1] += np.float32(1e-3)
    assert genes_checksum(x) == genes_checksum(x.copy()) != genes_checksum(y)


class Stop(Exception):
    pass


def interrupted(problem, name, kind, budget, seed, stops, folder, config=None, on_step=None):
    """Run baseline ``name`` (with ``config``) with a journal in ``folder``, interrupted after each of
    ``stops`` evaluations and resumed each time; returns the final, resumed run."""
    cls = BASELINES.get(name)
    for stop in stops:
        done = [0]

        def step(k, stop=stop, done=done):
            done[0] += k
            if done[0] >= stop:
                raise Stop

        with pytest.raises(Stop):
            run_one(problem, cls(**(config or {})), make_space(kind, problem, seed), budget, seed, on_step=step,
                    journal=RunJournal(folder, KEY))
    return run_one(problem, cls(**(config or {})), make_space(kind, problem, seed), budget, seed,
                   journal=RunJournal(folder, KEY), on_step=on_step)


def _same(a, b):
    np.testing.assert_array_equal(a.values, b.values)
    assert (a.recipe, a.test_score, a.forward_examples, a.evaluations, a.failed, a.best_search) == \
        (b.recipe, b.test_score, b.forward_examples, b.evaluations, b.failed, b.best_search)
    np.testing.assert_array_equal(a.test_scores, b.test_scores)


@pytest.mark.parametrize("name,task", [
    ("m2n2", "digits-specialists"), ("m2n2-no-split", "digits-specialists"), ("ga", "digits-specialists"),
    ("map-elites", "digits-specialists"), ("brute-force-slerp", "digits-specialists"),
    ("cmaes-ps", "digits-specialists-shared"), ("random-search", "digits-specialists-shared"),
    ("cmaes-dfs", "digits-specialists-blocks"), ("ps-dfs", "digits-specialists-blocks"),
    ("m2n2", "digits-scratch"),
])
def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path, name, task):
    problem = TASKS.get(task)()
    cls = BASELINES.get(name)
    kind = problem.pick_space(cls.spaces)
    budget = 130
    ref = run_one(problem, cls(), make_space(kind, problem, 3), budget, 3)
    got = interrupted(problem, name, kind, budget, 3, [1, 37, 38, 129], tmp_path)
    _same(ref, got)
    assert got.wall_time > 0


def test_a_run_that_replays_differently_stops(tmp_path):
    problem = TASKS.get("digits-specialists")()
    space = make_space("params", problem, 0)
    m2n2 = BASELINES.get("m2n2")
    with pytest.raises(Stop):
        run_one(problem, m2n2(), space, 50, 0, on_step=lambda k: (_ for _ in ()).throw(Stop),
                journal=RunJournal(tmp_path, KEY))
    with pytest.raises(ResumeError, match="asks other candidates than its journal at evaluation 1"):
        run_one(problem, m2n2(), make_space("params", problem, 0), 50, 1, journal=RunJournal(tmp_path, KEY))


# ---- the command line: kill -9 at random moments ------------------------------------------------

CONFIG = """name: rs
tasks: [digits-specialists-blocks]
baselines: [m2n2, cmaes-ps, cmaes-dfs]
budget: 300
seeds: [0, 1]
threads: 1
"""


def _evobench(*args, cwd):
    exe = Path(sys.executable).with_name("evobench")
    return subprocess.Popen([str(exe), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _folder(out: Path) -> Path | None:
    found = sorted(out.glob(".rs-*.partial-*")) + sorted(out.glob("rs-*.incomplete"))
    return found[0] if found else None


def _comparable(path: Path):
    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if "wall" not in k and k not in ("record", "environment", "out")}
        return [strip(v) for v in d] if isinstance(d, list) else d

    return strip(json.loads(path.read_text()))


def _kill_when(proc, out: Path, threshold: int, limit: float = 120.0) -> bool:
    """SIGKILL ``proc`` once its journals (and saved runs) hold ``threshold`` bytes; False if it ended first."""
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < limit:
        folder = _folder(out)
        if folder is not None:
            size = sum(f.stat().st_size for f in folder.glob("journal/*/journal.bin")) + \
                2000 * len(list(folder.glob("runs/[!.]*")))
            if size >= threshold:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
        time.sleep(0.01)
    proc.wait()
    return False


@pytest.mark.timeout(900)
def test_kill_9_and_resume_in_a_loop_gives_the_uninterrupted_results(tmp_path):
    (tmp_path / "c.yaml").write_text(CONFIG)
    ref = _evobench("run", "--config", "c.yaml", "--no-tracking", "--no-progress", "--out", "ref", cwd=tmp_path)
    assert ref.wait() == 0, ref.stderr.read()
    out = tmp_path / "killed"
    rng = np.random.default_rng(0)
    proc = _evobench("run", "--config", "c.yaml", "--no-tracking", "--no-progress", "--out", str(out), cwd=tmp_path)
    kills = 0
    while True:
        if _kill_when(proc, out, int(rng.integers(1000, 40_000)) + kills * 20_000):
            kills += 1
            folder = _folder(out)
            assert folder is not None and not (folder / "results.json").exists()
            proc = _evobench("run", "--resume", str(folder), "--no-progress", cwd=tmp_path)
            continue
        assert proc.returncode == 0, proc.stderr.read()
        break
    assert kills >= 3
    finished = list(out.glob("rs-*/results.json"))
    assert len(finished) == 1 and not list(out.glob(".rs-*")) and not list(finished[0].parent.glob("journal"))
    assert _comparable(finished[0]) == _comparable(next((tmp_path / "ref").glob("rs-*/results.json")))


def test_resume_refuses_another_configuration_and_finished_folders(tmp_path):
    from evobench.cli import main

    (tmp_path / "c.yaml").write_text(CONFIG.replace("budget: 300", "budget: 20").replace("seeds: [0, 1]", "seeds: [0]"))
    out = tmp_path / "o"
    assert main(["run", "--config", str(tmp_path / "c.yaml"), "--no-tracking", "--no-progress", "--out", str(out)]) == 0
    done = next(out.glob("rs-*"))
    partial = out / f".{done.name}.partial-abc"
    partial.mkdir()
    (partial / "config.json").write_text((done / "config.json").read_text())
    assert main(["run", "--resume", str(done), "--no-tracking"]) == 2
    assert main(["run", "--resume", str(partial), "--budget", "21", "--no-tracking"]) == 2
    assert main(["run", "--resume", str(tmp_path), "--no-tracking"]) == 2


def test_resume_messages(tmp_path, capsys):
    from evobench.cli import main

    (tmp_path / "c.yaml").write_text(CONFIG.replace("budget: 300", "budget: 20").replace("seeds: [0, 1]", "seeds: [0]"))
    out = tmp_path / "o"
    main(["run", "--config", str(tmp_path / "c.yaml"), "--no-tracking", "--no-progress", "--out", str(out)])
    done = next(out.glob("rs-*"))
    partial = out / f".{done.name}.partial-abc"
    partial.mkdir()
    (partial / "config.json").write_text((done / "config.json").read_text())
    capsys.readouterr()
    main(["run", "--resume", str(done), "--no-tracking"])
    assert "is a completed comparison: nothing to resume" in capsys.readouterr().err
    main(["run", "--resume", str(partial), "--budget", "21", "--no-tracking"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resume: budget (saved 20, given 21)" in err
    main(["run", "--resume", str(partial), "--preset", "default", "--no-tracking"])
    assert "resume: baselines" in capsys.readouterr().err
    main(["run", "--resume", str(tmp_path / "nowhere"), "--no-tracking"])
    assert "is not a comparison's config" in capsys.readouterr().err


@pytest.mark.timeout(600)
def test_a_resumed_comparison_continues_its_mlflow_runs(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    (tmp_path / "c.yaml").write_text(CONFIG)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    out = tmp_path / "o"
    proc = _evobench("run", "--config", "c.yaml", "--tracking-uri", uri, "--no-progress", "--out", str(out), cwd=tmp_path)
    # killed in the middle of its third run (two finished and logged)
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < 300:
        folder = _folder(out)
        if folder is not None and len(list(folder.glob("runs/[!.]*"))) >= 2 and \
                any(f.stat().st_size > 3000 for f in folder.glob("journal/*/journal.bin")):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait() == -signal.SIGKILL
    resumed = _evobench("run", "--resume", str(_folder(out)), "--no-progress", cwd=tmp_path)
    assert resumed.wait() == 0, resumed.stderr.read()
    results = json.loads(next(out.glob("rs-*/results.json")).read_text())
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("evobench").experiment_id])
    parents = [r for r in runs if r.data.tags.get("evobench.role") == "comparison"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    finished = {r.info.run_name: r for r in nested if r.info.status == "FINISHED"}
    assert sorted(r.info.status for r in nested if r.info.status != "FINISHED") == ["KILLED"]
    assert len(finished) == len(results["runs"]) == 6
    for r in results["runs"]:
        logged = finished[f"{r['baseline']}/{r['task']}/seed{r['seed']}"].data.metrics["test_score"]
        assert logged == pytest.approx(r["test_score"], abs=1e-12)
