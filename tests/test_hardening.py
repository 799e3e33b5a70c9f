"""Errors that say why before anything runs, failures that keep their message, outputs that survive."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from evobench import cli
from evobench.compare import plan, run_comparison
from evobench.config import ConfigError, build_config, parse_seeds, validate
from evobench.errors import CandidateError, StartError
from evobench.jsonio import dumps, loads
from evobench.runner import RunResult, evaluate_genomes, run_one
from evobench.spaces import make_space
from evobench.tasks import digits

TINY = ["run", "--tasks", "digits-specialists", "--baselines", "random-search", "--budget", "6", "--seeds", "0",
        "--no-progress", "--no-tracking"]


def run_cli(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_exit_2(args, capsys, needle):
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert err.startswith("evobench: error:") and err.count("\n") == 1, err
    assert needle in err, err
    return err


# ---- seeds: one parser for the CLI and YAML ------------------------------------------------------------

@pytest.mark.parametrize(("value", "want"), [
    ("0,1,2", [0, 1, 2]), ("42-46", [42, 43, 44, 45, 46]), ("0,5-7", [0, 5, 6, 7]), ([3, "8-9"], [3, 8, 9]),
    (7, [7]), (2**63 - 1, [2**63 - 1]),
])
def test_seeds_parse(value, want):
    assert parse_seeds(value) == want
    assert validate({"tasks": ["digits-scratch"], "seeds": value}).seeds == want


@pytest.mark.parametrize(("value", "needle"), [
    ("0,5-3", "is empty"), ("-1", "2**63"), (2**64, "2**63"), ("18446744073709551616", "2**63"),
    (True, "integers"), ("abc", "42-46"), ([1, 1], "distinct"), ([], "at least one"), (1.5, "integers"),
])
def test_bad_seeds_are_refused(value, needle):
    with pytest.raises(ConfigError, match="seeds") as e:
        validate({"tasks": ["digits-scratch"], "seeds": value})
    assert needle in str(e.value)


def test_cli_seeds_use_the_same_parser(capsys, tmp_path):
    for seeds, needle in (("0,5-3", "is empty"), ("18446744073709551616", "2**63"), ("-1", "2**63")):
        one_line_exit_2([*TINY, f"--seeds={seeds}", "--out", str(tmp_path)], capsys, needle)
    assert not any(tmp_path.iterdir())


# ---- plan-time checks ------------------------------------------------------------------------------------

def write(tmp_path, text: str) -> str:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    return str(f)


@pytest.mark.parametrize(("yaml_text", "needle"), [
    ("tasks: [digits-specialists]\nbaselines: [cmaes-ps]\nspaces:\n  ps: {merge_seed: abc}\n", "merge_seed"),
    ("tasks: [digits-specialists]\nbaselines: [cmaes-ps]\nspaces:\n  ps: {op: nope}\n", "nope"),
    ("tasks: [digits-specialists]\nbaselines: [cmaes-ps]\nspaces:\n  ps: {granularity: row}\n", "granularity"),
    ("tasks: [{name: digits-scratch, options: {hidden: -5}}]\nbaselines: [m2n2]\n", "hidden must be a positive"),
    ("tasks: [{name: digits-scratch, options: {hiden: 5}}]\nbaselines: [m2n2]\n", "hiden"),
    ("tasks: [digits-scratch]\nbaselines: [m2n2]\nname: a/b\n", "folder name"),
    ("tasks: [digits-scratch]\nbaselines: [m2n2]\nname: ..\n", "folder name"),
])
def test_bad_settings_fail_before_anything_runs(yaml_text, needle, capsys, tmp_path, monkeypatch):
    import evobench.compare as compare

    def never(*a, **k):
        raise AssertionError("a run started")

    monkeypatch.setattr(compare, "run_one", never)
    one_line_exit_2(["run", "--config", write(tmp_path, yaml_text), "--no-tracking", "--out",
                     str(tmp_path / "o")], capsys, needle)
    assert not (tmp_path / "o").exists()


def test_bad_space_option_fails_before_other_baselines_run(tmp_path, monkeypatch):
    """`op: nope` used to fail only when cmaes-ps's turn came, after m2n2 had run every seed."""
    import evobench.compare as compare

    calls = []
    monkeypatch.setattr(compare, "run_one", lambda *a, **k: calls.append(1))
    cfg = build_config(config_file=write(tmp_path, "tasks: [digits-specialists]\nbaselines: [m2n2, cmaes-ps]\n"
                                                   "spaces:\n  ps: {op: nope}\n"), out=str(tmp_path / "o"))
    with pytest.raises(ConfigError, match="nope"):
        run_comparison(cfg, progress=False)
    assert calls == []


