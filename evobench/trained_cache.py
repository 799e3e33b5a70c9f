"""Where the embedded suites keep the models they train in code once, and the key of a recipe.

``cache_root(name)`` is ``$EVOBENCH_CACHE`` (default ``~/.cache/evobench``) / ``name``. A recipe (a
frozen dataclass whose every field shapes the models) is cached under :func:`recipe_key`: a hash of
its fields and of the versions of what trains it, so that any change trains anew. Numbers are
keyed by value, not by spelling: ``Recipe(lr=1)`` and ``Recipe(lr=1.0)`` make the same models and
get the same key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_root(name: str) -> Path:
    """``$EVOBENCH_CACHE`` (default ``~/.cache/evobench``) / ``name``."""
    root = os.environ.get("EVOBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "evobench")
    return Path(root) / name


def recipe_fields(recipe: Any) -> dict[str, Any]:
    """The recipe's fields as JSON data, a field declared ``float`` always as a float."""
    out = dataclasses.asdict(recipe)
    for f in dataclasses.fields(recipe):
        value = out[f.name]
        if f.type in ("float", float) and isinstance(value, int) and not isinstance(value, bool):
            out[f.name] = float(value)
    return out


def recipe_key(recipe: Any, **versions: str) -> str:
    """16 hex digits of the SHA-256 of the recipe's fields and ``versions`` (data format, packages)."""
    blob = json.dumps({"recipe": recipe_fields(recipe), **versions}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
