"""Shared parts of the language-model tasks (``mgsm-ja``, ``jp-lmeh`` and its subtasks).

Option checks (one-line ``ValueError`` naming the option), the model pool of a factory, the
few-shot prompt layout of the Japanese LM Evaluation Harness, content hashes, and
:func:`score_model` (score a problem's first model on a split). Needs the ``llm`` extra.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evobench.lmdata import DataUnavailableError
from evobench.models.base import ModelPool
from evobench.problem import Problem
from evobench.task import SEARCH, TEST, Task, TaskResult

SPLITS = (SEARCH, TEST)
DTYPES = ("float32", "bfloat16", "float16")


class DataMissingError(DataUnavailableError, ValueError):
    """A task's data is neither under ``data_dir`` nor on the hub (one line: what to download, where)."""


# ---- option checks ------------------------------------------------------------------------------

def positive_int(name: str, value: Any, optional: bool = False) -> int | None:
    """``value`` as an int >= 1 (None allowed when ``optional``); else a one-line ValueError."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if optional else ''}, got {value!r}")
    return value


def model_names(models: Any) -> list[str]:
    """The ``models`` option as a non-empty list of names (a single name is a list of one)."""
    if isinstance(models, str | os.PathLike):
        models = [models]
    if not isinstance(models, Sequence) or not models:
        raise ValueError(f"models must be a model name or a non-empty list of them, got {models!r}")
    names = [os.fspath(m) if isinstance(m, os.PathLike) else m for m in models]
    bad = [m for m in names if not isinstance(m, str) or not m.strip()]
    if bad:
        raise ValueError(f"models must be hub ids, directories or .gguf paths (strings), got {bad[0]!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"models lists a model twice: {names}")
    return names


def optional_path(name: str, value: Any, kind: str) -> Path | None:
    """An existing file or directory (``kind``: "file", "dir" or "any"), or None."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ValueError(f"{name} must be a path, got {value!r}")
    path = Path(value).expanduser()
    ok = {"file": path.is_file(), "dir": path.is_dir(), "any": path.exists()}[kind]
    if not ok:
        raise ValueError(f"{name}: no such {'directory' if kind == 'dir' else 'file'}: {path}")
    return path


def check_common(models: Any, base: Any, max_new_tokens: Any, batch_size: Any, device: Any,
                 dtype: Any) -> list[str]:
    """Checks the options every LM task factory takes; returns the model names."""
    names = model_names(models)
    if base is not None and (not isinstance(base, str | os.PathLike) or not str(base).strip()):
        raise ValueError(f"base must be a model name or None, got {base!r}")
    positive_int("max_new_tokens", max_new_tokens)
    positive_int("batch_size", batch_size)
    if not isinstance(device, str) or not device:
        raise ValueError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return names


# ---- models and engine --------------------------------------------------------------------------

def lm_pool(models: list[str], base: str | None, device: str, dtype: str) -> ModelPool:
    """The pool of a factory: each model (hub id, directory or ``.gguf``) and its tokenizer loaded once."""
    from evobench.models.causal_lm import load_pool

    return load_pool(models, os.fspath(base) if base is not None else None, device=device, dtype=dtype)


def make_engine(pool: ModelPool, batch_size: int):
    """An :class:`~evobench.scoring.LMEngine` over the pool family's tokenizer."""
    from evobench.scoring import LMEngine

    tokenizer = getattr(pool.family, "tokenizer", None)
    if tokenizer is None:
        raise ValueError(f"model family {pool.family.name!r} carries no tokenizer; an LM task needs one")
    return LMEngine(tokenizer, batch_size=batch_size)


def lm_problem(name: str, task: Task, pool: ModelPool, what: str) -> Problem:
    """A problem over ``pool``; with one model there is nothing to merge: it serves to score that model."""
    names = [n for n, _ in pool.sources]
    how = f"merge {', '.join(names)}" if len(names) > 1 else f"score {names[0]}"
    return Problem(name, task, pool, description=f"{how} on {what}")


def score_model(problem: Problem, split: str = TEST, limit: int | None = None) -> TaskResult:
    """Score the problem's first source model on ``split`` (its first ``limit`` examples)."""
    if not problem.pool.sources:
        raise ValueError(f"problem {problem.name!r} has no source model to score")
    model = problem.pool.family.build(problem.pool.sources[0][1])
    return problem.task.evaluate(model, split, limit)


# ---- prompts and hashes -------------------------------------------------------------------------

def fewshot_prompt(description: str, shots: Sequence[tuple[str, str]], text: str, target_delimiter: str = "\n",
                   fewshot_delimiter: str = "\n\n") -> str:
    """The harness's plain-text prompt: description, then each shot as ``text + target_delimiter +
    answer + fewshot_delimiter``, then the document's text (nothing after it)."""
    parts = [description]
    parts += [q + target_delimiter + a + fewshot_delimiter for q, a in shots]
    return "".join(parts) + text


def sha256(*parts: str) -> str:
    """SHA-256 hex digest of the parts joined by NUL characters (UTF-8)."""
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def rows_hash(*groups: Any) -> str:
    """A short hash of JSON-serialisable data (keys sorted), for ``data_hash``."""
    text = json.dumps(groups, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_split(task: str, split: str, have: Sequence[str]) -> None:
    """A one-line ValueError unless ``split`` is one of ``have``."""
    if split not in have:
        raise ValueError(f"{task}: unknown split {split!r} (have: {', '.join(have)})")


def head(items: Sequence, limit: int | None) -> list:
    """The first ``limit`` items (all when None)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    return list(items if limit is None else items[:limit])


def data_missing(e: Exception) -> Exception:
    """``e`` (a DataUnavailableError) as a :class:`DataMissingError`, which is also a ValueError, so that
    a factory's missing data reads as a bad option (one line) where task options are checked."""
    text = str(e).replace("pass path= the file", "give data_dir= a folder holding the file")
    return DataMissingError(text.replace(" or a folder holding it", ""))


def find_data(data_dir: Path | None, task: str, names: Sequence[str], folders: Sequence[str],
              origin: str) -> Path | None:
    """The first of ``names`` in ``data_dir`` or one of its ``folders`` (None when ``data_dir`` is None:
    the loader then reads the hub). A ``data_dir`` without the file is a one-line error naming it."""
    if data_dir is None:
        return None
    for folder in ("", *folders):
        for name in names:
            if (data_dir / folder / name).is_file():
                return data_dir / folder / name
    where = " or ".join(str(data_dir / f) for f in ("", *folders))
    raise DataMissingError(f"{task}: no {names[0]} in {where}; download {origin} and put it there")