def test_unwritable_out_is_refused_before_running(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_exit_2([*TINY, "--out", str(blocker / "sub")], capsys, "out: cannot write results")
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        one_line_exit_2([*TINY, "--out", str(ro)], capsys, "out: cannot write results")


# ---- what a baseline needs from a task, and names ---------------------------------------------------------

def no_descriptors() -> digits.Problem:
    """Digits specialists whose task declares no behaviour descriptors."""
    p = digits.specialists()

    class Plain(digits.DigitsTask):
        descriptor_names = ()
        descriptor_bounds = ()

    p.task = Plain()
    return p


@pytest.fixture
def plain_task():
    from evobench.registry import TASKS

    TASKS.register("digits-plain", no_descriptors)
    yield "digits-plain"
    TASKS._entries.pop("digits-plain")


def test_named_baseline_whose_needs_are_unmet_exits_2_at_plan_time(plain_task, capsys, tmp_path):
    err = one_line_exit_2(["run", "--tasks", plain_task, "--baselines", "m2n2,map-elites", "--budget", "5",
                           "--seeds", "0", "--no-tracking", "--out", str(tmp_path / "o")], capsys, "map-elites")
    assert "behaviour descriptors" in err
    assert not (tmp_path / "o").exists()


def test_all_baselines_lists_unmet_needs_as_skipped(plain_task):
    cfg = validate({"tasks": [plain_task], "baselines": "all", "budget": 5, "seeds": [0]})
    pairs, skipped = plan(cfg)
    assert "map-elites" not in {p.spec.name for p in pairs} and "m2n2" in {p.spec.name for p in pairs}
    reasons = {b: why for _, b, why in skipped}
    assert "behaviour descriptors" in reasons["map-elites"]
    assert "dfs" in reasons["cmaes-dfs"]


def test_comparison_is_named_after_its_tasks_unless_named():
    assert build_config(tasks="digits-scratch").name == "digits-scratch"
    assert build_config(tasks="digits-scratch,digits-specialists").name == "digits-scratch+digits-specialists"
    assert build_config().name == "digits-default"  # the default preset, its tasks unchanged
    assert build_config(preset="m2n2-digits-scratch").name == "m2n2-digits-scratch"
    assert build_config(preset="m2n2-digits-scratch", tasks="digits-specialists").name == "digits-specialists"
    assert build_config(tasks="digits-scratch", name="mine").name == "mine"


def test_list_tasks_describes_every_task(capsys):
    code, out, _ = run_cli(["list", "tasks"], capsys)
    rows = [ln.split(None, 1) for ln in out.splitlines()[1:]]
    assert code == 0 and rows and all(len(r) == 2 and r[1].strip() for r in rows), out


# ---- failed candidates vs bugs ------------------------------------------------------------------------------

class _Raising(digits.DigitsTask):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def evaluate(self, model, split, limit=None):
        raise self.exc


def test_a_bug_in_a_task_is_not_a_failed_candidate():
    p = digits.specialists()
    space = make_space("ps", p)
    x = space.sample(np.random.default_rng(0), 2)
    for exc in (TypeError("bad call"), IndexError("index 9"), ValueError("bug"), RuntimeError("bug")):
        with pytest.raises(type(exc)):
            evaluate_genomes(space, _Raising(exc), x)
    ev, _ = evaluate_genomes(space, _Raising(CandidateError("cannot score this one")), x)
    assert np.isnan(ev.value).all() and ev.errors == ["CandidateError: cannot score this one"] * 2
    ev, _ = evaluate_genomes(space, _Raising(torch.OutOfMemoryError("CUDA out of memory")), x)
    assert ev.errors[0] == "OutOfMemoryError: CUDA out of memory"


def test_start_models_that_fail_abort_the_run():
    p = digits.specialists()
    p.task = _Raising(CandidateError("broken"))
    from evobench.baselines.m2n2 import M2N2

    with pytest.raises(StartError, match="starting model.*broken"):
        run_one(p, M2N2(), make_space("params", p), 5, seed=0)


def test_failures_keep_their_first_distinct_messages_everywhere(capsys, tmp_path, monkeypatch):
    """Failed candidates are counted, and their messages reach results.json and the table."""
    from evobench.spaces.ps import PSSpace

    real = PSSpace.build
    calls = []

    def flaky(self, x):
        calls.append(1)
        if len(calls) > 1 and len(calls) % 3 == 0:  # never the starting model
            raise CandidateError(f"recipe {len(calls) % 2} cannot be merged")
        return real(self, x)

    monkeypatch.setattr(PSSpace, "build", flaky)
    code, out, _ = run_cli([*TINY, "--budget", "12", "--out", str(tmp_path)], capsys)
    assert code == 0
    (folder,) = tmp_path.iterdir()
    (run,) = loads((folder / "results.json").read_text())["runs"]
    assert run["failed"] == 4 and run["errors"] == ["CandidateError: recipe 1 cannot be merged",
                                                     "CandidateError: recipe 0 cannot be merged"]
    assert "random-search: 4 failed: CandidateError: recipe 1 cannot be merged (+1 other message)" in out


# ---- outputs that survive ---------------------------------------------------------------------------------

def test_json_writer_refuses_nan_and_results_write_null(tmp_path):
    with pytest.raises(ValueError):
        dumps({"x": math.nan})
    with pytest.raises(ValueError):
        loads('{"x": NaN}')
    r = RunResult(task="t", baseline="b", baseline_name="b", seed=0, space="ps", budget=3)
    s = json.loads(dumps(r.summary()))  # test score and search fitness never measured: null
    assert s["test_score"] is None and s["best_search"] is None
    back = RunResult.from_summary(s)
    assert math.isnan(back.test_score) and back.budget == 3


def test_recommended_model_is_recoverable(tmp_path):
    """best_model.safetensors rebuilds the tested model: its test score and per-example scores match."""
    from safetensors.torch import load_file

    cfg = validate({"tasks": ["digits-specialists"], "baselines": ["m2n2", "cmaes-ps"], "budget": 8,
                    "seeds": [0], "out": str(tmp_path), "name": "keep"})
    comp = run_comparison(cfg, progress=False)
    p = digits.specialists()
    for r in comp.results:
        folder = comp.out_dir / r.record
        state = load_file(str(folder / "best_model.safetensors"))
        test = p.task.evaluate(p.pool.family.build(state), "test")
        assert test.primary == r.test_score
        np.testing.assert_array_equal(np.load(folder / "test_scores.npy"), test.scores)
        assert np.load(folder / "fitness.npy").shape == (8,)
        assert json.loads((folder / "run.json").read_text())["test_score"] == r.test_score


def test_results_folders_never_collide(tmp_path):
    cfg = validate({"tasks": ["digits-specialists"], "baselines": ["random-search"], "budget": 2,
                    "seeds": [0], "out": str(tmp_path), "name": "same"})
    folders = {run_comparison(cfg, progress=False).out_dir for _ in range(3)}  # same second, same name
    assert len(folders) == 3 and all((f / "results.json").exists() for f in folders)


# ---- report: refuses what cannot be merged -------------------------------------------------------------------

@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")

    def part(name, **kw):
        data = {"tasks": ["digits-specialists"], "baselines": ["random-search"], "budget": 4, "seeds": [0, 1],
                "out": str(root), "name": name, **kw}
        return str(run_comparison(validate(data), progress=False).out_dir)

    return {"a": part("a"), "b": part("b", baselines=["cmaes-ps"]), "budget": part("c", baselines=["cmaes-ps"],
            budget=5), "seeds": part("d", baselines=["cmaes-ps"], seeds=[0, 2]),
            "space": part("e", baselines=["cmaes-ps"], spaces={"ps": {"granularity": "tensor"}}),
            "task": part("f", baselines=["cmaes-ps"], tasks=[{"name": "digits-specialists",
                                                             "options": {"train_steps": 5}}])}


@pytest.mark.parametrize(("other", "needle"), [
    ("budget", "budget 5 differs"), ("seeds", "seeds"), ("space", "space options"), ("task", "options"),
    ("a", "more than one results file"),
])
def test_report_refuses_parts_that_disagree(parts, other, needle, capsys):
    one_line_exit_2(["report", parts["a"], parts[other]], capsys, needle)


def test_report_merges_agreeing_parts_warns_on_versions_and_redraws_curves(parts, capsys, tmp_path):
    from pathlib import Path

    res = Path(parts["b"]) / "results.json"
    data = json.loads(res.read_text())
    data["environment"]["versions"]["torch"] = "0.0-other"
    edited = tmp_path / "results.json"
    edited.write_text(json.dumps(data))
    (tmp_path / "runs").symlink_to(Path(parts["b"]) / "runs")
    code, out, err = run_cli(["report", parts["a"], str(edited), "--plot", str(tmp_path / "c.png")], capsys)
    assert code == 0 and "random-search" in out and "cmaes-ps" in out
    assert "warning" in err and "torch" in err and "0.0-other" in err
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("mutate", [
    lambda d: d["runs"][0].pop("seed"),
    lambda d: d["runs"][0].update(bogus=1),
    lambda d: d["runs"][0].update(budget="x") or d["config"].update(budget="x"),
    lambda d: d.pop("config"),
])
def test_report_malformed_record_is_one_line(parts, mutate, capsys, tmp_path):
    from pathlib import Path

    data = json.loads((Path(parts["a"]) / "results.json").read_text())
    mutate(data)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(data))
    one_line_exit_2(["report", str(f)], capsys, str(f))


