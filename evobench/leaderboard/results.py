"""A leaderboard result file: one method on one track, as evobench's own process wrote it.

``leaderboard/results/<method>/<track>.json`` (strict JSON)::

    {"format": "evobench-leaderboard-result/1",
     "method": {name, version, authors, license, code, entry_point, url, hyperparameters},
     "track": "digits", "task": "digits-specialists", "space": "ps", "budget": 200, "seeds": [0, 1, 2],
     "protocol": {"version": 1, "alpha": 0.05},
     "runs": [{"seed", "test_score", "test_metrics", "test_scores" (per example), "example_ids" | null,
               "best_search", "curve": {"evaluations": [...], "best_so_far": [...]},
               "evaluations", "failed", "forward_examples", "wall_time_s", "method_time_s", "recipe",
               "errors"}],
     "environment": {"python", "platform", "packages", "git_sha"},
     "created": "2026-12-02T10:00:00Z",
     "hashes": {"protocol", "data", "models", "code", "results"}}

``hashes.results`` is the SHA-256 of the file's canonical JSON (sorted keys, no spaces) without
that one field; ``hashes.protocol`` the SHA-256 of the track's protocol entry (:mod:`.protocol`). A
file whose content does not give its ``results`` hash was edited after evobench wrote it; one whose
protocol hash is not the current protocol's was produced under another protocol (stale). Neither is
ranked. (A hash catches an edit that did not recompute it; ``evobench leaderboard verify`` re-runs a
seed and is the check that cannot be forged.)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evobench.jsonio import dumps, loads

FORMAT = "evobench-leaderboard-result/1"


class ResultError(ValueError):
    """A result file that cannot be read as one (one line, names the file and the field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Curve(_Strict):
    evaluations: list[int]
    best_so_far: list[float | None]

    @model_validator(mode="after")
    def _aligned(self) -> Curve:
        if len(self.evaluations) != len(self.best_so_far):
            raise ValueError(f"{len(self.evaluations)} evaluations but {len(self.best_so_far)} best_so_far values")
        return self


class SeedRun(_Strict):
    seed: int = Field(ge=0)
    test_score: float | None
    test_metrics: dict[str, float | None]
    test_scores: list[float | None]
    example_ids: list[str] | None = None
    best_search: float | None
    curve: Curve
    evaluations: int = Field(ge=0)
    failed: int = Field(ge=0)
    forward_examples: int = Field(ge=0)
    wall_time_s: float = Field(ge=0)
    method_time_s: float = Field(ge=0)
    recipe: dict[str, Any]
    errors: list[str]


class MethodInfo(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    version: str
    authors: list[str]
    license: str
    code: dict[str, str]
    entry_point: str
    url: str | None = Field(default=None, pattern=r"^https://[^\s\"'<>]+$")
    hyperparameters: dict[str, Any]


class ProtocolRef(_Strict):
    version: int
    alpha: float


class Hashes(_Strict):
    protocol: str
    data: str
    models: str  # SHA-256 over the task's source and base models' hashes
    code: str
    results: str


class Result(_Strict):
    format: str
    method: MethodInfo
    track: str
    task: str
    space: str
    budget: int = Field(gt=0)
    seeds: list[int]
    protocol: ProtocolRef
    runs: list[SeedRun]
    environment: dict[str, Any]
    created: str
    hashes: Hashes

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v != FORMAT:
            raise ValueError(f"unknown format {v!r} (expected {FORMAT!r})")
        return v


def content_hash(data: dict[str, Any]) -> str:
    """SHA-256 of a result's canonical JSON without ``hashes.results``."""
    body = {k: v for k, v in data.items() if k != "hashes"}
    body["hashes"] = {k: v for k, v in data.get("hashes", {}).items() if k != "results"}
    return hashlib.sha256(dumps(body, indent=None, sort_keys=True).encode()).hexdigest()


def seal(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``hashes.results`` set to its content hash (validated against the schema)."""
    data = {**data, "hashes": {**data["hashes"], "results": ""}}
    data["hashes"]["results"] = content_hash(data)
    Result.model_validate(data)
    return data


@dataclass(frozen=True)
class LoadedResult:
    """A result file as read: its data, where it lies, and why it may not be ranked."""

    path: Path
    result: Result
    tampered: bool  # the content does not give its own results hash

    def stale(self, protocol_hash: str, version: int) -> bool:
        return self.result.hashes.protocol != protocol_hash or self.result.protocol.version != version

    def scores(self) -> dict[int, float]:
        """Test score per seed (seeds whose recommended model could not be scored are left out)."""
        return {r.seed: r.test_score for r in self.result.runs
                if r.test_score is not None and math.isfinite(r.test_score)}


def load_result(path: str | Path) -> LoadedResult:
    """Read and check one result file; a malformed one raises :class:`ResultError` (one line)."""
    path = Path(path)
    try:
        data = loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ResultError(f"{path}: not a readable JSON result file ({e})") from None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: a result file holds a JSON object, not {type(data).__name__}")
    try:
        result = Result.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ResultError(f"{path}: {where}: {err['msg']}") from None
    return LoadedResult(path, result, tampered=content_hash(data) != result.hashes.results)


def load_results(folder: str | Path) -> list[LoadedResult]:
    """Every ``<method>/<track>.json`` under ``folder`` (sorted by path)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultError(f"{folder}: no such results folder")
    return [load_result(p) for p in sorted(folder.glob("*/*.json"))]
