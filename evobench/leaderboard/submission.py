"""A leaderboard submission: who made a method, where its code is, how to build it, which tracks.

``leaderboard/submissions/<name>.yaml``::

    name: my-method                  # lowercase letters, digits and dashes; the results folder's name
    version: "1.0"
    authors: [Ada Lovelace]
    license: MIT
    code:                            # either an installed package ...
      package: my-merge-method
      version: 0.3.1
    # code: {file: my_method.py, sha256: <hex>}   # ... or one file beside this YAML
    entry_point: my-method           # package: its name in the ``evobench.baselines`` entry-point group
                                     # file: the Baseline class defined in the file
    url: https://github.com/me/my-merge-method    # optional, linked from the leaderboard
    hyperparameters: {popsize: 16}
    tracks: [digits, ja-math-mini]

Nothing here imports the method: the entry point is looked up in the package's metadata, the module
file located without executing it, and the code hashed from its bytes. Only the method's confined
process (:mod:`evobench.leaderboard.worker`) imports it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evobench.leaderboard.yamlsafe import YamlError, load_validated

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class SubmissionError(ValueError):
    """A submission that cannot be run (one line: the file, the field, the reason)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Code(_Strict):
    package: str | None = None
    version: str | None = None
    file: str | None = None
    sha256: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Code:
        if (self.package is None) == (self.file is None):
            raise ValueError("give either package + version or file + sha256")
        if self.package is not None and (not self.version or self.sha256 is not None):
            raise ValueError("a package reference is package + version (no sha256)")
        if self.file is not None:
            if self.version is not None or not self.sha256:
                raise ValueError("a file reference is file + sha256 (no version)")
            if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
                raise ValueError("sha256 must be 64 lowercase hex digits")
            p = Path(self.file)
            if p.is_absolute() or ".." in p.parts or not self.file.endswith(".py") or "\\" in self.file:
                raise ValueError(f"file {self.file!r} must be a relative .py path inside the submission's folder")
        return self


class Submission(_Strict):
    name: str
    version: str = Field(min_length=1, max_length=64)
    authors: list[str] = Field(min_length=1)
    license: str = Field(min_length=1, max_length=64)
    code: Code
    entry_point: str = Field(min_length=1, max_length=200)
    url: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    tracks: list[str] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError(f"{v!r} is not a name (lowercase letters, digits, dashes; at most 63)")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"https://[^\s\"'<>]+", v):
            raise ValueError("url must be an https:// address")
        return v

    @field_validator("authors")
    @classmethod
    def _authors(cls, v: list[str]) -> list[str]:
        if any(not a.strip() or len(a) > 200 for a in v):
            raise ValueError("every author is a non-empty name of at most 200 characters")
        return v

    @field_validator("hyperparameters")
    @classmethod
    def _plain(cls, v: dict[str, Any]) -> dict[str, Any]:
        from evobench.jsonio import dumps

        try:
            dumps(v, indent=None)
        except (TypeError, ValueError) as e:
            raise ValueError(f"hyper-parameters must be plain JSON values ({e})") from None
        return v

    @field_validator("tracks")
    @classmethod
    def _tracks(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a track is listed twice")
        return v


@dataclass(frozen=True)
class MethodCode:
    """Where the method's class is, found without importing it."""

    module: str | None  # installed module name (package references)
    file: Path | None  # the file (file references)
    attr: str
    source: Path  # the module file whose bytes are the code hash
    sha256: str

    def worker_header(self) -> dict[str, Any]:
        return {"module": self.module, "file": None if self.file is None else str(self.file), "attr": self.attr}


def load_submission(path: str | Path) -> Submission:
    try:
        return load_validated(path, Submission, "submission")
    except YamlError as e:
        raise SubmissionError(str(e)) from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def module_file(name: str) -> Path | None:
    """The source file of module ``name``, located by the import system's finders without running it
    (nor any parent package's ``__init__``)."""
    parts = name.split(".")
    spec = importlib.util.find_spec(parts[0]) if parts[0] not in sys.modules else sys.modules[parts[0]].__spec__
    for i in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return None
        full, path, spec = ".".join(parts[: i + 1]), list(spec.submodule_search_locations), None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(full, path) if find is not None else None
            if spec is not None:
                break
    return Path(spec.origin) if spec is not None and spec.origin and spec.has_location else None


def resolve_code(sub: Submission, folder: Path, where: str) -> MethodCode:
    """Find the method's code (see the module docstring); :class:`SubmissionError` names the problem."""
    code = sub.code
    if code.file is not None:
        root = folder.resolve()
        path = (folder / code.file).resolve()
        if not path.is_relative_to(root):
            raise SubmissionError(f"{where}: code.file {code.file!r} leaves the submission's folder")
        if not path.is_file():
            raise SubmissionError(f"{where}: code.file {code.file!r} does not exist beside the submission")
        digest = _sha256(path)
        if digest != code.sha256:
            raise SubmissionError(f"{where}: code.sha256 does not match {code.file} (its sha256 is {digest})")
        if not _IDENT.fullmatch(sub.entry_point):
            raise SubmissionError(f"{where}: entry_point {sub.entry_point!r} must name the class in {code.file}")
        return MethodCode(None, path, sub.entry_point, path, digest)
    try:
        dist = metadata.distribution(code.package)
    except metadata.PackageNotFoundError:
        raise SubmissionError(f"{where}: code.package {code.package!r} is not installed "
                              f"(pip install '{code.package}=={code.version}')") from None
    if dist.version != code.version:
        raise SubmissionError(f"{where}: code.package {code.package!r} is installed at version {dist.version}, "
                              f"the submission names {code.version}")
    value = _entry_point(dist, sub.entry_point, code.package, where)
    module, _, attr = value.partition(":")
    if not attr:
        raise SubmissionError(f"{where}: entry point {sub.entry_point!r} is {value!r}, not 'module:Class'")
    source = module_file(module)
    if source is None:
        raise SubmissionError(f"{where}: cannot find the source file of module {module!r}")
    return MethodCode(module, None, attr, source, _sha256(source))


def _entry_point(dist: metadata.Distribution, name: str, package: str, where: str) -> str:
    eps = [ep for ep in dist.entry_points if ep.group == "evobench.baselines" and ep.name == name]
    if eps:
        return eps[0].value
    if dist.metadata["Name"] == "evobench":  # evobench's own baselines are built-in registry entries
        from evobench.registry import BASELINES, RegistryError

        try:
            return BASELINES.spec(name)
        except RegistryError as e:
            raise SubmissionError(f"{where}: entry_point: {e}") from None
    names = sorted(ep.name for ep in dist.entry_points if ep.group == "evobench.baselines")
    raise SubmissionError(f"{where}: package {package!r} has no entry point {name!r} in group "
                          f"evobench.baselines (it has: {', '.join(names) or 'none'})")
