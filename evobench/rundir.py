"""The results folder of a comparison, written so that a failure loses one run, not the comparison.

Layout of ``<out>/<name>-<UTC time>/``::

    config.json            the validated run configuration (written first)
    sources/<task>/<i>-<source>/       each source model of a task, scored once per comparison
        source.json        its search and test scores (and report-task scores)
        records/<t>.jsonl  per-example test records on the task and on each report task ``t``
    runs/<NNN>-<label>-<task>-seed<S>/
        run.json           the run's summary: scores, budget, failures, recipe, report-task scores
        fitness.npy        search fitness of every evaluation, in order (NaN = failed candidate)
        test_scores.npy    per-example scores of the recommended model on the test split
        records/<t>.jsonl  the recommended model's per-example test records (the task, each report task)
        best_model.safetensors   the recommended model's weights (when the space gives a state dict; a
                           layer path as the plain model of one block per step it folds into)
        search_scores.npy  every candidate's per-example search scores (only with save_search_scores)
        best_genome.npy    the recommended genome (recipe spaces; a params genome is best_model's weights)
        checkpoint/        with export_best: the recommended model as a checkpoint folder (evobench.export)
    journal/<label>-<task>-seed<S>/    the run in progress: every told batch (evobench.journal),
                       deleted once the run is saved in runs/
    resume.json        while it runs: the tracker's ids of the comparison and of the run in progress,
                       and the wall time so far (for a resume)
    results.json table.txt curves.png   written when the comparison completes

While the comparison runs, the folder is ``<out>/.<name>-<time>.partial-XXXX``; each run's files are
written into a temporary sub-folder and renamed into ``runs/`` when complete, so ``runs/`` only ever
holds whole runs. The run in progress also has its scratch folder there (``.work-XXXX``, the
baseline's ``workdir``: e.g. M2N2's disk-backed archive), deleted by the runner when the run ends. On success the folder is renamed to ``<name>-<time>``; if the comparison fails or
is interrupted it is renamed to ``<name>-<time>.incomplete`` (no ``results.json``), and
``evobench report`` can still read its finished runs. Final names never collide: a name already
taken gets ``-2``, ``-3``, ... (claimed with an atomic ``mkdir``).

A comparison that was killed (the ``.partial-XXXX`` folder) or failed (``.incomplete``) continues
with :meth:`RunDir.reopen` (``evobench run --resume FOLDER``): finished runs are kept, the run in
progress replays its journal, and the folder gets its final name when the comparison completes.

Only JSON, ``.npy`` (loaded with ``allow_pickle=False``) and safetensors are written: a shared
results folder cannot run code.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from evobench.jsonio import write_json, write_text

RUNS = "runs"
SOURCES = "sources"
JOURNAL = "journal"
_PARTIAL = re.compile(r"^\.(?P<stem>.+-\d{8}T\d{6}Z)\.partial-[^/]+$")
_INCOMPLETE = re.compile(r"^(?P<stem>.+-\d{8}T\d{6}Z)(-\d+)?\.incomplete$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@-]+")


def check_writable(out: str | os.PathLike) -> Path:
    """Create ``out`` if needed and check that files can be written there (OSError otherwise)."""
    root = Path(out).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    probe = tempfile.NamedTemporaryFile(dir=root, prefix=".evobench-write-test-", delete=True)
    probe.close()
    return root


def claim(root: Path, stem: str, suffix: str = "") -> Path:
    """An unused folder ``root/stem[-k]suffix``, created empty (mkdir is atomic: no two claims collide)."""
    for k in range(1, 10_000):
        path = root / f"{stem}{'' if k == 1 else f'-{k}'}{suffix}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free results folder name for {stem!r} in {root}")


class RunDir:
    """A comparison's results folder while it is being written."""

    def __init__(self, out: str | os.PathLike, name: str) -> None:
        self.root = check_writable(out)
        self.stem = f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.stem}.partial-", dir=self.root))
        (self.path / RUNS).mkdir()
        self.n_runs = 0

    @classmethod
    def reopen(cls, path: str | os.PathLike) -> RunDir:
        """Continue the comparison folder ``path`` (a killed one's ``.partial-XXXX`` or a failed one's
        ``.incomplete``): its finished runs stay; scratch left by the interruption (half-written
        run folders, work folders) is removed. ValueError (one line) for any other folder."""
        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            raise ValueError(f"{str(path)!r} is not the results folder of a comparison (no config.json)")
        if (path / "results.json").exists():
            raise ValueError(f"{str(path)!r} is a completed comparison: nothing to resume")
        m = _PARTIAL.match(path.name) or _INCOMPLETE.match(path.name)
        if m is None:
            raise ValueError(f"{str(path)!r}: a resumable folder is named .<name>-<time>.partial-XXXX or "
                             "<name>-<time>.incomplete")
        self = cls.__new__(cls)
        self.root, self.stem, self.path = path.parent, m["stem"], path
        for junk in [*path.glob(".work-*"), *(path / RUNS).glob(".run-*"), *(path / SOURCES).glob("*/.source-*")]:
            shutil.rmtree(junk, ignore_errors=True)
        (path / RUNS).mkdir(exist_ok=True)
        self.n_runs = len(self.finished_runs())
        return self

    def finished_runs(self) -> list[Path]:
        """The folders of the runs saved so far, in the order they finished."""
        return sorted(p.parent for p in (self.path / RUNS).glob("[!.]*/run.json"))

    def journal_folder(self, label: str, task: str, seed: int) -> Path:
        """Where the journal of run (label, task, seed) lives while it runs."""
        return self.journal_path(self.path, label, task, seed)

    @staticmethod
    def journal_path(folder: Path, label: str, task: str, seed: int) -> Path:
        return Path(folder) / JOURNAL / _UNSAFE.sub("_", f"{label}-{task}-seed{seed}")[:150]

    def drop_journal(self, label: str, task: str, seed: int) -> None:
        """Delete a saved run's journal (the run folder now holds everything it said)."""
        shutil.rmtree(self.journal_folder(label, task, seed), ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.path / JOURNAL).rmdir()  # only when empty

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.path / "config.json", config)

    def add_run(self, label: str, task: str, seed: int, summary: dict[str, Any],
                arrays: dict[str, np.ndarray], state: dict | None = None,
                metadata: dict[str, str] | None = None, texts: dict[str, str] | None = None,
                writers: list | None = None) -> str:
        """Write one finished run (summary JSON, arrays as .npy, text files such as records (by path
        inside the run's folder), optional safetensors state, and whatever each of ``writers``
        (callables taking the folder) writes) atomically; returns its folder relative to the results
        folder."""
        self.n_runs += 1
        name = _UNSAFE.sub("_", f"{self.n_runs:03d}-{label}-{task}-seed{seed}")[:150]
        tmp = Path(tempfile.mkdtemp(prefix=".run-", dir=self.path / RUNS))
        try:
            for key, arr in arrays.items():
                np.save(tmp / f"{key}.npy", np.asarray(arr), allow_pickle=False)
            _write_texts(tmp, texts)
            if state is not None:
                from safetensors.torch import save_file

                save_file({k: v.detach().contiguous().cpu() for k, v in state.items()},
                          str(tmp / "best_model.safetensors"), metadata=metadata)
            for write in writers or ():
                write(tmp)
            rel = f"{RUNS}/{name}"
            write_json(tmp / "run.json", {**summary, "record": rel})
            os.replace(tmp, self.path / RUNS / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return rel

    def add_source(self, task: str, index: int, summary: dict[str, Any], texts: dict[str, str]) -> str:
        """Write one scored source model of ``task`` (``source.json`` and its records) atomically;
        returns its folder relative to the results folder."""
        folder = self.path / SOURCES / _UNSAFE.sub("_", task)[:150]
        folder.mkdir(parents=True, exist_ok=True)
        name = _UNSAFE.sub("_", f"{index}-{summary['source']}")[:150]
        tmp = Path(tempfile.mkdtemp(prefix=".source-", dir=folder))
        try:
            _write_texts(tmp, texts)
            rel = f"{SOURCES}/{folder.name}/{name}"
            write_json(tmp / "source.json", {"task": task, **summary, "record": rel})
            os.replace(tmp, folder / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return rel

    def finish(self) -> Path:
        """Rename to ``<name>-<time>`` (or ``-2``, ...) once every result file is written."""
        final = claim(self.root, self.stem)
        os.replace(self.path, final)  # onto the empty claimed folder: atomic
        self.path = final
        return final

    def abandon(self) -> Path | None:
        """Keep finished runs (and the journal of the run in progress) as ``<name>-<time>.incomplete``
        (None and removed when nothing is worth keeping); an ``.incomplete`` folder keeps its name."""
        if _INCOMPLETE.match(self.path.name):
            return self.path
        if self.n_runs == 0 and not any((self.path / JOURNAL).glob("*/journal.bin")):
            shutil.rmtree(self.path, ignore_errors=True)
            return None
        final = claim(self.root, self.stem, ".incomplete")
        os.replace(self.path, final)
        self.path = final
        return final


def records_file(task: str) -> str:
    """Where a run's or a source's per-example records of ``task`` go, inside its folder."""
    return f"records/{_UNSAFE.sub('_', task)[:150]}.jsonl"


def _write_texts(folder: Path, texts: dict[str, str] | None) -> None:
    for rel, text in (texts or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)


def load_array(folder: Path, key: str) -> np.ndarray | None:
    """A run's ``<key>.npy`` (no pickles), or None when the run has none."""
    f = folder / f"{key}.npy"
    return np.load(f, allow_pickle=False) if f.exists() else None
