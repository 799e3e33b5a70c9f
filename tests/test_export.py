"""`evobench merge`: a run's recommended ps model rebuilt bit for bit from its folder and the source
files, the same from its rounded recipe to within rounding, and one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from evobench.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A cmaes-ps run on digits-specialists-shared (DARE-TIES with a base, tensor granularity) and the
    task's sources and base as files."""
    root = tmp_path_factory.mktemp("export")
    cfg = root / "c.yaml"
    cfg.write_text("name: ex\ntasks: [digits-specialists-shared]\nbaselines: [cmaes-ps]\nbudget: 12\nseeds: [1]\n"
                   "spaces:\n  ps: {granularity: tensor, merge_seed: 5}\n")
    assert main(["run", "--config", str(cfg), "--no-tracking", "--no-progress", "--out", str(root / "out")]) == 0
    (folder,) = (root / "out").glob("ex-*/runs/*")
    names = _task_files("digits-specialists-shared", root)
    return root, folder, names


def _task_files(task: str, root):
    """The task's sources as ``root/<name>.safetensors`` (by name) and its base as ``root/base.safetensors``."""
    from evobench.registry import TASKS

    problem = TASKS.get(task)()
    names = {}
    for name, state in problem.pool.sources:
        save_file(state, str(root / f"{name}.safetensors"))
        names[name] = str(root / f"{name}.safetensors")
    save_file(problem.pool.base, str(root / "base.safetensors"))
    return names


def _sources(names):
    return ",".join(f"{k}={v}" for k, v in names.items())


def test_a_run_folder_merges_to_exactly_its_recommended_model(run):
    root, folder, names = run
    out = root / "ckpt"
    assert main(["merge", str(folder), "--sources", _sources(names), "--base", str(root / "base.safetensors"),
                 "--out", str(out)]) == 0
    got, want = load_file(str(out / "model.safetensors")), load_file(str(folder / "best_model.safetensors"))
    assert sorted(got) == sorted(want) and all(torch.equal(got[k], want[k]) for k in want)
    meta = json.loads((out / "recipe.json").read_text())
    assert meta["exact_from_genome"] and meta["merge_seed"] == 5 and len(meta["output"]["sha256"]) == 64
    assert set(meta["inputs"]) == {*names, "base"} and sorted(p.name for p in out.iterdir()) == \
        ["model.safetensors", "recipe.json"]


def test_a_recipe_file_merges_to_the_model_within_rounding(run, tmp_path):
    root, folder, names = run
    recipe = json.loads((folder / "run.json").read_text())["recipe"]
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    assert main(["merge", str(tmp_path / "recipe.json"), "--sources", _sources(names), "--base",
                 str(root / "base.safetensors"), "--merge-seed", "5", "--out", str(tmp_path / "ckpt")]) == 0
    got, want = load_file(str(tmp_path / "ckpt" / "model.safetensors")), load_file(str(folder / "best_model.safetensors"))
    assert all(torch.allclose(got[k], want[k], atol=1e-5) for k in want)


def test_bad_merges_are_one_line_errors_and_leave_nothing(run, tmp_path, capsys):
    root, folder, names = run
    base = ["--base", str(root / "base.safetensors")]
    cases = [
        (["--sources", "a=x.safetensors"], "give --sources NAME=FILE for exactly those"),
        ([], "give --sources NAME=FILE for exactly those (got [])"),  # only a params run needs none
        (["--sources", _sources(names).replace("=", ":", 1)], "is not NAME=FILE"),
        (["--sources", _sources(names)], "needs the base model"),
    ]
    for extra, message in cases:
        args = ["merge", str(folder), *extra, "--out", str(tmp_path / "o")]
        assert main(args if "base" in message else [*args, *base]) == 2
        assert message in capsys.readouterr().err
    (tmp_path / "cut.safetensors").write_bytes((root / "base.safetensors").read_bytes()[:50])
    bad = {**names, next(iter(names)): str(tmp_path / "cut.safetensors")}
    assert main(["merge", str(folder), "--sources", _sources(bad), *base, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "merge: source" in err and "cut.safetensors" in err and err.count("\n") == 1
    (tmp_path / "params.json").write_text(json.dumps({"recipe": {"kind": "params", "sha256": "x"}}))
    assert main(["merge", str(tmp_path / "params.json"), "--sources", _sources(names), "--out", str(tmp_path / "o")]) == 2
    assert "a params recipe is its run's weights; give the run folder" in capsys.readouterr().err
    (tmp_path / "other.json").write_text(json.dumps({"recipe": {"kind": "nope"}}))
    assert main(["merge", str(tmp_path / "other.json"), "--sources", _sources(names), "--out", str(tmp_path / "o")]) == 2
    assert "holds no ps, dfs, ps+dfs or params recipe (kind 'nope')" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))


