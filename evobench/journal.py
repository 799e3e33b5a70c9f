"""A run's journal: every told batch is appended as it is told, so a killed run resumes where it stopped.

A search run is a deterministic function of its seed and of the scores it is told: the baseline's
random streams, the space's and the starting models' all derive from the seed, and a baseline is
told only :class:`~evobench.evaluation.Evaluation` objects. The journal therefore keeps the told
scores, not the algorithm's internals: on resume the runner builds the baseline afresh with the
same seed and *replays* the run — every ``ask`` is answered from the journal instead of building
and scoring the candidates — which puts every baseline (pycma's, pymoo's, a third-party one) in
exactly the state it had, with nothing pickled. Replay costs only the baselines' own ask/tell
(~0.5 ms an evaluation on digits) and no forward pass. Each replayed batch is checked against the
journal (its size and a checksum of a fixed sample of its genes): a run that does not replay to the
same genomes (other code, other package versions, a baseline that is not deterministic) stops with
:class:`ResumeError` instead of continuing a different run.

Files, in the run's journal folder:

``journal.json``
    what the journal belongs to (the run's key: task, baseline and its config, space and its
    options, seed, budget) and the format version; written once, atomically.
``journal.bin``
    one chunk per told batch, appended with one ``write`` when the batch is told::

        b"EVJ1" | u32 payload length | u32 crc32(payload) | payload

    payload, little-endian: ``k`` u32 candidates, ``m`` u32 examples per candidate (0: no
    per-example scores), ``d`` u32 descriptors (0: none), score mode u8 (0 none, 1 bits, 2
    float64), forward examples of the batch u64, elapsed run seconds at the end of the batch f64,
    crc32 of the genes sample u32, then values ``k`` f64, scores (mode 1: ``k`` rows of
    ``np.packbits`` of ``ceil(m / 8)`` bytes, used when every score is exactly 0.0 or 1.0; mode
    2: ``k * m`` f64), descriptors ``k * d`` f64, and the failures as u32 length + UTF-8 JSON
    ``[[index, message], ...]``.

A chunk is complete only if its length and crc32 match: a process killed in the middle of a
write leaves a torn last chunk, which :meth:`RunJournal.open` drops (and truncates). Written by
the process with plain ``write`` calls (in the kernel's page cache at once: a killed process loses
nothing it wrote); ``fsync`` runs at most every :data:`SYNC_SECONDS`, so a power cut loses at most
that much of the search. Cost on digits from scratch: a few microseconds of ~1.3 ms an evaluation
(``benchmarks/test_journal.py``).
"""

from __future__ import annotations

import json
import math
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evobench.evaluation import Evaluation
from evobench.jsonio import dumps, loads, write_json

FORMAT = 1
MAGIC = b"EVJ1"
SYNC_SECONDS = 30.0
SAMPLE = 1024  # genes checksummed per batch: about this many, evenly spaced
_FRAME = struct.Struct("<4sII")
_HEAD = struct.Struct("<IIIBQdI")
_NONE, _BITS, _F64 = 0, 1, 2


class ResumeError(RuntimeError):
    """A journal that cannot continue this run (another run's, or one that replays differently)."""


