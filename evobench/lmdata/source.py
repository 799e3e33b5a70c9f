"""Reading benchmark rows from a local file or the Hugging Face hub, and checking them.

Every problem is one line: :class:`DataFormatError` names the file, the row and the column;
:class:`DataUnavailableError` names the data set and where a local copy can be put. Row numbers
in messages are 1-based line numbers for line-based files (JSON lines, TSV).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

Check = Callable[[Any], str | None]
"""A column check: None when the value is good, else what is wrong with it (a short phrase)."""


class LMDataError(Exception):
    """A benchmark's rows cannot be had: the base of the two errors below."""


class DataFormatError(LMDataError, ValueError):
    """A file or hub split whose rows do not have the data set's schema."""


class DataUnavailableError(LMDataError):
    """Neither a local copy nor the hub can provide the data set."""


def row_error(source: str, row: int | str, column: str, problem: str, unit: str = "row") -> DataFormatError:
    """``<source>: <unit> <row>: column '<column>': <problem>`` as a :class:`DataFormatError`."""
    return DataFormatError(f"{source}: {unit} {row}: column {column!r}: {problem}")


# ---- column checks ---------------------------------------------------------------------------


def text(value: Any) -> str | None:
    """A non-empty string."""
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__} {value!r}"
    return None if value.strip() else "empty string"


def optional_text(value: Any) -> str | None:
    """A string (possibly empty) or None."""
    return None if value is None or isinstance(value, str) else f"expected a string or null, got {value!r}"


def integer(value: Any) -> str | None:
    """An int (a bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"expected an integer, got {type(value).__name__} {value!r}"
    return None


def number(value: Any) -> str | None:
    """An int or a finite float (a bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {type(value).__name__} {value!r}"
    return None if value == value and abs(value) != float("inf") else f"not a finite number: {value!r}"


def present(value: Any) -> str | None:
    """Any value (the column must exist; its form is checked elsewhere)."""
    return None


def id_value(value: Any) -> str | None:
    """An identifier: a non-empty string or an int."""
    return integer(value) if not isinstance(value, str) else text(value)


def one_of(*allowed: Any) -> Check:
    """A check that the value is one of ``allowed`` (ints and bools kept apart)."""

    def check(value: Any) -> str | None:
        if any(value == a and type(value) is type(a) for a in allowed):
            return None
        return f"expected one of {list(allowed)}, got {value!r}"

    return check


def check_row(
    row: Any, schema: Mapping[str, Check], source: str, n: int | str, unit: str = "row"
) -> dict[str, Any]:
    """``row`` as a dict once every column of ``schema`` is present and passes its check.

    Columns outside the schema are kept as they are. ``unit`` names what ``n`` counts in messages.
    """
    if not isinstance(row, Mapping):
        raise DataFormatError(f"{source}: {unit} {n}: expected an object, got {type(row).__name__}")
    for column, check in schema.items():
        if column not in row:
            raise row_error(source, n, column, "missing", unit)
        problem = check(row[column])
        if problem is not None:
            raise row_error(source, n, column, problem, unit)
    return dict(row)


# ---- local files -----------------------------------------------------------------------------


def resolve(path: str | os.PathLike, name: str, file_names: Iterable[str]) -> Path:
    """The data file: ``path`` itself, or the first of ``file_names`` inside a directory ``path``."""
    p = Path(path)
    names = list(file_names)
    if p.is_dir():
        for file_name in names:
            if (p / file_name).is_file():
                return p / file_name
        raise DataUnavailableError(f"{name}: none of {names} in directory {p}")
    if not p.is_file():
        raise DataUnavailableError(f"{name}: no file at {p} (expected a copy of {names[0]})")
    return p


def read_text(path: Path) -> str:
    """The file as UTF-8 text (a BOM dropped); a file that is not UTF-8 is a DataFormatError."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_json(path: Path) -> Any:
    """One JSON document."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None


def read_json_lines(path: Path) -> list[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line of a JSON-lines file."""
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{path}: row {n}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not rows:
        raise DataFormatError(f"{path}: no rows")
    return rows


# ---- the hub ---------------------------------------------------------------------------------


def load_hub(name: str, hub_id: str, config: str | None, split: str, local_hint: str,
             prepare: Callable[[Any], Any] | None = None, instead: str | None = None) -> list[dict[str, Any]]:
    """Rows of ``load_dataset(hub_id, config, split=split)`` as plain dicts.

    ``prepare`` (optional) maps the loaded ``datasets.Dataset`` before its rows are read (e.g. to
    keep image columns as encoded bytes). Offline (or when the hub has no such data set) this raises
    a one-line :class:`DataUnavailableError` that names the local file to pass instead
    (``local_hint``: its name and origin), or says ``instead`` (e.g. ``pass data_dir= a folder ...``).
    """
    instead = instead or f"pass path= the file {local_hint} or a folder holding it"
    where = f"{hub_id}" + (f" (config {config})" if config else "") + f", split {split}"
    try:
        import datasets
        from datasets.exceptions import DatasetNotFoundError
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ModuleNotFoundError:
        raise DataUnavailableError(
            f"{name}: no local file given, and reading {where} needs the optional package datasets "
            f"(pip install 'evobench[ja]'); or {instead}"
        ) from None
    try:
        dataset = datasets.load_dataset(hub_id, config, split=split)
    except (ConnectionError, DatasetNotFoundError, LocalEntryNotFoundError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise DataUnavailableError(
            f"{name}: {where} cannot be loaded from the hub ({reason}); {instead}"
        ) from None
    if prepare is not None:
        dataset = prepare(dataset)
    return [dict(row) for row in dataset]


def hub_source(hub_id: str, config: str | None, split: str) -> str:
    """How rows from the hub are named in error messages: ``hub:<id>/<config>/<split>``."""
    return f"hub:{hub_id}" + (f"/{config}" if config else "") + f"/{split}"