def test_ctrl_c_leaves_runs_killed_not_failed(tmp_path, monkeypatch):
    import evobench.compare as compare
    from evobench.tracking import Tracker

    class Recorder(Tracker):
        def __init__(self):
            super().__init__()
            self.ended = []

        def end_run(self, status="FINISHED"):
            self.ended.append(("run", status))

        def end_comparison(self, status="FINISHED"):
            self.ended.append(("comparison", status))

    real, calls = compare.run_one, []

    def interrupt_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(compare, "run_one", interrupt_second)
    tracker = Recorder()
    cfg = validate({"tasks": ["digits-specialists"], "baselines": ["random-search"], "budget": 3,
                    "seeds": [0, 1], "out": str(tmp_path)})
    with pytest.raises(KeyboardInterrupt):
        run_comparison(cfg, tracker=tracker, progress=False)
    assert tracker.ended == [("run", "FINISHED"), ("run", "KILLED"), ("comparison", "KILLED")]


def test_failure_messages_reach_the_tracker(tmp_path, monkeypatch):
    from evobench.spaces.ps import PSSpace
    from evobench.tracking import Tracker

    class Recorder(Tracker):
        def __init__(self):
            super().__init__()
            self.dicts = {}

        def log_dict(self, obj, artifact_file):
            self.dicts[artifact_file] = obj

    real = PSSpace.build

    def low_first_gene_fails(self, x):
        if x[0] < 0.5:  # the starting model (the box centre) builds
            raise CandidateError("no model for this recipe")
        return real(self, x)

    monkeypatch.setattr(PSSpace, "build", low_first_gene_fails)
    rec = Recorder()
    cfg = validate({"tasks": ["digits-specialists"], "baselines": ["random-search"], "budget": 20, "seeds": [0]})
    (r,) = run_comparison(cfg, tracker=rec, progress=False, write=False).results
    assert 0 < r.failed < 20 and r.failed == int(np.isnan(r.values).sum())
    assert rec.dicts["failures.json"] == {"failed": r.failed,
                                          "first_distinct_errors": ["CandidateError: no model for this recipe"]}


