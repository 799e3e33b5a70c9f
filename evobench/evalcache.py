"""The evaluation cache: a candidate scored once is never scored again, in any run, baseline or comparison.

Searches revisit candidates: a DFS genome is continuous but its layer path is discrete (many genomes
decode to one path), a population keeps its elites, and a comparison re-run with the same seeds asks
for every candidate again. The cache keeps each scored candidate's search result — primary score,
metrics, per-example scores, descriptors — in one SQLite file shared by every process
(``$EVOBENCH_CACHE/evals.sqlite``, default ``~/.cache/evobench``; ``evobench run --cache DIR|off``).
A hit costs no forward pass but still counts against the budget, so equal budgets stay equal, and
the baseline is told exactly what a fresh scoring would have told it (the same float64 scores), so
a run with the cache gives the same results as one without.

**The key** is the SHA-256 of two parts:

- the *scope*, everything but the candidate (:func:`scope`): the problem's name and its task's
  options; the task's class, its ``version`` (bump it when scoring changes) and its data hash;
  the model family and the content hash of every source and of the base; the space kind and its
  options; the split; the device; the versions of evobench and torch;
- the *candidate*, :meth:`~evobench.spaces.base.MergeSpace.candidate_key`: the decoded recipe for
  recipe spaces (so genomes that decode to the same recipe share an entry), the float32 weights'
  SHA-256 in the params space.

Changing any of them misses (``tests/test_evalcache.py`` changes each one). Failed candidates are
not stored (a failure may be transient: out of memory, an outage).

**Cheap tasks are not cached.** A lookup costs a hash and an SQLite query (~50-100 us); a run
whose first :data:`PROBE` scorings each took less than ``min_seconds`` (default 20 ms) stops using
the cache, so that evolving a 19,210-parameter MLP (1 ms an evaluation) does not fill the disk with
results cheaper to recompute. The file is capped (``max_bytes``, default 2 GiB): past the cap the
oldest entries go. Writes are buffered in memory and committed in one short transaction every :data:`COMMIT_SECONDS`
(and when a run ends), in WAL mode, so parallel processes share one file without waiting on each
other; a killed process loses only its uncommitted entries.
Only numbers, JSON and raw float64/bit arrays are stored: nothing in the file can run code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from evobench.journal import pack_scores, unpack_scores
from evobench.jsonio import dumps
from evobench.task import TaskResult

PROBE = 8
COMMIT_SECONDS = 2.0
DEFAULT_MAX_BYTES = 2 << 30
DEFAULT_MIN_SECONDS = 0.02
FORMAT = 1


def default_path() -> Path | None:
    """``$EVOBENCH_EVAL_CACHE`` (a file or folder; ``off`` = no cache), else ``$EVOBENCH_CACHE/evals.sqlite``
    (default ``~/.cache/evobench/evals.sqlite``)."""
    from evobench.trained_cache import cache_root

    env = os.environ.get("EVOBENCH_EVAL_CACHE")
    if env:
        return None if env.strip().lower() == "off" else Path(env).expanduser()
    return cache_root("evals.sqlite")


def open_cache(where: str | None) -> EvalCache | None:
    """The cache of ``--cache``: a file or folder, ``off``, or None for :func:`default_path`."""
    if where is not None and where.strip().lower() == "off":
        return None
    path = Path(where).expanduser() if where is not None else default_path()
    return None if path is None else EvalCache(path)


def scope(problem, split: str, space_kind: str, space_options: dict[str, Any] | None,
          task_options: dict[str, Any] | None, device: str, provenance: dict[str, str]) -> dict[str, Any]:
    """Everything a cached result depends on besides the candidate (see the module docstring)."""
    import torch

    import evobench

    task = problem.task
    return {"format": FORMAT, "problem": problem.name, "task_options": task_options or {},
            "task_class": f"{type(task).__module__}.{type(task).__qualname__}",
            "task_version": str(getattr(task, "version", "")), "provenance": dict(sorted(provenance.items())),
            "space": space_kind, "space_options": space_options or {}, "split": split, "device": device,
            "evobench": evobench.__version__, "torch": torch.__version__}


class EvalCache:
    """One cache file; :meth:`session` gives the per-run view that the runner uses."""

    def __init__(self, path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES,
                 min_seconds: float = DEFAULT_MIN_SECONDS) -> None:
        self.path = Path(path)
        if self.path.is_dir() or (not self.path.suffix and not self.path.exists()):
            self.path = self.path / "evals.sqlite"  # a folder was given
        if max_bytes <= 0 or not math.isfinite(min_seconds) or min_seconds < 0:
            raise ValueError(f"evaluation cache: max_bytes must be > 0 and min_seconds >= 0, got {max_bytes}, "
                             f"{min_seconds}")
        self.max_bytes, self.min_seconds = int(max_bytes), float(min_seconds)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS results (key BLOB PRIMARY KEY, value TEXT NOT NULL, "
                             "mode INTEGER NOT NULL, scores BLOB NOT NULL, descriptors BLOB, size INTEGER NOT NULL)")
        except sqlite3.Error as e:
            raise OSError(f"evaluation cache {self.path}: {e}") from None
        self._buffer: dict[bytes, tuple] = {}  # put since the last commit
        self._since = time.monotonic()

    def get(self, key: bytes) -> TaskResult | None:
        row = self._buffer.get(key)
        if row is None:
            row = self._db.execute("SELECT value, mode, scores, descriptors FROM results WHERE key = ?",
                                   (key,)).fetchone()
        else:
            row = row[1:5]
        if row is None:
            return None
        value, mode, blob, desc = row
        meta = json.loads(value)
        scores = unpack_scores(mode, blob, 1, int(meta["n"]))[0]
        descriptors = None if desc is None else np.frombuffer(desc, dtype="<f8").astype(np.float64)
        return TaskResult(scores=scores, metrics={k: float(v) for k, v in meta["metrics"].items()},
                          primary=float(meta["primary"]), descriptors=descriptors, n_forward=0)

    def put(self, key: bytes, r: TaskResult) -> None:
        if not all(math.isfinite(v) for v in [r.primary, *r.metrics.values()]):
            return  # strict JSON only; a non-finite metric is rare enough to rescore
        mode, blob = pack_scores(np.asarray(r.scores).reshape(1, -1))
        desc = None if r.descriptors is None else np.ascontiguousarray(r.descriptors, dtype="<f8").tobytes()
        value = json.dumps({"primary": float(r.primary), "metrics": {k: float(v) for k, v in r.metrics.items()},
                            "n": int(np.asarray(r.scores).size)}, allow_nan=False)
        size = len(key) + len(value) + len(blob) + len(desc or b"") + 64
        self._buffer[key] = (key, value, mode, blob, desc, size)
        if time.monotonic() - self._since >= COMMIT_SECONDS:
            self.commit()

    def commit(self) -> None:
        """Write what was put in one short transaction (other processes see it from now on; writers
        never hold the file's lock between commits) and keep the file under its cap."""
        if self._buffer:
            rows = list(self._buffer.values())
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
            self._buffer.clear()
            self._evict()
        self._since = time.monotonic()

    def _evict(self) -> None:
        total = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM results").fetchone()[0]
        if total <= self.max_bytes:
            return
        excess, gone = total - int(0.9 * self.max_bytes), 0
        rows = self._db.execute("SELECT rowid, size FROM results ORDER BY rowid").fetchall()
        cut = []
        for rowid, size in rows:
            if gone >= excess:
                break
            cut.append((rowid,))
            gone += size
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("DELETE FROM results WHERE rowid = ?", cut)
        self._db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self.commit()
            self._db.close()
            self._db = None

    def session(self, scope_data: dict[str, Any]) -> CacheSession:
        return CacheSession(self, scope_data)


class CacheSession:
    """The cache as one run sees it: one scope, hit/miss counts, and the cheap-task cut-off."""

    def __init__(self, cache: EvalCache, scope_data: dict[str, Any]) -> None:
        self.cache = cache
        self._prefix = hashlib.sha256(dumps(scope_data, indent=None, sort_keys=True).encode())
        self._prefix.update(b"\0")
        self.hits = self.misses = 0
        self.active = True  # False once the run's first scorings proved cheaper than a lookup
        self._probe: list[float] = []

    def key(self, candidate: str) -> bytes:
        h = self._prefix.copy()
        h.update(candidate.encode())
        return h.digest()

    def get(self, candidate: str) -> TaskResult | None:
        if not self.active:
            return None
        r = self.cache.get(self.key(candidate))
        if r is not None:
            self.hits += 1
        return r

    def put(self, candidate: str, r: TaskResult, seconds: float) -> None:
        """A scored candidate (``seconds`` its scoring took): stored when scoring is not cheap."""
        if not self.active:
            return
        self.misses += 1
        if len(self._probe) < PROBE:
            self._probe.append(seconds)
            if len(self._probe) == PROBE and max(self._probe) < self.cache.min_seconds:
                self.active = False  # cheaper to recompute than to look up: this run stops caching
                return
        if seconds >= self.cache.min_seconds:
            self.cache.put(self.key(candidate), r)

    def stats(self) -> dict[str, Any]:
        return {"hits": self.hits, "misses": self.misses, "active": self.active}