def test_language_model_folders_merge_into_a_loadable_model_folder(tmp_path, capsys):
    """Sources as hub-style model folders (one of them sharded): the output folder has the merged
    weights plus the sources' config and tokenizer, and loads with from_pretrained."""
    pytest.importorskip("transformers")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer

    tok = tiny_tokenizer()
    cfg = tiny_llama_config(tok)
    models = [tiny_llama(cfg, seed=s, std=0.2) for s in (1, 2)]
    for i, m in enumerate(models):
        m.save_pretrained(str(tmp_path / f"m{i}"), max_shard_size="40KB" if i else "10GB")
        tok.save_pretrained(str(tmp_path / f"m{i}"))
    assert (tmp_path / "m1" / "model.safetensors.index.json").exists()  # the second source is sharded
    recipe = {"kind": "ps", "merge_method": "linear", "base": "zeros", "granularity": "model",
              "groups": [{"tensors": "*", "models": [{"model": "a", "weight": 0.25}, {"model": "b", "weight": 0.75}]}]}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    assert main(["merge", str(tmp_path / "recipe.json"), "--sources", f"a={tmp_path / 'm0'},b={tmp_path / 'm1'}",
                 "--out", str(tmp_path / "merged")]) == 0
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "merged"))
    assert AutoTokenizer.from_pretrained(str(tmp_path / "merged")).get_vocab() == tok.get_vocab()
    sa, sb = models[0].state_dict(), models[1].state_dict()
    for k, v in merged.state_dict().items():
        assert torch.allclose(v, 0.25 * sa[k] + 0.75 * sb[k], atol=1e-6), k
    # another tokenizer is refused
    other = tiny_tokenizer(vocab_size=300)
    other.save_pretrained(str(tmp_path / "m1"))
    assert main(["merge", str(tmp_path / "recipe.json"), "--sources", f"a={tmp_path / 'm0'},b={tmp_path / 'm1'}",
                 "--out", str(tmp_path / "merged2")]) == 2
    assert "another tokenizer" in capsys.readouterr().err and not (tmp_path / "merged2").exists()


def test_export_best_on_digits_writes_weights_recipe_and_hashes(tmp_path):
    assert main(["run", "--tasks", "digits-specialists", "--baselines", "m2n2", "--budget", "10", "--seeds", "0",
                 "--no-tracking", "--no-progress", "--export-best", "--out", str(tmp_path / "out")]) == 0
    (run,) = (tmp_path / "out").glob("*/runs/*")
    ckpt = run / "checkpoint"
    assert sorted(p.name for p in ckpt.iterdir()) == ["model.safetensors", "recipe.json"]
    got, want = load_file(str(ckpt / "model.safetensors")), load_file(str(run / "best_model.safetensors"))
    assert all(torch.equal(got[k], want[k]) for k in want)
    meta = json.loads((ckpt / "recipe.json").read_text())
    import hashlib

    assert meta["output"]["sha256"] == hashlib.sha256((ckpt / "model.safetensors").read_bytes()).hexdigest()
    assert set(meta["inputs"]) == {"digits-0to4", "digits-5to9"} and meta["family"] == "mlp-64-256-10"
    assert main(["run", "--tasks", "digits-specialists", "--baselines", "m2n2", "--budget", "10", "--seeds", "0",
                 "--no-tracking", "--no-progress", "--out", str(tmp_path / "plain")]) == 0
    assert not list((tmp_path / "plain").glob("*/runs/*/checkpoint"))


@pytest.fixture(scope="module")
def path_runs(tmp_path_factory):
    """cmaes-dfs and ps-dfs runs on digits-specialists-blocks with --export-best, and the task's
    sources and base as files."""

    root = tmp_path_factory.mktemp("export-dfs")
    assert main(["run", "--tasks", "digits-specialists-blocks", "--baselines", "cmaes-dfs,ps-dfs", "--budget", "30",
                 "--seeds", "3", "--no-tracking", "--no-progress", "--export-best", "--out", str(root / "out")]) == 0
    runs = {json.loads((f / "run.json").read_text())["space"]: f for f in (root / "out").glob("*/runs/*")}
    names = _task_files("digits-specialists-blocks", root)
    return root, runs, names


@pytest.mark.parametrize("space", ["dfs", "ps+dfs"])
def test_a_layer_path_run_merges_into_a_plain_model_that_scores_as_the_run(path_runs, space):
    """The run's recommended layer path, written from the source files, is bit for bit its
    best_model.safetensors and its exported checkpoint (a residual MLP of one block per step), and
    `evobench eval` of it gives the run's test score on every example."""
    root, runs, names = path_runs
    folder, out = runs[space], root / f"ckpt-{space}"
    run = json.loads((folder / "run.json").read_text())
    assert main(["merge", str(folder), "--sources", _sources(names), "--base", str(root / "base.safetensors"),
                 "--out", str(out)]) == 0
    got = load_file(str(out / "model.safetensors"))
    for other in (folder / "best_model.safetensors", folder / "checkpoint" / "model.safetensors"):
        want = load_file(str(other))
        assert sorted(got) == sorted(want) and all(torch.equal(got[k], want[k]) for k in want)
    path = run["recipe"]["path"] if space == "dfs" else run["recipe"]["dfs"]["path"]
    assert sum(k.endswith(".weight") and k.startswith("blocks.") for k in got) == len(path)
    meta = json.loads((out / "recipe.json").read_text())
    assert meta["exact_from_genome"] and meta["path"] == path and len(meta["folded_scales"]) == len(path)
    assert main(["eval", str(out / "model.safetensors"), "--tasks", "digits-specialists-blocks", "--no-tracking",
                 "--out", str(root / f"eval-{space}")]) == 0
    (ev,) = (root / f"eval-{space}").iterdir()
    scored = [json.loads(line)["score"] for line in (ev / "records" / "digits-specialists-blocks.jsonl").open()]
    want = [json.loads(line)["score"] for line in next((folder / "records").iterdir()).open()]
    assert scored == want and abs(json.loads((ev / "results.json").read_text())["tasks"][
        "digits-specialists-blocks"]["score"] - run["test_score"]) < 1e-12