def test_table_shows_the_sources_own_scores(tmp_path):
    from evobench.report import format_table, load_comparison

    cfg = validate({"tasks": ["digits-specialists"], "baselines": ["random-search"], "budget": 2, "seeds": [0],
                    "out": str(tmp_path)})
    comp = run_comparison(cfg, progress=False)
    p = digits.specialists()
    want = {name: p.task.evaluate(p.pool.family.build(s), "test").primary for name, s in p.pool.sources}
    assert {s["source"]: s["test_score"] for s in comp.sources["digits-specialists"]} == want
    for name, score in want.items():
        assert f"(source) {name}" in format_table(comp) and f"{100 * score:.2f}" in format_table(comp)
    again = load_comparison([comp.out_dir])  # kept in results.json
    assert again.sources == comp.sources


def test_device_reaches_factories_that_take_it(capsys, tmp_path):
    from evobench.registry import TASKS

    seen = []

    def on_device(device: str = "cpu"):
        """Digits specialists, noting the device asked for."""
        seen.append(device)
        return digits.specialists()

    TASKS.register("digits-on-device", on_device)
    try:
        plan(validate({"tasks": ["digits-on-device"], "baselines": ["m2n2"], "device": "cuda:1"}))
        plan(validate({"tasks": [{"name": "digits-on-device", "options": {"device": "cpu"}}], "baselines": ["m2n2"],
                       "device": "cuda"}))
        assert seen == ["cuda:1", "cpu"]
        plan(validate({"tasks": ["digits-specialists"], "baselines": ["m2n2"], "device": "cuda"}))  # not passed
        one_line_exit_2([*TINY, "--device", "gpu", "--out", str(tmp_path)], capsys, "device must be")
    finally:
        TASKS._entries.pop("digits-on-device")


