"""The Ray executor: the same results as the serial loop whatever the completion order, and a
worker killed in the middle of a run is restarted and its run retried from its journal."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from evobench.compare import run_comparison  # noqa: E402
from evobench.config import RunConfig  # noqa: E402
from evobench.executors import RayCandidateExecutor, RayExecutor  # noqa: E402

pytestmark = pytest.mark.timeout(900)


def _config(out: Path, budget: int = 150) -> RunConfig:
    return RunConfig(tasks=["digits-specialists-blocks"], baselines=["m2n2", "cmaes-ps", "cmaes-dfs", "ga"],
                     budget=budget, seeds=[0, 1], threads=1, out=str(out), name="ray")


def _comparable(comp) -> dict:
    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if "wall" not in k and k not in ("record", "environment", "out")}
        return [strip(v) for v in d] if isinstance(d, list) else d

    return strip(json.loads((comp.out_dir / "results.json").read_text()))


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return run_comparison(_config(tmp_path_factory.mktemp("serial")), progress=False)


def test_ray_gives_the_serial_results(serial, tmp_path):
    comp = run_comparison(_config(tmp_path), progress=False, executor=RayExecutor(workers=2))
    assert _comparable(comp) == _comparable(serial)
    assert [(r.baseline, r.seed) for r in comp.results] == [(r.baseline, r.seed) for r in serial.results]
    assert len(list((comp.out_dir / "runs").iterdir())) == 8 and not (comp.out_dir / "journal").exists()


def _workers(kind: str = "_Worker") -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if f"ray::{kind}" in " ".join(p.info["cmdline"] or [])]


def _kill_during_comparison(cfg, executor, kind: str):
    """Run the comparison in a thread and SIGKILL a ``ray::{kind}`` actor (at most twice) once a run's
    journal holds some evaluations; returns the finished comparison and how many were killed."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("comp", run_comparison(
        cfg, progress=False, executor=executor)))
    thread.start()
    killed = 0
    deadline = time.monotonic() + 600
    while thread.is_alive() and killed < 2 and time.monotonic() < deadline:
        journals = [f for f in Path(cfg.out).glob(".ray-*.partial-*/journal/*/journal.bin") if f.stat().st_size > 2000]
        actors = _workers(kind)
        if journals and actors:
            os.kill(actors[killed % len(actors)].pid, signal.SIGKILL)
            killed += 1
            time.sleep(3)
        time.sleep(0.02)
    thread.join(600)
    return box.get("comp"), killed


def test_a_worker_killed_mid_run_is_retried_from_its_journal(serial, tmp_path):
    comp, killed = _kill_during_comparison(_config(tmp_path), RayExecutor(workers=2), "_Worker")
    assert killed >= 1 and comp is not None
    assert _comparable(comp) == _comparable(serial)


def test_candidates_scored_on_ray_actors_give_the_serial_results(serial, tmp_path):
    comp = run_comparison(_config(tmp_path), progress=False, executor=RayCandidateExecutor(workers=2))
    assert _comparable(comp) == _comparable(serial)
    assert [(r.baseline, r.seed) for r in comp.results] == [(r.baseline, r.seed) for r in serial.results]
    assert not ray.is_initialized()  # the executor's own Ray is shut down with the comparison


def test_a_scoring_actor_killed_mid_batch_is_restarted_and_its_candidate_rescored(serial, tmp_path):
    comp, killed = _kill_during_comparison(_config(tmp_path), RayCandidateExecutor(workers=2), "_Scorer")
    assert killed >= 1 and comp is not None
    assert _comparable(comp) == _comparable(serial)


def test_bad_executor_settings_are_one_line_errors(tmp_path, capsys):
    from evobench.cli import main

    base = ["run", "--tasks", "digits-specialists", "--baselines", "m2n2", "--budget", "5", "--seeds", "0",
            "--no-tracking", "--no-progress", "--out", str(tmp_path)]
    assert main([*base, "--workers", "3"]) == 2
    assert "--workers and --address go with --executor ray" in capsys.readouterr().err
    assert main([*base, "--executor", "ray", "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
