"""The regression gate's statistics against known values, and `evobench results diff` on real
`evobench eval` results: an identical model passes, a planted regression is caught, results that
cannot be compared are refused."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest

from evobench.gate import GateRefusal, mcnemar_regression_p, paired_bootstrap, verdict


def _binom_tail(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


@pytest.mark.parametrize("worse,better", [(10, 2), (3, 3), (0, 5), (7, 0), (25, 11)])
def test_mcnemar_without_margin_is_the_exact_one_sided_test(worse, better):
    want = binomtest(worse, worse + better, 0.5, alternative="greater").pvalue
    assert mcnemar_regression_p(worse, better, 500) == pytest.approx(want, rel=1e-12)
    assert mcnemar_regression_p(10, 2, 100) == pytest.approx(79 / 4096, rel=1e-12)  # (66 + 12 + 1) / 2**12


def test_mcnemar_at_a_margin_shifts_the_null_to_the_margin():
    # n = 100, 12 discordant pairs: at a margin of 5 points pi0 = (0.12 + 0.05) / 0.24
    pi0 = 0.17 / 0.24
    assert mcnemar_regression_p(10, 2, 100, 0.05) == pytest.approx(_binom_tail(10, 12, pi0), rel=1e-10)
    assert mcnemar_regression_p(10, 2, 100, 0.05) > mcnemar_regression_p(10, 2, 100, 0.0)
    assert mcnemar_regression_p(10, 2, 100, 0.10) == pytest.approx(_binom_tail(10, 12, 0.22 / 0.24), rel=1e-10)
    assert mcnemar_regression_p(10, 2, 100, 0.12) == 1.0  # 12 discordant pairs cannot lose more than 12 points
    assert mcnemar_regression_p(0, 0, 100) == 1.0
    with pytest.raises(ValueError):
        mcnemar_regression_p(60, 50, 100)


def test_paired_bootstrap_p_and_interval():
    rng = np.random.default_rng(1)
    ref = rng.random(2000)
    p, (lo, hi) = paired_bootstrap(ref, ref.copy(), 0.0, seed=0, n_boot=2000)
    assert p == 1.0 and lo == hi == 0.0  # identical scores: no regression at all
    worse = np.clip(ref - 0.3 + 0.05 * rng.standard_normal(2000), 0, 1)
    p, (lo, hi) = paired_bootstrap(ref, worse, 0.01, seed=0, n_boot=2000)
    assert p == 1 / 2001  # every resample is worse by more than the margin
    d = worse - ref
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert lo < d.mean() < hi and (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.1)  # ≈ the normal interval
    assert paired_bootstrap(ref, worse, 0.01, seed=0, n_boot=2000) == paired_bootstrap(ref, worse, 0.01, seed=0,
                                                                                          n_boot=2000)
    slight = ref - 0.004  # worse by 0.4 points, within a 1-point margin
    assert paired_bootstrap(ref, slight, 0.01, seed=0, n_boot=2000)[0] > 0.5


def test_verdict_picks_the_test_by_the_scores():
    ref = np.array([1.0] * 80 + [0.0] * 20)
    cand = ref.copy()
    cand[:15] = 0.0  # 15 examples lost, none gained
    v = verdict("t", ref, cand, margin=0.0)
    assert v.kind == "binary" and v.discordant == {"worse": 15, "better": 0} and v.regression
    assert v.p == pytest.approx(0.5**15) and v.effect == pytest.approx(-0.15)
    g = verdict("t", ref * 0.5, cand * 0.5, margin=0.0)
    assert g.kind == "graded" and g.regression and g.p < 0.01
    assert not verdict("t", ref, ref, margin=1.0).regression
    with pytest.raises(GateRefusal, match="100 reference scores vs 99"):
        verdict("t", ref, cand[:99])


# ---- evobench results diff on real `evobench eval` results ------------------------------------------

@pytest.fixture(scope="module")
def evals(digits_evals):
    return digits_evals


def test_the_identical_model_passes_and_the_planted_regression_fails(evals, capsys, tmp_path):
    from evobench.cli import main

    _, e = evals
    assert main(["results", "diff", str(e["ref"]), str(e["same"])]) == 0
    out = capsys.readouterr().out
    assert "No significant regression" in out and "| digits-specialists | exact McNemar | 360 |" in out
    code = main(["results", "diff", str(e["ref"]), str(e["bad"]), "--json", str(tmp_path / "r.json"),
                 "--markdown", str(tmp_path / "r.md")])
    assert code == 1
    report = json.loads((tmp_path / "r.json").read_text())
    (v,) = report["tasks"]
    assert report["regression"] and v["regression"] and v["effect"] < -0.01 and v["p"] < 0.05
    assert v["discordant"]["worse"] > v["discordant"]["better"]
    assert v["p"] == pytest.approx(mcnemar_regression_p(v["discordant"]["worse"], v["discordant"]["better"], 360,
                                                        0.01))
    assert "REGRESSION" in (tmp_path / "r.md").read_text()


def test_results_that_cannot_be_compared_are_refused(evals, capsys):
    from evobench.cli import main

    root, e = evals
    assert main(["results", "diff", str(e["ref"]), str(e["limited"])]) == 2
    assert "the results differ in limit" in capsys.readouterr().err
    assert main(["results", "diff", str(e["ref"]), str(e["same"]), "--tasks", "digits-scratch"]) == 2
    assert "is not in both results" in capsys.readouterr().err
    tampered = root / "tampered"
    import shutil

    shutil.copytree(e["same"], tampered)
    rec = tampered / "records" / "digits-specialists.jsonl"
    lines = rec.read_text().splitlines()
    first = json.loads(lines[3])
    first["example_id"] = "0" * 64
    lines[3] = json.dumps(first)
    rec.write_text("\n".join(lines) + "\n")
    assert main(["results", "diff", str(e["ref"]), str(tampered)]) == 2
    assert "example 3: another example" in capsys.readouterr().err
    data = json.loads((tampered / "results.json").read_text())
    data["tasks"]["digits-specialists"]["task_version"] = "2"
    (tampered / "results.json").write_text(json.dumps(data))
    assert main(["results", "diff", str(e["ref"]), str(tampered)]) == 2
    assert "differ in task_version" in capsys.readouterr().err
    assert main(["results", "diff", str(e["ref"]), str(root / "nowhere")]) == 2


def test_evobench_check_against_stored_results_and_against_a_checkpoint(evals, capsys, tmp_path):
    from evobench.cli import main

    root, e = evals
    args = ["--out", str(tmp_path / "checks"), "--no-tracking"]
    assert main(["check", str(root / "same.safetensors"), "--reference", str(e["ref"]), *args]) == 0
    assert main(["check", str(root / "bad.safetensors"), "--reference", str(e["ref"]), *args]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    # the reference's limit is reused: the candidate is scored on the same 100 examples
    assert main(["check", str(root / "bad.safetensors"), "--reference", str(e["limited"]), *args,
                 "--json", str(tmp_path / "l.json")]) in (0, 1)
    assert json.loads((tmp_path / "l.json").read_text())["tasks"][0]["examples"] == 100
    assert main(["check", str(root / "same.safetensors"), "--reference", str(root / "ref.safetensors"),
                 "--tasks", "digits-specialists", *args]) == 0
    assert main(["check", str(root / "same.safetensors"), "--reference", str(root / "ref.safetensors"), *args]) == 2
    assert "give --tasks" in capsys.readouterr().err
    assert main(["check", str(root / "same.safetensors"), "--reference", str(e["ref"]), "--limit", "5", *args]) == 2
    assert "the reference was scored with limit None" in capsys.readouterr().err


def test_a_check_is_logged_to_mlflow(evals, tmp_path, capsys):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from evobench.cli import main

    root, e = evals
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    assert main(["check", str(root / "bad.safetensors"), "--reference", str(e["ref"]), "--out", str(tmp_path / "c"),
                 "--tracking-uri", uri, "--experiment", "gate"]) == 1
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("gate").experiment_id])
    assert run.data.tags["evobench.check"] == "regression" and run.info.status == "FINISHED"
    assert run.data.metrics["digits-specialists.regression"] == 1.0 and run.data.metrics["digits-specialists.p"] < 0.05
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id, "check")) == ["check/report.json",
                                                                                        "check/report.md"]
