"""The pytest plugin (entry point pytest11) on the language-model task ja-math-mini, run inside a
project's own test suite with pytester (as tests/test_pytest_plugin.py does on digits): the identical
checkpoint passes, a planted regression fails with the report, --evobench-update-reference writes
the reference that later runs check against, and references that cannot be compared are refused.

The checkpoints are what ja-math-mini takes: ``.safetensors`` state dicts of its tiny-Llama family
(a task-arithmetic merge of its two specialists, and that merge with perturbed weights)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytest_plugins = ["pytester"]
# the module fixture trains ja-math-mini's models when they are not cached yet (minutes on one core)
pytestmark = pytest.mark.timeout(3600)

TASK = "ja-math-mini"
LIMIT = 32
RUN = ("-p", "no:cacheprovider")


@pytest.fixture(scope="module")
def lm_evals(tmp_path_factory):
    """Three checkpoints (``good``: task arithmetic of en-math and ja, weights 0.93 / 1.0; ``same``: the
    same weights; ``bad``: each weight tensor plus N(0, (0.5 std)^2) noise), `evobench eval` results
    of ``good`` (the reference) and of ``bad`` on the first LIMIT test examples, the expected gate
    report of bad against the reference, references that cannot be compared, and the cache folder of
    the trained models (pytester moves HOME, so its subprocesses are given it explicitly)."""
    from safetensors.torch import save_file

    from evobench.cli import main
    from evobench.gate import diff
    from evobench.merge.ops import merge_state_dicts
    from evobench.registry import TASKS
    from evobench.trained_cache import cache_root

    problem = TASKS.get(TASK)()  # trains the models once per machine, then loads them from the cache
    root = tmp_path_factory.mktemp("gate-lm")
    src = dict(problem.pool.sources)
    good = merge_state_dicts("task_arithmetic", problem.pool.base, [src["en-math"], src["ja"]], weights=[0.93, 1.0])
    g = torch.Generator().manual_seed(0)
    bad = {k: v + 0.5 * v.std() * torch.randn(v.shape, generator=g) if v.is_floating_point() and v.numel() > 1 else v
           for k, v in good.items()}
    for name, st in (("good", good), ("same", good), ("bad", bad)):
        save_file({k: v.contiguous() for k, v in st.items()}, str(root / f"{name}.safetensors"))
    e = {}
    for name in ("good", "bad"):
        assert main(["eval", str(root / f"{name}.safetensors"), "--tasks", TASK, "--limit", str(LIMIT),
                     "--no-tracking", "--out", str(root / f"eval-{name}")]) == 0
        (e[name],) = (root / f"eval-{name}").iterdir()
    # a reference of another task version, and one whose records are of other examples
    e["version"] = root / "ref-other-version"
    shutil.copytree(e["good"], e["version"])
    data = json.loads((e["version"] / "results.json").read_text())
    data["tasks"][TASK]["task_version"] = "0"
    (e["version"] / "results.json").write_text(json.dumps(data))
    e["examples"] = root / "ref-other-examples"
    shutil.copytree(e["good"], e["examples"])
    rec = e["examples"] / "records" / f"{TASK}.jsonl"
    lines = rec.read_text().splitlines()
    row = json.loads(lines[3])
    row["example_id"] = "0" * 64
    lines[3] = json.dumps(row)
    rec.write_text("\n".join(lines) + "\n")
    return {"root": root, "evals": e, "expected": diff(e["good"], e["bad"], [TASK]),
            "cache": cache_root(TASK).parent}


@pytest.fixture
def env(lm_evals, monkeypatch):
    """The subprocesses' environment: no evaluation cache (as tests/conftest.py), the trained models'
    cache (pytester sets HOME to its own folder) and one torch thread (the small matmuls spin-wait on
    a busy machine otherwise)."""
    monkeypatch.setenv("EVOBENCH_EVAL_CACHE", "off")
    monkeypatch.setenv("EVOBENCH_CACHE", str(lm_evals["cache"]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return lm_evals


def _records(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "records" / f"{TASK}.jsonl").read_text().splitlines()]


def _row(out: str) -> list[str]:
    """The report's table row of ja-math-mini: task, test, examples, reference, candidate, effect (CI), p,
    verdict."""
    (line,) = set(re.findall(rf"^\| {TASK} \|.*\|$", out, flags=re.M))  # printed once per failure
    return [c.strip() for c in line.strip("|").split("|")]


def test_the_identical_checkpoint_passes(pytester, env):
    root, ref = env["root"], env["evals"]["good"]
    score = json.loads((ref / "results.json").read_text())["tasks"][TASK]["score"]
    pytester.makepyfile(test_model=f'''
        def test_same(evobench_check):
            report = evobench_check(r"{root / 'same.safetensors'}", reference=r"{ref}", tasks=["{TASK}"],
                                    limit={LIMIT})
            (v,) = report["tasks"]
            assert not report["regression"] and report["margin_points"] == 1.0 and report["alpha"] == 0.05
            assert (v["task"], v["kind"], v["examples"]) == ("{TASK}", "binary", {LIMIT})
            assert v["reference"] == v["candidate"] == {score!r} and v["effect"] == 0.0
            assert v["discordant"] == {{"worse": 0, "better": 0}} and v["p"] == 1.0 and not v["regression"]
    ''')
    result = pytester.runpytest_subprocess(*RUN)
    result.assert_outcomes(passed=1)
    assert score > 0.9  # the merge answers in Japanese, right (measured 0.9375 on the first 32)


def test_the_planted_regression_fails_with_the_report(pytester, env):
    from evobench.gate import markdown, mcnemar_regression_p

    root, e, expected = env["root"], env["evals"], env["expected"]
    pytester.makepyfile(test_model=f'''
        def test_bad(evobench_check):
            evobench_check(r"{root / 'bad.safetensors'}", reference=r"{e['good'] / 'results.json'}",
                           tasks=["{TASK}"], limit={LIMIT})
    ''')
    result = pytester.runpytest_subprocess(*RUN)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "**Regression** (alpha 0.05, margin 1.0 points)" in out and "could not run" not in out
    task, test, n, ref, cand, effect, p, verdict = _row(out)
    assert (task, test, n, verdict) == (TASK, "exact McNemar", str(LIMIT), "REGRESSION")
    # the plugin reports what the gate computes from the two `evobench eval` results of the CLI
    assert _row(markdown(expected)) == [task, test, n, ref, cand, effect, p, verdict]
    # ... and the regression is real: the perturbed merge loses most of the examples it got right
    ref_scores = [r["score"] for r in _records(e["good"])]
    bad_scores = [r["score"] for r in _records(e["bad"])]
    worse = sum(a == 1 and b == 0 for a, b in zip(ref_scores, bad_scores, strict=True))
    better = sum(a == 0 and b == 1 for a, b in zip(ref_scores, bad_scores, strict=True))
    assert float(ref) == pytest.approx(100 * sum(ref_scores) / LIMIT, abs=0.005) and float(ref) > 90
    assert float(cand) == pytest.approx(100 * sum(bad_scores) / LIMIT, abs=0.005) and float(cand) < 50
    assert float(effect.split()[0]) == pytest.approx(float(cand) - float(ref), abs=0.01)
    assert float(effect.split()[0]) < -40
    assert worse > 10 * max(better, 1)
    assert float(p) == pytest.approx(mcnemar_regression_p(worse, better, LIMIT, 0.01), rel=1e-2) and float(p) < 1e-4
    lo, hi = (float(x) for x in re.findall(r"[-+]\d+\.\d+", effect.split(maxsplit=1)[1]))
    assert lo < float(effect.split()[0]) < hi < 0  # the whole 95 % interval is a loss


def test_update_reference_then_check_against_it(pytester, env):
    root, good = env["root"], env["evals"]["good"]
    ref = pytester.path / "reference" / "results.json"

    def model(name: str) -> None:
        pytester.makepyfile(test_model=f'''
            def test_model(evobench_check):
                evobench_check(r"{root / f'{name}.safetensors'}", reference=r"{ref}", tasks=["{TASK}"],
                               limit={LIMIT})
        ''')

    def stored() -> dict:
        return json.loads(ref.read_text())

    model("bad")  # a first reference (from the perturbed merge), then replaced by the good merge's
    pytester.runpytest_subprocess(*RUN, "--evobench-update-reference").assert_outcomes(passed=1)
    assert stored()["tasks"][TASK]["score"] == json.loads((env["evals"]["bad"] / "results.json").read_text())[
        "tasks"][TASK]["score"]
    model("good")
    pytester.runpytest_subprocess(*RUN, "--evobench-update-reference").assert_outcomes(passed=1)
    data, want = stored(), json.loads((good / "results.json").read_text())
    assert list(data["tasks"]) == [TASK] and data["limit"] == LIMIT and data["split"] == "test"
    t = data["tasks"][TASK]
    assert t["examples"] == LIMIT and t["primary_metric"] == "acc_ja" and t["score"] == want["tasks"][TASK]["score"]
    assert (t["task_version"], t["data_hash"]) == (want["tasks"][TASK]["task_version"], want["tasks"][TASK]["data_hash"])
    rows = _records(ref.parent)
    assert len(rows) == LIMIT and [r["example_id"] for r in rows] == [r["example_id"] for r in _records(good)]
    assert [r["score"] for r in rows] == [r["score"] for r in _records(good)]
    assert sorted(p.name for p in ref.parent.iterdir()) == ["records", "results.json"]  # no temporary files left
    assert [p.name for p in (ref.parent / "records").iterdir()] == [f"{TASK}.jsonl"]
    # checked against the stored reference (no update): the same checkpoint passes
    pytester.runpytest_subprocess(*RUN).assert_outcomes(passed=1)


def test_references_that_cannot_be_compared_are_refused(pytester, env):
    root, e = env["root"], env["evals"]
    same = root / "same.safetensors"
    pytester.makepyfile(test_model=f'''
        def test_other_limit(evobench_check):
            evobench_check(r"{same}", reference=r"{e['good']}", tasks=["{TASK}"], limit={LIMIT // 2})

        def test_other_task_version(evobench_check):
            evobench_check(r"{same}", reference=r"{e['version']}", tasks=["{TASK}"], limit={LIMIT})

        def test_other_examples(evobench_check):
            evobench_check(r"{same}", reference=r"{e['examples']}", tasks=["{TASK}"], limit={LIMIT})

        def test_other_task(evobench_check):
            evobench_check(r"{same}", reference=r"{e['good']}", tasks=["digits-specialists"])

        def test_no_reference(evobench_check):
            evobench_check(r"{same}", tasks=["{TASK}"], limit={LIMIT})
    ''')
    result = pytester.runpytest_subprocess(*RUN)
    result.assert_outcomes(failed=5)
    out = result.stdout.str()
    prefix = "evobench_check could not run: "
    for reason in (f"--limit {LIMIT // 2}: the reference was scored with limit {LIMIT}",
                   f"task '{TASK}': the results differ in task_version (reference '0', candidate '1')",
                   f"task '{TASK}', example 3: another example (example_id {'0' * 64}",
                   f"the reference was not scored on ['digits-specialists'] (it has ['{TASK}'])"):
        assert prefix + reason in out, reason
    assert "evobench_check: give reference=... (or --evobench-reference PATH)" in out
    assert "REGRESSION" not in out and "**Regression**" not in out  # refused, never judged
