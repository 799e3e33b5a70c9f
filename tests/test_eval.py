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