def genes_checksum(x: np.ndarray) -> int:
    """crc32 of about :data:`SAMPLE` evenly spaced genes of each genome of the batch ``x`` (k, dim),
    in their own dtype: cheap (a few microseconds) and different for any genome that diverged."""
    x = np.asarray(x)
    step = max(1, x.shape[1] // SAMPLE) if x.ndim == 2 and x.shape[1] else 1
    return zlib.crc32(np.ascontiguousarray(x[:, ::step] if x.ndim == 2 else x))


def pack_scores(scores: np.ndarray) -> tuple[int, bytes]:
    """Per-example scores ``(k, m)`` as (mode, bytes): mode 1 = one ``np.packbits`` row of ``ceil(m / 8)``
    bytes per candidate, when every score is exactly +0.0 or 1.0 (the bits rebuild the same float64
    values); mode 2 = little-endian float64. Shared by the journal and the evaluation cache."""
    s = np.ascontiguousarray(scores, dtype="<f8")
    if bool(((s == 0.0) | (s == 1.0)).all()) and not np.signbit(s).any():
        return _BITS, np.packbits(s.astype(bool), axis=1).tobytes()
    return _F64, s.tobytes()


def unpack_scores(mode: int, blob: bytes, k: int, m: int) -> np.ndarray:
    """The ``(k, m)`` float64 scores :func:`pack_scores` packed (ValueError for a blob of another size)."""
    if mode == _BITS:
        row = math.ceil(m / 8)
        bits = np.frombuffer(blob, dtype=np.uint8)
        if bits.size != k * row:
            raise ValueError(f"packed scores: {bits.size} bytes, expected {k * row}")
        return np.unpackbits(bits.reshape(k, row), axis=1, count=m).astype(np.float64)
    if mode == _F64:
        return np.frombuffer(blob, dtype="<f8").reshape(k, m).astype(np.float64)
    raise ValueError(f"unknown score mode {mode}")


@dataclass
class Batch:
    """One told batch read back: what the baseline was told, and the run's counters after it."""

    evaluation: Evaluation
    forward_examples: int
    elapsed: float
    checksum: int

    def __len__(self) -> int:
        return len(self.evaluation)


def encode(ev: Evaluation, forward_examples: int, elapsed: float, checksum: int) -> bytes:
    """One chunk (frame + payload) for a told batch."""
    value = np.ascontiguousarray(ev.value, dtype="<f8")
    k = value.size
    parts = []
    m = d = 0
    mode = _NONE
    if ev.scores is not None:
        s = np.asarray(ev.scores).reshape(k, -1)
        m = s.shape[1]
        mode, blob = pack_scores(s)
        parts.append(blob)
    if ev.descriptors is not None:
        desc = np.ascontiguousarray(ev.descriptors, dtype="<f8").reshape(k, -1)
        d = desc.shape[1]
        parts.append(desc.tobytes())
    failures = [[i, e] for i, e in enumerate(ev.errors or ()) if e is not None]
    text = json.dumps(failures, ensure_ascii=False).encode() if failures else b""
    payload = b"".join([_HEAD.pack(k, m, d, mode, int(forward_examples), float(elapsed), checksum),
                        value.tobytes(), *parts, struct.pack("<I", len(text)), text])
    return _FRAME.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode(payload: bytes) -> Batch:
    """A chunk's payload back to the batch (ValueError when it is malformed)."""
    if len(payload) < _HEAD.size:
        raise ValueError(f"journal chunk of {len(payload)} bytes is shorter than its header")
    k, m, d, mode, n_fwd, elapsed, checksum = _HEAD.unpack_from(payload, 0)
    pos = _HEAD.size

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(payload):
            raise ValueError("journal chunk is shorter than its header says")
        out = payload[pos:pos + n]
        pos += n
        return out

    value = np.frombuffer(take(8 * k), dtype="<f8").astype(np.float64)
    scores = None
    if mode in (_BITS, _F64):
        scores = unpack_scores(mode, take(k * math.ceil(m / 8) if mode == _BITS else 8 * k * m), k, m)
    elif mode != _NONE:
        raise ValueError(f"journal chunk has unknown score mode {mode}")
    desc = np.frombuffer(take(8 * k * d), dtype="<f8").reshape(k, d).astype(np.float64) if d else None
    (n_text,) = struct.unpack("<I", take(4))
    errors: list[str | None] = [None] * k
    for i, e in (json.loads(take(n_text).decode()) if n_text else []):
        errors[int(i)] = str(e)
    if pos != len(payload):
        raise ValueError("journal chunk is longer than its contents")
    return Batch(Evaluation(value=value, scores=scores, descriptors=desc, errors=errors), int(n_fwd),
                 float(elapsed), int(checksum))


def read_chunks(path: Path) -> tuple[list[Batch], int]:
    """Every complete chunk of ``journal.bin`` and the byte length they span (a torn or corrupt tail
    is not counted)."""
    data = path.read_bytes() if path.exists() else b""
    out, pos = [], 0
    while pos + _FRAME.size <= len(data):
        magic, n, crc = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + n
        if magic != MAGIC or end > len(data):
            break
        payload = data[pos + _FRAME.size:end]
        if zlib.crc32(payload) != crc:
            break
        out.append(decode(payload))
        pos = end
    return out, pos


class RunJournal:
    """The journal of one run, in ``folder``: replay what is there, then append every told batch."""

    def __init__(self, folder: str | os.PathLike, key: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.key = json.loads(dumps(key, indent=None, sort_keys=True))  # as JSON will give it back
        self._fd: int | None = None
        self._synced = 0.0

    @property
    def bin_path(self) -> Path:
        return self.folder / "journal.bin"

    def open(self) -> list[Batch]:
        """Start or continue: the batches already journaled (empty for a new run), the file made
        ready to append after them. :class:`ResumeError` when the folder holds another run's journal."""
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "journal.json"
        if meta.exists():
            saved = loads(meta.read_text())
            if saved.get("format") != FORMAT:
                raise ResumeError(f"{meta}: journal format {saved.get('format')!r}, this evobench reads {FORMAT}")
            if saved.get("key") != self.key:
                field = next((k for k in sorted(set(self.key) | set(saved.get("key") or {}))
                              if (saved.get("key") or {}).get(k) != self.key.get(k)), "?")
                raise ResumeError(f"{meta} belongs to another run ({field} differs)")
            batches, size = read_chunks(self.bin_path)
        else:
            if self.bin_path.exists():
                self.bin_path.unlink()  # chunks without their key: never used
            write_json(meta, {"format": FORMAT, "key": self.key})
            batches, size = [], 0
        self._fd = os.open(self.bin_path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.ftruncate(self._fd, size)  # a torn last chunk goes
        os.lseek(self._fd, size, os.SEEK_SET)
        self._synced = time.monotonic()
        return batches

    def append(self, x: np.ndarray, ev: Evaluation, forward_examples: int, elapsed: float) -> None:
        """Journal one told batch (the genomes ``x`` only as a checksum)."""
        if self._fd is None:
            raise RuntimeError("RunJournal.append before open()")
        chunk = encode(ev, forward_examples, elapsed, genes_checksum(x))
        written = os.write(self._fd, chunk)
        if written != len(chunk):  # a full disk: say so instead of leaving a torn chunk unnoticed
            raise OSError(f"{self.bin_path}: wrote {written} of {len(chunk)} bytes")
        now = time.monotonic()
        if now - self._synced >= SYNC_SECONDS:
            os.fsync(self._fd)
            self._synced = now

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
