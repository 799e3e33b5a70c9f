"""Strict JSON in and out: every file evobench writes is standard JSON (no NaN, no Infinity).

Values that may legitimately be missing (the test score of a run whose every candidate failed, an
undefined p-value) are turned into ``null`` by :func:`nan_to_none` where the record is built, so
that a NaN that reaches :func:`dumps` anyway is a bug and raises instead of writing a file other
JSON readers reject. Files are written atomically (temporary file, fsync, rename), so a reader
never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def is_finite_number(v: Any) -> bool:
    """A finite int or float (not None, NaN, infinity, or anything else)."""
    return isinstance(v, int | float) and math.isfinite(v)


def nan_to_none(obj: Any) -> Any:
    """A copy of ``obj`` (nested dicts/lists/arrays) with every NaN or infinite float as None."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return [nan_to_none(v) for v in obj.tolist()]
    if isinstance(obj, Mapping):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [nan_to_none(v) for v in obj]
    return obj


def none_to_nan(value: Any) -> float:
    """Read back a float that :func:`nan_to_none` may have written as null."""
    return math.nan if value is None else float(value)


def dumps(obj: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``json.dumps`` that refuses NaN/Infinity (ValueError) and knows numpy values."""
    return json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=False, default=_default)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON to ``path`` atomically."""
    return write_text(path, dumps(obj, indent=indent) + "\n")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, fsync, rename. The
    file gets the permissions a plain ``open`` would give it (0666 less the umask, not mkstemp's 0600),
    so a shared results folder or a published site is readable."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not strict JSON: {name}")


def loads(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity literals (ValueError)."""
    return json.loads(text, parse_constant=_reject_constant)