@pytest.mark.parametrize(("module", "hint"), [("tokenizers", "evobench[llm]"), ("fugashi", "evobench[ja]"),
                                              ("no_such_pkg", "pip install no_such_pkg")])
def test_a_task_missing_an_optional_package_names_the_extra(module, hint, capsys, tmp_path):
    """In an install without an extra, a task that needs it is one line naming what to install."""
    from evobench.registry import TASKS

    def needs_package():
        """A task whose models need an optional package."""
        raise ModuleNotFoundError(f"No module named '{module}'", name=module)

    TASKS.register("needs-package", needs_package)
    try:
        err = one_line_exit_2(["run", "--tasks", "needs-package", "--baselines", "m2n2", "--no-tracking",
                               "--out", str(tmp_path)], capsys, hint)
        assert f"needs the optional package '{module}'" in err
        err = one_line_exit_2(["eval", "x.gguf", "--tasks", "needs-package", "--no-tracking", "--out",
                               str(tmp_path)], capsys, "brings its own models")
    finally:
        TASKS._entries.pop("needs-package")


def test_threads_are_set_before_task_factories_run(tmp_path):
    """Factories may train models (the digits specialists), whose floats depend on the thread count."""
    import torch

    from evobench.compare import run_comparison
    from evobench.config import validate
    from evobench.registry import TASKS
    seen = []

    def recording(**options):
        seen.append(torch.get_num_threads())
        return digits.scratch(**options)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    TASKS.register("digits-threads", recording)
    try:
        run_comparison(validate({"tasks": ["digits-threads"], "baselines": ["random-search"], "budget": 2,
                                 "seeds": [0], "threads": 2, "out": str(tmp_path)}), progress=False)
    finally:
        TASKS._entries.pop("digits-threads")
        torch.set_num_threads(before)
    assert seen and set(seen) == {2}
