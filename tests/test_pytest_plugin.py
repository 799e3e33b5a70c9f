"""The pytest plugin (entry point pytest11), run inside a project's own test suite with pytester:
the identical checkpoint passes, the planted regression fails with the report, the marker gives
defaults, bad input fails as "could not run", and --evobench-update-reference stores a new reference."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(600)


def test_the_plugin_is_registered_for_pytest():
    eps = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "evobench"]
    assert [e.value for e in eps] == ["evobench.pytest_plugin"]


def test_the_gate_inside_a_project_test_suite(pytester, digits_evals):
    root, e = digits_evals
    pytester.makepyfile(test_model=f'''
        import pytest

        def test_same(evobench_check):
            report = evobench_check(r"{root / 'same.safetensors'}", reference=r"{e['ref']}")
            assert not report["regression"]

        def test_bad(evobench_check):
            evobench_check(r"{root / 'bad.safetensors'}", reference=r"{e['ref']}")

        @pytest.mark.evobench(reference=r"{e['ref'] / 'results.json'}", margin=100.0)
        def test_marker_defaults(evobench_check):
            assert evobench_check(r"{root / 'bad.safetensors'}")["margin_points"] == 100.0

        def test_no_reference(evobench_check):
            evobench_check(r"{root / 'same.safetensors'}")

        def test_cannot_compare(evobench_check):
            evobench_check(r"{root / 'same.safetensors'}", reference=r"{e['ref']}", tasks=["digits-scratch"])
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=3)
    out = result.stdout.str()
    assert "REGRESSION" in out and "| digits-specialists | exact McNemar | 360 |" in out
    assert "give reference=..." in out and "evobench_check could not run: the reference was not scored on ['digits-scratch']" in out


def test_update_then_check_against_the_stored_reference(pytester, digits_evals):
    root, _ = digits_evals
    ref = pytester.path / "reference" / "results.json"
    pytester.makepyfile(test_model=f'''
        def test_model(evobench_check):
            evobench_check(r"{root / 'ref.safetensors'}", reference=r"{ref}", tasks=["digits-specialists"])
    ''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--evobench-update-reference").assert_outcomes(passed=1)
    assert json.loads(ref.read_text())["tasks"]["digits-specialists"]["examples"] == 360
    assert (ref.parent / "records" / "digits-specialists.jsonl").exists()
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--evobench-reference", str(ref),
                                        "-k", "model", "--co")  # the option parses
    assert bad.ret == 0