def test_a_layer_path_recipe_file_merges_within_rounding_and_bad_ones_are_refused(path_runs, tmp_path, capsys):
    root, runs, names = path_runs
    folder = runs["dfs"]
    recipe = json.loads((folder / "run.json").read_text())["recipe"]
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    assert main(["merge", str(tmp_path / "recipe.json"), "--sources", _sources(names),
                 "--out", str(tmp_path / "ckpt")]) == 0
    got, want = load_file(str(tmp_path / "ckpt" / "model.safetensors")), load_file(str(folder / "best_model.safetensors"))
    assert sorted(got) == sorted(want) and all(torch.allclose(got[k], want[k], rtol=1e-5, atol=1e-6) for k in want)
    cases = [
        ({**recipe, "path": "nope"}, "path must be [[model, layer], ...]"),
        ({**recipe, "path": [[5, 0]], "scales": [1.0]}, "model indices outside its 2 models"),
        ({**recipe, "path": [[0, 0], [1, 1]], "scales": [1.0]}, "2 steps and 1 scales"),
        ({**recipe, "path": [[0, 0], [1, 9]], "scales": [1.0, 1.0]}, "uses block 9"),
        ({"kind": "dfs", "error": "layer_path: no layer selected"}, "no layer selected"),
    ]
    for bad, message in cases:
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        assert main(["merge", str(tmp_path / "bad.json"), "--sources", _sources(names), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    cut = tmp_path / "run"
    cut.mkdir()
    (cut / "run.json").write_text((folder / "run.json").read_text())
    np.save(cut / "best_genome.npy", np.load(folder / "best_genome.npy")[:-3])
    assert main(["merge", str(cut), "--sources", _sources(names), "--out", str(tmp_path / "o")]) == 2
    assert "which no layer path through 2 models with repeats 3 has" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))


def test_a_run_without_a_merge_seed_merges_with_its_own_seed(tmp_path):
    """A ps space's DARE masks default to the run's seed (make_space); `evobench merge` of the run
    folder must use the same, or the checkpoint is another model than the run's."""

    assert main(["run", "--tasks", "digits-specialists-shared", "--baselines", "cmaes-ps", "--budget", "12",
                 "--seeds", "7", "--no-tracking", "--no-progress", "--out", str(tmp_path / "out")]) == 0
    (folder,) = (tmp_path / "out").glob("*/runs/*")
    densities = [m["density"] for m in json.loads((folder / "run.json").read_text())["recipe"]["groups"][0]["models"]]
    assert min(densities) < 1.0  # DARE drops something: the masks matter
    names = _task_files("digits-specialists-shared", tmp_path)
    assert main(["merge", str(folder), "--sources", _sources(names), "--base", str(tmp_path / "base.safetensors"),
                 "--out", str(tmp_path / "ckpt")]) == 0
    got, want = load_file(str(tmp_path / "ckpt" / "model.safetensors")), load_file(str(folder / "best_model.safetensors"))
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert json.loads((tmp_path / "ckpt" / "recipe.json").read_text())["merge_seed"] == 7


def test_a_params_run_is_written_as_a_checkpoint_of_its_own_weights(tmp_path, capsys):
    assert main(["run", "--tasks", "digits-specialists", "--baselines", "m2n2", "--budget", "6", "--seeds", "0",
                 "--no-tracking", "--no-progress", "--out", str(tmp_path / "out")]) == 0
    (folder,) = (tmp_path / "out").glob("*/runs/*")
    assert main(["merge", str(folder), "--out", str(tmp_path / "ckpt")]) == 0
    got, want = load_file(str(tmp_path / "ckpt" / "model.safetensors")), load_file(str(folder / "best_model.safetensors"))
    assert sorted(got) == sorted(want) and all(torch.equal(got[k], want[k]) for k in want)
    meta = json.loads((tmp_path / "ckpt" / "recipe.json").read_text())
    assert meta["recipe"]["kind"] == "params" and meta["inputs"] == {} and meta["exact_from_genome"]
    import hashlib

    assert meta["output"]["sha256"] == hashlib.sha256((tmp_path / "ckpt" / "model.safetensors").read_bytes()).hexdigest()
    run = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**run, "recipe": {**run["recipe"], "n_params": 5}}))
    assert main(["merge", str(folder), "--out", str(tmp_path / "o")]) == 2
    assert "holds 19210 parameters, the recipe 5" in capsys.readouterr().err and not (tmp_path / "o").exists()
