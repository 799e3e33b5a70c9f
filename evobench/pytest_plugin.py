"""pytest plugin (entry point ``pytest11``): the regression gate inside a project's own test suite.

::

    def test_no_regression(evobench_check):
        evobench_check("ckpt/model.safetensors", reference="tests/reference/results.json",
                       tasks=["ja-math-mini"])

``evobench_check(checkpoint, reference=None, tasks=None, limit=None, alpha=0.05, margin=1.0, seed=0,
device="auto")`` scores the checkpoint on exactly the reference's examples (:func:`evobench.gate.check`)
and fails the test with the report (Markdown: each task's scores, effect, 95 % interval, p-value)
when a task regressed beyond the margin; otherwise it returns the report. The reference is stored
`evobench eval` results: a results folder, or its ``results.json`` beside its ``records/`` folder.

Options: ``--evobench-reference PATH`` replaces every test's ``reference``;
``--evobench-update-reference`` scores the checkpoint and writes it as the new reference (results
and records, each file replaced atomically) instead of checking. The marker
``@pytest.mark.evobench(reference=..., tasks=..., margin=..., alpha=...)`` gives a test's defaults.
Importing the plugin imports neither torch nor the task stack.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

_KEYS = ("reference", "tasks", "limit", "alpha", "margin", "seed", "device")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("evobench", "evobench regression gate")
    group.addoption("--evobench-reference", metavar="PATH", default=None,
                    help="stored evobench results to check against (overrides each test's reference)")
    group.addoption("--evobench-update-reference", action="store_true", default=False,
                    help="score the checkpoints and store them as the new references instead of checking")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "evobench(reference=None, tasks=None, margin=1.0, alpha=0.05, ...): "
                                       "defaults of the evobench_check fixture for this test")


def _store_reference(folder: Path, reference: Path) -> Path:
    """Copy a fresh `evobench eval` folder to ``reference`` (a folder, or a results.json whose records/
    sit beside it), each file written to a temporary name and renamed."""
    target = reference.parent if reference.suffix == ".json" else reference
    target.mkdir(parents=True, exist_ok=True)
    files = [(folder / "results.json", reference if reference.suffix == ".json" else target / "results.json")]
    files += [(f, target / "records" / f.name) for f in sorted((folder / "records").glob("*.jsonl"))]
    for src, dst in files:
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    return reference


@pytest.fixture
def evobench_check(request: pytest.FixtureRequest, tmp_path: Path):
    """Check a checkpoint against stored results (see the module docstring)."""
    marker = request.node.get_closest_marker("evobench")
    defaults = dict(marker.kwargs) if marker else {}
    unknown = sorted(set(defaults) - set(_KEYS))
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.evobench: unknown arguments {unknown} (known: {list(_KEYS)})")

    def check(checkpoint: str | os.PathLike, **kw: Any) -> dict[str, Any]:
        from evobench.config import ConfigError
        from evobench.gate import check as gate_check
        from evobench.gate import markdown

        bad = sorted(set(kw) - set(_KEYS))
        if bad:
            raise TypeError(f"evobench_check: unknown arguments {bad} (known: {list(_KEYS)})")
        opts = {**defaults, **kw}
        reference = request.config.getoption("--evobench-reference") or opts.pop("reference", None)
        opts.pop("reference", None)
        if reference is None:
            raise pytest.UsageError("evobench_check: give reference=... (or --evobench-reference PATH)")
        tasks = opts.pop("tasks", None)
        tasks = [tasks] if isinstance(tasks, str) else tasks
        problem = None
        try:
            if request.config.getoption("--evobench-update-reference"):
                from evobench.evaluate import run_eval

                if not tasks:
                    raise ConfigError("--evobench-update-reference needs tasks=[...] to score the checkpoint on")
                folder, results = run_eval(str(checkpoint), list(tasks), str(tmp_path / "scored"),
                                           limit=opts.get("limit"), device=opts.get("device", "auto"),
                                           name="reference")
                return {"updated": str(_store_reference(folder, Path(reference))), "results": results}
            report = gate_check(str(checkpoint), str(reference), tasks, out=str(tmp_path / "scored"), **opts)
        except ConfigError as e:  # bad input: the test cannot run, which is not a regression
            problem = str(e)
        if problem is not None:
            pytest.fail(f"evobench_check could not run: {problem}", pytrace=False)
        if report["regression"]:
            pytest.fail(markdown(report), pytrace=False)
        return report

    return check
