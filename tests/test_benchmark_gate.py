"""Speed regressions fail CI through pytest-benchmark's own save/compare, as `tox -e bench` runs it
(docs/ci.md): a saved baseline, then a comparison that fails when a benchmark got slower."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_benchmark")
pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(300)

BENCH = '''
import os, time

def test_step(benchmark):
    delay = float(os.environ["EVOBENCH_TEST_DELAY"])
    benchmark.pedantic(lambda: time.sleep(delay), rounds=5, iterations=1)
'''


def test_a_saved_benchmark_is_compared_and_a_slowdown_fails(pytester, monkeypatch):
    pytester.makepyfile(test_speed=BENCH)
    storage = f"file://{pytester.path / 'benchmarks-store'}"
    common = ["-p", "no:cacheprovider", "--benchmark-only", f"--benchmark-storage={storage}"]
    monkeypatch.setenv("EVOBENCH_TEST_DELAY", "0.01")
    saved = pytester.runpytest_subprocess(*common, "--benchmark-save=base")
    saved.assert_outcomes(passed=1)
    assert list((pytester.path / "benchmarks-store").rglob("0001_base.json"))
    compare = [*common, "--benchmark-compare=0001", "--benchmark-compare-fail=mean:50%"]
    assert pytester.runpytest_subprocess(*compare).ret == 0  # as fast as the baseline
    monkeypatch.setenv("EVOBENCH_TEST_DELAY", "0.04")  # 4x slower
    slow = pytester.runpytest_subprocess(*compare)
    assert slow.ret != 0 and "Performance has regressed" in slow.stdout.str() + slow.stderr.str()
