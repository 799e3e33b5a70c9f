"""The README's task example (between ``<!-- task-example:start -->`` and ``<!-- task-example:end -->``)
is real: its files are written out as a user would save them, pytest runs its ``TaskContract`` test
file, and the entry point it declares lists and runs the task through the command line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from evobench.cli import main
from evobench.contract import TaskContract
from evobench.registry import TASKS

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"```(\w+)\n# (\S+)[^\n]*\n(.*?)```", re.S)
GROUP = re.compile(r'^\[project\.entry-points\."([^"]+)"\]$')
ENTRY = re.compile(r'^([\w.-]+) = "([^"]+)"$')


def entry_points_of(toml: str) -> dict[str, dict[str, str]]:
    """The ``[project.entry-points."group"]`` tables of a small pyproject snippet."""
    out: dict[str, dict[str, str]] = {}
    group = None
    for line in toml.splitlines():
        if m := GROUP.match(line.strip()):
            group = out.setdefault(m.group(1), {})
        elif (m := ENTRY.match(line.strip())) and group is not None:
            group[m.group(1)] = m.group(2)
    return out


def example_blocks() -> list[tuple[str, str, str]]:
    """``(language, file named on the first line, code)`` of each block of the README's task example."""
    text = README.read_text(encoding="utf-8")
    start, end = text.index("<!-- task-example:start -->"), text.index("<!-- task-example:end -->")
    return BLOCK.findall(text[start:end])


@pytest.fixture
def example(tmp_path, monkeypatch):
    """The example's python files written under ``tmp_path`` (importable); returns (root, entry points)."""
    entry_points = {}
    for lang, name, code in example_blocks():
        if lang == "python":
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code, encoding="utf-8")
        elif lang == "toml":
            entry_points.update(entry_points_of(code))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path, entry_points


def test_readme_example_has_a_task_module_a_contract_test_and_an_entry_point(example):
    root, entry_points = example
    assert (root / "my_package" / "sums.py").is_file()
    assert (root / "tests" / "test_sums.py").is_file()
    assert entry_points == {"evobench.tasks": {"sign": "my_package.sums:sign_task"}}


def test_readme_example_passes_the_task_contract(example):
    root, _ = example
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root),
                           "tests/test_sums.py"], cwd=root, capture_output=True, text=True, timeout=300)
    checks = len([m for m in dir(TaskContract) if m.startswith("test_")])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(rf"\b{checks} passed\b", proc.stdout) and "skipped" not in proc.stdout, proc.stdout[-1000:]


def test_readme_example_is_listed_and_runs_from_its_entry_point(example, monkeypatch, capsys, tmp_path):
    _, entry_points = example
    monkeypatch.setattr(TASKS, "_entries", dict(TASKS._entries))
    for name, spec in entry_points["evobench.tasks"].items():
        TASKS.register(name, spec)  # what an installed entry point adds: a lazy "module:attr" entry
    assert main(["list", "tasks"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.split()[:1] == ["sign"])
    assert line.split(None, 1)[1] == "Merge two random 4-8-2 MLPs to tell the sign of a sum of four numbers."
    code = main(["run", "--tasks", "sign", "--baselines", "cmaes-ps,m2n2,random-search", "--budget", "12",
                 "--seeds", "0", "--no-tracking", "--no-progress", "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert len(list((tmp_path / "out").glob("*/results.json"))) == 1
