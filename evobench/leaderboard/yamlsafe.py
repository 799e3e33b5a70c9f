"""Untrusted YAML in: the safe loader only, no aliases, a size cap, and errors that give the line.

A submission is written by someone else. Its YAML is parsed with PyYAML's ``SafeLoader`` (plain
data; a ``!!python/...`` tag is an error), anchors and aliases are refused (no "billion laughs"), and
the file may be at most :data:`MAX_BYTES`. Validation errors from the pydantic schema are reported
as ``FILE:LINE: field.path: message`` using the parsed nodes' positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

MAX_BYTES = 256 * 1024

M = TypeVar("M", bound=BaseModel)


class YamlError(ValueError):
    """A file that is not acceptable YAML or does not fit its schema (one line: file, line, field)."""


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """1-based line of the deepest node along ``loc`` (keys and list indices)."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    node, line = v, k.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def parse(path: str | Path, what: str) -> tuple[Any, yaml.Node | None]:
    """The data of a YAML file and its node tree; :class:`YamlError` for anything unsafe or broken."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise YamlError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    if len(raw) > MAX_BYTES:
        raise YamlError(f"{path}: the {what} is {len(raw)} bytes, more than {MAX_BYTES}")
    try:
        text = raw.decode("utf-8")
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1
                raise YamlError(f"{path}:{line}: anchors and aliases are not allowed in a {what}")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        raise YamlError(f"{path}: the {what} is not UTF-8 text") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f":{mark.line + 1}" if mark is not None else ""
        raise YamlError(f"{path}{where}: not valid YAML for a {what}: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise YamlError(f"{path}: not valid YAML for a {what}: {' '.join(str(e).split())}") from None
    return data, node


def load_validated(path: str | Path, model: type[M], what: str) -> M:
    """Parse ``path`` and validate it with ``model``; the first error names its field and line."""
    data, node = parse(path, what)
    if not isinstance(data, dict):
        raise YamlError(f"{path}: a {what} is a YAML mapping, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(node, loc)
        msg = err["msg"].removeprefix("Value error, ")
        raise YamlError(f"{path}:{line if line is not None else '?'}: {field}: {msg}") from None
