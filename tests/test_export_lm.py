"""Layer paths of a language model written as checkpoints, on ja-math-mini: a cmaes-dfs and a ps-dfs
run (--export-best), their recommended paths merged from model folders into plain Llama folders of
one decoder layer per step (bit for bit the runs' best_model.safetensors; `from_pretrained` loads
them), which answer the test questions as the runs' path models did (up to the RMSNorm epsilon);
and the refusals."""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from safetensors.torch import load_file, save_file  # noqa: E402

from evobench.cli import main  # noqa: E402

TASK = "ja-math-mini"
# the module fixture trains ja-math-mini's models when they are not cached yet (minutes on one core)
pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(scope="module")
def lm_paths(tmp_path_factory):
    from evobench.registry import TASKS

    root = tmp_path_factory.mktemp("export-lm")
    problem = TASKS.get(TASK)()
    assert main(["run", "--tasks", TASK, "--baselines", "cmaes-dfs,ps-dfs", "--budget", "8", "--seeds", "1",
                 "--no-tracking", "--no-progress", "--export-best", "--out", str(root / "out")]) == 0
    runs = {json.loads((f / "run.json").read_text())["space"]: f for f in (root / "out").glob("*/runs/*")}
    folders = {}
    for name, state in [*problem.pool.sources, ("base", problem.pool.base)]:
        folders[name] = root / name
        folders[name].mkdir()
        problem.pool.family.save_config(folders[name])
        save_file({k: v.contiguous() for k, v in state.items()}, str(folders[name] / "model.safetensors"))
    return root, runs, folders


def _sources(folders):
    return ",".join(f"{k}={v}" for k, v in folders.items() if k != "base")


@pytest.mark.parametrize("space", ["dfs", "ps+dfs"])
def test_a_language_model_layer_path_merges_into_a_plain_llama_that_answers_as_the_run(lm_paths, space):
    from transformers import AutoModelForCausalLM

    root, runs, folders = lm_paths
    folder, out = runs[space], root / f"ckpt-{space}"
    run = json.loads((folder / "run.json").read_text())
    path = run["recipe"]["path"] if space == "dfs" else run["recipe"]["dfs"]["path"]
    assert main(["merge", str(folder), "--sources", _sources(folders), "--base", str(folders["base"]),
                 "--out", str(out)]) == 0
    got = load_file(str(out / "model.safetensors"))
    for other in (folder / "best_model.safetensors", folder / "checkpoint" / "model.safetensors"):
        want = load_file(str(other))
        assert sorted(got) == sorted(want) and all(torch.equal(got[k], want[k]) for k in want)
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == len(path) and (out / "tokenizer.json").is_file()
    assert json.loads((folder / "checkpoint" / "config.json").read_text())["num_hidden_layers"] == len(path)
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert type(model).__name__ == "LlamaForCausalLM" and len(model.model.layers) == len(path)
    # scored as a checkpoint, it answers the test questions as the run's path model did, up to the
    # RMSNorm epsilon (the plain model's norms see eps where the path's saw eps / C^2): measured on
    # this seed, 1 of 128 answers differs after the number (dfs: "9本冊" for "9本個"), no score does
    assert main(["eval", str(out / "model.safetensors"), "--tasks", TASK, "--no-tracking",
                 "--out", str(root / f"eval-{space}")]) == 0
    (ev,) = (root / f"eval-{space}").iterdir()
    got_rows = [json.loads(line) for line in (ev / "records" / f"{TASK}.jsonl").open()]
    want_rows = [json.loads(line) for line in next((folder / "records").iterdir()).open()]
    assert len(got_rows) == len(want_rows) == 128
    assert sum(a["prediction"] != b["prediction"] for a, b in zip(got_rows, want_rows, strict=True)) <= 3
    assert sum(a["score"] != b["score"] for a, b in zip(got_rows, want_rows, strict=True)) <= 1


def test_language_model_layer_paths_that_cannot_be_written_are_refused(lm_paths, tmp_path, capsys):
    root, runs, folders = lm_paths
    folder = runs["dfs"]
    bare = {k: str(v / "model.safetensors") for k, v in folders.items() if k != "base"}
    assert main(["merge", str(folder), "--sources", _sources(bare), "--out", str(tmp_path / "o")]) == 2
    assert "cannot tell the sources' architecture" in capsys.readouterr().err
    other = {}
    for name in ("en-math", "ja"):
        other[name] = tmp_path / name
        shutil.copytree(folders[name], other[name])
        config = json.loads((other[name] / "config.json").read_text())
        (other[name] / "config.json").write_text(json.dumps({**config, "model_type": "gemma2"}))
    assert main(["merge", str(folder), "--sources", _sources(other), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "'gemma2' models are not written as checkpoints" in err and err.count("\n") == 1
    recipe = {**json.loads((folder / "run.json").read_text())["recipe"], "path": [[0, 0], [1, 1]], "scales": [1.0, 0.0]}
    (tmp_path / "zero.json").write_text(json.dumps(recipe))
    assert main(["merge", str(tmp_path / "zero.json"), "--sources", _sources(folders), "--out", str(tmp_path / "o")]) == 2
    assert "step 1 scales the hidden state by 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))


def test_a_vlm_layer_path_run_exports_the_plain_vlm_that_answers_as_the_run(tmp_path):
    """ja-vlm-mini: cmaes-dfs and ps-dfs runs through its VLM's language model and a Japanese LM; the
    exported checkpoint (the VLM's language-model tensors, one layer per step) scored by `evobench
    eval` gives the run's answers. Measured: all 64 answers and scores the same, for both."""
    task = "ja-vlm-mini"
    assert main(["run", "--tasks", task, "--baselines", "cmaes-dfs,ps-dfs", "--budget", "6", "--seeds", "0",
                 "--no-tracking", "--no-progress", "--export-best", "--out", str(tmp_path / "out")]) == 0
    runs = sorted((tmp_path / "out").glob("*/runs/*"))
    assert len(runs) == 2
    for folder in runs:
        run = json.loads((folder / "run.json").read_text())
        path = run["recipe"]["path"] if run["space"] == "dfs" else run["recipe"]["dfs"]["path"]
        ckpt = load_file(str(folder / "checkpoint" / "model.safetensors"))
        assert len({k.split(".")[3] for k in ckpt if k.startswith("model.language_model.layers.")}) == len(path)
        out = tmp_path / f"eval-{folder.name}"
        assert main(["eval", str(folder / "checkpoint" / "model.safetensors"), "--tasks", task, "--no-tracking",
                     "--out", str(out)]) == 0
        (ev,) = out.iterdir()
        got = [json.loads(line) for line in (ev / "records" / f"{task}.jsonl").open()]
        want = [json.loads(line) for line in next((folder / "records").iterdir()).open()]
        assert len(got) == len(want) == 64
        assert sum(a["prediction"] != b["prediction"] for a, b in zip(got, want, strict=True)) <= 2
        assert sum(a["score"] != b["score"] for a, b in zip(got, want, strict=True)) <= 1
