"""`evobench submit` and `evobench leaderboard verify`: a submission goes from YAML to a sealed result,
methods run confined (hostile ones fail with the reason and leave nothing behind), results reproduce."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from evobench.cli import main
from evobench.leaderboard.protocol import load_protocol, track_hash
from evobench.leaderboard.results import load_result, seal
from evobench.leaderboard.sandbox import landlock_abi

PLUGINS = Path(__file__).parent / "plugins" / "lbpkg"

pytestmark = pytest.mark.skipif(landlock_abi() < 1, reason="needs Linux Landlock to confine submitted methods")

PROTOCOL = """\
version: 3
alpha: 0.05
tracks:
  digits:
    description: two digit specialists
    task: {name: digits-specialists}
    budget: 12
    seeds: [0, 1]
    limits: {method_seconds: LIMIT, memory_mb: 2048}
"""

GOOD_METHOD = '''
import numpy as np
from evobench.baseline import Baseline, BaselineConfig

class Cfg(BaselineConfig):
    batch: int = 3

class Sampler(Baseline):
    name = "sampler"
    spaces = ("ps",)
    Config = Cfg

    def _ask(self):
        HOOK_ASK
        return self.space.sample(self.rng, self.config.batch)

    def _tell(self, x, ev):
        pass

HOOK_IMPORT
'''


def _protocol(tmp_path: Path, limit: float = 60) -> Path:
    p = tmp_path / "protocol.yaml"
    p.write_text(PROTOCOL.replace("LIMIT", str(limit)))
    return p


def _file_submission(tmp_path: Path, ask: str = "pass", at_import: str = "", name: str = "sampler",
                     extra: str = "") -> Path:
    folder = tmp_path / "submissions"
    folder.mkdir(exist_ok=True)
    code = GOOD_METHOD.replace("HOOK_ASK", ask).replace("HOOK_IMPORT", at_import)
    (folder / f"{name}.py").write_text(code)
    sha = hashlib.sha256(code.encode()).hexdigest()
    y = folder / f"{name}.yaml"
    y.write_text(f"name: {name}\nversion: '1'\nauthors: [A. Author]\nlicense: MIT\n"
                 f"code: {{file: {name}.py, sha256: {sha}}}\nentry_point: Sampler\n"
                 f"hyperparameters: {{batch: 3}}\ntracks: [digits]\n{extra}")
    return y


def _submit(tmp_path, sub: Path, protocol: Path, *more: str) -> int:
    return main(["submit", str(sub), "--protocol", str(protocol), "--results", str(tmp_path / "results"), *more])


def _submitted(tmp_path, *more: str) -> tuple[Path, Path, Path]:
    """The test protocol and the file submission ``sampler``, submitted (``more``: extra flags):
    ``(protocol, submission, its digits result)``."""
    proto = _protocol(tmp_path)
    sub = _file_submission(tmp_path)
    assert _submit(tmp_path, sub, proto, *more) == 0
    return proto, sub, tmp_path / "results" / "sampler" / "digits.json"


def test_a_file_method_is_run_and_sealed_and_verifies(tmp_path, capsys):
    proto, sub, path = _submitted(tmp_path)
    loaded = load_result(path)
    r = loaded.result
    assert not loaded.tampered and not loaded.stale(track_hash(load_protocol(proto), "digits"), 3)
    assert [run.seed for run in r.runs] == [0, 1] and r.budget == 12 and r.space == "ps"
    assert all(run.evaluations == 12 and len(run.test_scores) == 360 for run in r.runs)
    # the test score is the mean of the per-example records, and the curve is a best-so-far curve
    for run in r.runs:
        assert run.test_score == pytest.approx(np.mean(run.test_scores))
        assert run.curve.evaluations[0] == 0 and run.curve.evaluations[-1] == 12
        assert np.all(np.diff(run.curve.best_so_far) >= 0)
    assert r.hashes.code == hashlib.sha256((sub.parent / "sampler.py").read_bytes()).hexdigest()
    assert r.method.hyperparameters == {"batch": 3}
    capsys.readouterr()
    assert main(["leaderboard", "verify", str(path), "--seed", "1", "--submissions", str(sub.parent),
                 "--protocol", str(proto)]) == 0
    assert "reproduces bit for bit" in capsys.readouterr().out


def test_verify_catches_a_forged_score_that_was_resealed(tmp_path, capsys):
    proto, sub, path = _submitted(tmp_path)
    data = json.loads(path.read_text())
    data["runs"][0]["test_score"] += 0.01
    path.write_text(json.dumps(data))
    assert load_result(path).tampered  # an edit that did not recompute the hash
    args = ["leaderboard", "verify", str(path), "--submissions", str(sub.parent), "--protocol", str(proto)]
    capsys.readouterr()
    assert main(args) == 1
    assert "edited after evobench wrote it" in capsys.readouterr().err
    path.write_text(json.dumps(seal(data)))  # a forger who recomputes the hash: verify re-runs the seed
    assert not load_result(path).tampered
    assert main(args) == 1
    assert "does NOT reproduce: test_score differ" in capsys.readouterr().err


def test_the_protocol_changing_makes_results_stale(tmp_path, capsys):
    proto, sub, path = _submitted(tmp_path, "--tracks", "digits")
    proto.write_text(proto.read_text().replace("budget: 12", "budget: 13"))
    assert load_result(path).stale(track_hash(load_protocol(proto), "digits"), 3)
    capsys.readouterr()
    assert main(["leaderboard", "verify", str(path), "--submissions", str(sub.parent), "--protocol", str(proto)]) == 1
    assert "another definition of track 'digits'" in capsys.readouterr().err


def test_a_third_party_package_is_found_through_its_entry_point(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    assert "hillclimb_method" not in sys.modules
    proto = _protocol(tmp_path)
    sub = tmp_path / "hillclimb.yaml"
    sub.write_text("name: hillclimb\nversion: '0.2.0'\nauthors: [Third Party]\nlicense: BSD-3-Clause\n"
                   "code: {package: hillclimb-method, version: 0.2.0}\nentry_point: hillclimb\n"
                   "url: https://example.org/hillclimb\nhyperparameters: {batch: 4, step: 0.3}\ntracks: [digits]\n")
    assert _submit(tmp_path, sub, proto, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "contract suite:" in out and "passed" in out and "dry run passed" in out
    assert not (tmp_path / "results").exists()
    assert _submit(tmp_path, sub, proto) == 0
    r = load_result(tmp_path / "results" / "hillclimb" / "digits.json").result
    assert r.method.code == {"package": "hillclimb-method", "version": "0.2.0"}
    assert r.hashes.code == hashlib.sha256((PLUGINS / "hillclimb_method" / "__init__.py").read_bytes()).hexdigest()
    assert min(run.test_score for run in r.runs) > 0.3  # better than chance on ten digits
    assert "hillclimb_method" not in sys.modules  # evobench's own process never imported the method


def test_a_wrong_package_version_or_entry_point_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    proto = _protocol(tmp_path)
    sub = tmp_path / "hc.yaml"
    base = "name: hc\nversion: '1'\nauthors: [T]\nlicense: MIT\ntracks: [digits]\n"
    sub.write_text(base + "code: {package: hillclimb-method, version: 0.1.0}\nentry_point: hillclimb\n")
    assert _submit(tmp_path, sub, proto) == 2
    assert "installed at version 0.2.0, the submission names 0.1.0" in capsys.readouterr().err
    sub.write_text(base + "code: {package: hillclimb-method, version: 0.2.0}\nentry_point: hill\n")
    assert _submit(tmp_path, sub, proto) == 2
    assert "has no entry point 'hill' in group evobench.baselines (it has: hillclimb)" in capsys.readouterr().err


# ---- hostile submissions -------------------------------------------------------------------------------
def test_code_at_import_cannot_write_outside_its_run_folder(tmp_path, capsys):
    target = tmp_path / "pwned.txt"
    sub = _file_submission(tmp_path, at_import=f"open({str(target)!r}, 'w').write('x')")
    assert _submit(tmp_path, sub, _protocol(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "init raised PermissionError" in err and "pwned.txt" in err
    assert not target.exists() and not (tmp_path / "results").exists()
    assert "evobench_submission" not in sys.modules


def test_a_method_cannot_write_the_results_or_anywhere_else(tmp_path, capsys):
    forged = tmp_path / "results" / "sampler" / "digits.json"
    ask = f"import os; os.makedirs({str(forged.parent)!r}, exist_ok=True); open({str(forged)!r}, 'w').write('{{}}')"
    sub = _file_submission(tmp_path, ask=ask)
    assert _submit(tmp_path, sub, _protocol(tmp_path)) == 1
    assert "ask raised PermissionError" in capsys.readouterr().err
    assert not forged.exists() and not forged.parent.exists()


def test_a_method_can_write_in_its_own_run_folder(tmp_path):
    ask = "open(self.workdir / 'scratch.bin', 'wb').write(b'1' * 1000)"
    assert _submit(tmp_path, _file_submission(tmp_path, ask=ask), _protocol(tmp_path)) == 0


def test_a_method_cannot_connect_or_signal_evobench(tmp_path, capsys):
    ask = "import socket; socket.create_connection(('127.0.0.1', 9), timeout=2)"
    assert _submit(tmp_path, _file_submission(tmp_path, ask=ask), _protocol(tmp_path)) == 1
    assert "ask raised PermissionError" in capsys.readouterr().err
    ask = "import os, signal; os.kill(os.getppid(), signal.SIGTERM)"
    assert _submit(tmp_path, _file_submission(tmp_path, ask=ask, name="killer"), _protocol(tmp_path)) == 1
    assert "ask raised PermissionError: [Errno 1] Operation not permitted" in capsys.readouterr().err


def test_a_method_past_its_time_limit_is_killed(tmp_path, capsys):
    sub = _file_submission(tmp_path, ask="import time; time.sleep(60)")
    assert _submit(tmp_path, sub, _protocol(tmp_path, limit=2)) == 1
    assert "exceeded its time limit of 2 s per run (in ask)" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_a_method_past_its_memory_limit_fails(tmp_path, capsys):
    sub = _file_submission(tmp_path, ask="import numpy; self.hog = numpy.ones(2**30)")  # 8 GiB > 2048 MiB
    assert _submit(tmp_path, sub, _protocol(tmp_path)) == 1
    assert "MemoryError (the track's memory limit)" in capsys.readouterr().err


def test_a_method_that_breaks_the_contract_fails_the_dry_run(tmp_path, capsys):
    code = GOOD_METHOD.replace("HOOK_ASK", "return np.zeros((2, 3))").replace("HOOK_IMPORT", "")
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "bad.py").write_text(code)
    sub = folder / "bad.yaml"
    sub.write_text(f"name: bad\nversion: '1'\nauthors: [X]\nlicense: MIT\ntracks: [digits]\nentry_point: Sampler\n"
                   f"code: {{file: bad.py, sha256: {hashlib.sha256(code.encode()).hexdigest()}}}\n")
    assert _submit(tmp_path, sub, _protocol(tmp_path), "--dry-run") == 1
    assert "fails the baseline contract suite" in capsys.readouterr().err


@pytest.mark.parametrize("code_line, message", [
    ("code: {file: ../outside.py, sha256: SHA}", "code: Value error, file '../outside.py' must be a relative"),
    ("code: {file: /etc/passwd.py, sha256: SHA}", "must be a relative .py path"),
    ("code: {file: link.py, sha256: SHA}", "code.file 'link.py' leaves the submission's folder"),
    ("code: {file: sampler.py, sha256: " + "0" * 63 + "a}", "code.sha256 does not match sampler.py"),
])
def test_code_paths_cannot_leave_the_submission_folder(tmp_path, capsys, code_line, message):
    sub = _file_submission(tmp_path)
    (tmp_path / "outside.py").write_text("x = 1\n")
    (sub.parent / "link.py").symlink_to(tmp_path / "outside.py")
    sha = hashlib.sha256(b"x = 1\n").hexdigest()
    text = sub.read_text().splitlines()
    line = next(i for i, t in enumerate(text) if t.startswith("code:"))
    text[line] = code_line.replace("SHA", sha)
    sub.write_text("\n".join(text) + "\n")
    assert _submit(tmp_path, sub, _protocol(tmp_path)) == 2
    err = capsys.readouterr().err
    assert message.removeprefix("code: Value error, ") in err
    if "must be a relative" in message:
        assert f"{sub}:{line + 1}: code:" in err  # the error names the file's line and the field


@pytest.mark.parametrize("task, baseline, budget", [("digits-scratch", "m2n2", 60), ("digits-specialists", "cmaes-ps", 30)])
def test_a_confined_method_gives_exactly_the_in_process_results(task, baseline, budget):
    """The method's process changes nothing: its space's draws are made by evobench with the method's
    generator state (M2N2 from scratch samples fresh models), genomes travel as exact .npy arrays."""
    from importlib.metadata import version

    from evobench.leaderboard.protocol import Protocol
    from evobench.leaderboard.submission import Submission, resolve_code
    from evobench.leaderboard.submit import build_problem, run_seed
    from evobench.registry import BASELINES
    from evobench.runner import baseline_config, run_one
    from evobench.spaces import make_space

    track = Protocol.model_validate({"version": 1, "tracks": {"t": {"task": {"name": task}, "budget": budget,
                                                                     "seeds": [3]}}}).track("t")
    sub = Submission.model_validate({"name": "x", "version": "1", "authors": ["a"], "license": "MIT",
                                     "code": {"package": "evobench", "version": version("evobench")},
                                     "entry_point": baseline, "tracks": ["t"]})
    problem = build_problem(track)
    remote = run_seed(sub, resolve_code(sub, Path("."), "x"), "t", track, problem, 3)
    cls = BASELINES.get(baseline)
    kind, _ = problem.choose_space(cls)
    local = run_one(problem, cls(baseline_config(cls, {}, problem)), make_space(kind, problem, 3), budget, 3)
    assert remote["test_score"] == local.test_score and remote["best_search"] == local.best_search
    assert np.array_equal(np.array(remote["test_scores"]), local.test_scores)
    assert remote["curve"]["best_so_far"][-1] == local.best_curve()[1][-1]
    assert remote["evaluations"] == budget and remote["failed"] == local.failed == 0


def test_verify_names_the_cpu_when_the_tasks_models_differ(tmp_path, capsys):
    from evobench.provenance import cpu_model

    proto, sub, path = _submitted(tmp_path)
    data = json.loads(path.read_text())
    assert data["environment"]["cpu"] == cpu_model()
    data["hashes"]["models"] = "0" * 64  # as if trained elsewhere, to other floats
    data["environment"]["cpu"] = "Some Other CPU"
    path.write_text(json.dumps(seal(data)))
    capsys.readouterr()
    assert main(["leaderboard", "verify", str(path), "--submissions", str(sub.parent), "--protocol", str(proto)]) == 1
    err = capsys.readouterr().err
    assert "the task's models differ from the result's" in err
    assert f"trained on Some Other CPU, this machine is {cpu_model()}" in err
