"""`evobench eval`: score one saved model on tasks, with per-example records."""

from __future__ import annotations

import json

import pytest

from evobench import cli
from evobench.compare import run_comparison
from evobench.config import validate


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = validate({"tasks": ["digits-specialists"], "baselines": ["m2n2"], "budget": 10, "seeds": [0],
                    "out": str(out)})
    comp = run_comparison(cfg, progress=False)
    (r,) = comp.results
    return comp.out_dir / r.record, r


def test_eval_of_a_saved_best_model_reproduces_its_test_score(saved_run, tmp_path, capsys):
    folder, run = saved_run
    code = cli.main(["eval", str(folder / "best_model.safetensors"), "--tasks", "digits-specialists",
                     "--no-tracking", "--out", str(tmp_path), "--name", "best"])
    out = capsys.readouterr().out
    assert code == 0 and f"accuracy {100 * run.test_score:.2f}" in out
    (res_dir,) = tmp_path.iterdir()
    res = json.loads((res_dir / "results.json").read_text())
    assert res["tasks"]["digits-specialists"]["score"] == run.test_score
    lines = (res_dir / "records" / "digits-specialists.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert len(recs) == 360 and sum(r["score"] for r in recs) / 360 == pytest.approx(run.test_score)
    assert all(r["score"] == float(r["prediction"] == r["target"]) for r in recs)
    assert len({r["example_id"] for r in recs}) == 360


def test_eval_limit_and_search_split(saved_run, tmp_path, capsys):
    folder, _ = saved_run
    assert cli.main(["eval", str(folder / "best_model.safetensors"), "--tasks", "digits-specialists", "--split",
                     "search", "--limit", "7", "--no-tracking", "--out", str(tmp_path)]) == 0
    (res_dir,) = tmp_path.iterdir()
    assert len((res_dir / "records" / "digits-specialists.jsonl").read_text().splitlines()) == 7


@pytest.mark.parametrize("model, tasks, needle", [
    ("nonexistent.safetensors", "digits-specialists", "no such file"),
    ("org/some-model", "digits-specialists", "brings its own models"),
    ("BEST", "digits-scratchy", "Did you mean"),
    ("BEST", "digits-specialists-blocks", "not a"),  # another family's state dict
])
def test_eval_bad_input_is_one_line(saved_run, model, tasks, needle, tmp_path, capsys):
    folder, _ = saved_run
    model = str(folder / "best_model.safetensors") if model == "BEST" else model
    code = cli.main(["eval", model, "--tasks", tasks, "--no-tracking", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not any((tmp_path / "o").glob("eval-*"))


def test_eval_options_reach_the_task_factory(saved_run, tmp_path, capsys):
    """`-o hidden=64` builds the task with 64 hidden units: the saved 256-unit model no longer fits."""
    folder, run = saved_run
    best = str(folder / "best_model.safetensors")
    code = cli.main(["eval", best, "--tasks", "digits-specialists", "-o", "hidden=64", "--no-tracking",
                     "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not a" in err, err
    assert cli.main(["eval", best, "--tasks", "digits-specialists", "--option", "digits-specialists:hidden=256",
                     "--no-tracking", "--out", str(tmp_path / "b")]) == 0
    (res_dir,) = (tmp_path / "b").iterdir()
    res = json.loads((res_dir / "results.json").read_text())["tasks"]["digits-specialists"]
    assert res["options"] == {"hidden": 256} and res["score"] == run.test_score


@pytest.mark.parametrize("option, needle", [
    ("hidden", "write KEY=VALUE"),
    ("hidden_units=64", "takes no option 'hidden_units'"),
    ("mgsm-ja:limit_test=1", "not among --tasks"),
    ("models=org/x", "give models with MODEL"),
    ("batch_size=4", "--batch-size"),
    ("seed=2024-01-01", "plain number"),  # YAML reads a date: not a JSON value for results.json
    ("seed=[1", "not valid YAML"),
])
def test_eval_bad_option_is_one_line(saved_run, option, needle, tmp_path, capsys):
    folder, _ = saved_run
    code = cli.main(["eval", str(folder / "best_model.safetensors"), "--tasks", "digits-specialists", "-o", option,
                     "--no-tracking", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_eval_of_a_language_model_on_released_files(tmp_path, capsys):
    """`evobench eval DIR --tasks ... -o data_dir=...` scores the released files (no hub): the same
    records as the task built with that data_dir, and a per-task option reaches only its task."""
    pytest.importorskip("transformers")
    from tests.lm_task_helpers import REAL, save_tiny_model

    if not (REAL / "jglue").is_dir():
        pytest.skip(f"no released benchmark files at {REAL}")
    from evobench.registry import TASKS
    from evobench.tasks.lm_common import score_model

    model = str(save_tiny_model(tmp_path / "tiny"))
    assert cli.main(["eval", model, "--tasks", "jp-lmeh-jcqa,jp-lmeh-jsquad", "--limit", "3", "--device", "cpu",
                     "-o", f"data_dir={REAL}", "-o", "jp-lmeh-jsquad:max_new_tokens=2", "--no-tracking",
                     "--out", str(tmp_path / "out")]) == 0
    (res_dir,) = (tmp_path / "out").iterdir()
    res = json.loads((res_dir / "results.json").read_text())["tasks"]
    assert res["jp-lmeh-jcqa"]["options"] == {"data_dir": str(REAL)}
    assert res["jp-lmeh-jsquad"]["options"] == {"data_dir": str(REAL), "max_new_tokens": 2}
    squad = [json.loads(x) for x in (res_dir / "records" / "jp-lmeh-jsquad.jsonl").read_text().splitlines()]
    assert len(squad) == 3 and all(r["n_new_tokens"] <= 2 for r in squad)
    assert any(r["stopped_by"] == "length" for r in squad)  # the tiny random model never stops by itself
    direct = score_model(TASKS.get("jp-lmeh-jcqa")(models=[model], data_dir=REAL, device="cpu"), "test", 3)
    jcqa = [json.loads(x) for x in (res_dir / "records" / "jp-lmeh-jcqa.jsonl").read_text().splitlines()]
    assert [r["logprobs"] for r in jcqa] == [r["logprobs"] for r in direct.predictions]
    assert [r["prediction"] for r in jcqa] == [r["prediction"] for r in direct.predictions]


def test_eval_shows_each_task_as_it_is_scored(saved_run, tmp_path, capsys):
    """A task's line is printed when it is scored, before later tasks run (here the second one fails:
    the first one's score was already shown, and no results folder is left)."""
    folder, run = saved_run
    code = cli.main(["eval", str(folder / "best_model.safetensors"), "--tasks",
                     "digits-specialists,digits-specialists-blocks", "--no-tracking", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2 and "not a" in captured.err
    assert captured.out.startswith("digits-specialists") and f"accuracy {100 * run.test_score:.2f}" in captured.out
    assert "results:" not in captured.out and not any(tmp_path.glob("eval-*"))


def _broken_models(folder, good):
    import torch
    from safetensors.torch import save_file

    nan = dict(good)
    nan["fc1.weight"] = good["fc1.weight"].clone()
    nan["fc1.weight"][3, 4] = float("inf")
    shape = {**good, "fc2.weight": torch.zeros(3, 3)}
    missing = {k: v for k, v in good.items() if k != "fc2.bias"}
    extra = {**good, "head.extra": torch.zeros(2)}
    half = {k: v.half() for k, v in good.items()}
    for name, st in (("nan", nan), ("shape", shape), ("missing", missing), ("extra", extra), ("half", half)):
        save_file(st, str(folder / f"{name}.safetensors"))
    save_file(good, str(folder / "good.safetensors"))
    data = (folder / "good.safetensors").read_bytes()
    (folder / "truncated.safetensors").write_bytes(data[: len(data) - 100])
    (folder / "header.safetensors").write_bytes(data[:20])
    (folder / "text.safetensors").write_text("not weights")


@pytest.mark.parametrize("name,message", [
    ("nan", "tensor 'fc1.weight' has 1 NaN or infinite value"),
    ("shape", "tensor 'fc2.weight' has shape (3, 3), expected (256, 10)"),
    ("missing", "missing tensor 'fc2.bias'"),
    ("extra", "tensor 'head.extra' is not one of model family 'mlp-64-256-10''s"),
    ("half", "tensor 'fc1.weight' is torch.float16, expected torch.float32"),
    ("truncated", "is not a readable safetensors file"),
    ("header", "is not a readable safetensors file"),
    ("text", "is not a readable safetensors file"),
])
def test_broken_weight_files_are_one_line_errors_naming_file_and_tensor(tmp_path, capsys, name, message):
    from evobench.cli import main
    from evobench.registry import TASKS

    problem = TASKS.get("digits-specialists")()
    _broken_models(tmp_path, dict(problem.pool.sources[0][1]))
    code = main(["eval", str(tmp_path / f"{name}.safetensors"), "--tasks", "digits-specialists", "--no-tracking",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and f"{name}.safetensors" in err and err.count("\n") == 1
    assert not list(tmp_path.glob("out/*/results.json"))  # nothing half-written
    assert main(["eval", str(tmp_path / "good.safetensors"), "--tasks", "digits-specialists", "--no-tracking",
                 "--out", str(tmp_path / "out")]) == 0
