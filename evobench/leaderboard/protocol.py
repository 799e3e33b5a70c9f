"""The leaderboard's protocol: what every submitted method is run on, versioned.

``leaderboard/protocol.yaml``::

    version: 1            # bump on any change that makes old results incomparable
    alpha: 0.05           # paired tests that decide tied ranks
    tracks:
      digits:
        description: ...
        task: {name: digits-specialists, options: {}}
        spaces: [ps, params]        # kinds a method may search here (its first preference among them)
        space_options: {}           # per kind, as a run config's ``spaces``
        budget: 200                 # evaluations on the search split
        seeds: [0, 1, 2, 3, 4]
        limits: {method_seconds: 600, memory_mb: 4096}
        threads: 1                  # torch threads for scoring (floating-point sums depend on it)

Results are reported on each task's held-out test split, which the search never sees. A track's
hash (:func:`track_hash`) covers the version, alpha and the track's entry, so a result produced
under another protocol is recognised as stale.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evobench.config import parse_seeds
from evobench.jsonio import dumps
from evobench.leaderboard.yamlsafe import load_validated

KINDS = ("ps", "dfs", "ps+dfs", "params")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrackTask(_Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class Limits(_Strict):
    method_seconds: float = Field(default=600.0, gt=0)  # time the method itself may spend per seed
    memory_mb: int = Field(default=4096, ge=256)  # address space of the method's process


class Track(_Strict):
    description: str = ""
    task: TrackTask
    spaces: list[str] = Field(default_factory=lambda: list(KINDS), min_length=1)
    space_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    budget: int = Field(gt=0)
    seeds: list[int]
    limits: Limits = Field(default_factory=Limits)
    threads: int = Field(default=1, ge=1)  # torch threads of evobench's scoring (results depend on it)

    @field_validator("spaces")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        bad = [k for k in v if k not in KINDS]
        if bad:
            raise ValueError(f"unknown space kind {bad[0]!r} (kinds: {', '.join(KINDS)})")
        return v

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> list[int]:
        return parse_seeds(v)


class Protocol(_Strict):
    version: int = Field(ge=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    tracks: dict[str, Track] = Field(min_length=1)

    def track(self, name: str) -> Track:
        if name not in self.tracks:
            raise ValueError(f"track {name!r} is not in the protocol (tracks: {', '.join(self.tracks)})")
        return self.tracks[name]


def track_hash(protocol: Protocol, track: str) -> str:
    """SHA-256 of the protocol's version, alpha and one track's entry (canonical JSON)."""
    body = {"version": protocol.version, "alpha": protocol.alpha,
            "track": protocol.track(track).model_dump(mode="json")}
    return hashlib.sha256(dumps(body, indent=None, sort_keys=True).encode()).hexdigest()


def load_protocol(path: str | Path) -> Protocol:
    """Read ``protocol.yaml`` (safe loader; an error names the field and its line)."""
    return load_validated(path, Protocol, "protocol")
