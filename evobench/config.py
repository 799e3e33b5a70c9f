"""Run configuration: frozen pydantic models loaded from YAML, presets and CLI flags.

Every validation error becomes a one-line :class:`ConfigError` that names the field.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from evobench.registry import BASELINES, TASKS, RegistryError


class ConfigError(ValueError):
    """Invalid configuration (one line, names the field)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TaskSpec(_Frozen):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in TASKS:
            raise ValueError(TASKS.unknown_message(v))
        return v


class BaselineSpec(_Frozen):
    name: str
    config: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None  # shown in tables; defaults to the name

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in BASELINES:
            raise ValueError(BASELINES.unknown_message(v))
        return v

    @property
    def display(self) -> str:
        return self.label or self.name


def _spec_list(v: Any, key: str) -> Any:
    if isinstance(v, str):
        v = [s.strip() for s in v.split(",") if s.strip()]
    if isinstance(v, list):
        return [{"name": x} if isinstance(x, str) else x for x in v]
    return v


class RunConfig(_Frozen):
    """A head-to-head comparison: every baseline on every task, same budget, same seeds."""

    name: str = "comparison"
    tasks: list[TaskSpec]
    baselines: list[BaselineSpec] | None = None  # None = every registered baseline that fits the task
    budget: int = Field(1000, gt=0, strict=True)  # strict: YAML `yes` is not a budget
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    tracking_uri: str | None = None  # None = sqlite:///./mlruns.db
    experiment: str = "evobench"
    out: str = "evobench-results"
    spaces: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per space kind: constructor options
    threads: int | None = Field(None, gt=0, strict=True)  # torch intra-op threads (None = torch's default)

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v: Any) -> Any:
        return _spec_list(v, "tasks")

    @field_validator("baselines", mode="before")
    @classmethod
    def _baselines(cls, v: Any) -> Any:
        if v in ("all", ["all"]):
            return None
        return _spec_list(v, "baselines")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [int(s) for s in v.split(",") if s.strip()]
        return v

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("seeds must be distinct")
        return v

    @field_validator("tasks")
    @classmethod
    def _nonempty(cls, v: list) -> list:
        if not v:
            raise ValueError("at least one task is needed")
        return v

    @field_validator("baselines")
    @classmethod
    def _some_baseline(cls, v: list | None) -> list | None:
        if v is not None and not v:
            raise ValueError("at least one baseline is needed (or 'all')")
        return v

    @model_validator(mode="after")
    def _baseline_configs(self) -> RunConfig:
        for i, b in enumerate(self.baselines or []):
            cls = BASELINES.get(b.name)
            try:
                cls.Config.model_validate(b.config)
            except ValidationError as e:
                raise ValueError(f"baselines[{i}] ({b.name}).config: {_first_error(e)}") from None
        return self


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def validate(data: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"invalid config: {_first_error(e)}") from None
    except RegistryError as e:
        raise ConfigError(str(e)) from None


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("evobench.presets").iterdir() if p.name.endswith(".yaml"))


def preset_description(name: str) -> str:
    """The first comment line of a preset file."""
    text = (resources.files("evobench.presets") / f"{name}.yaml").read_text(encoding="utf-8")
    return next((ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")), "")


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} is not a file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of settings")
    return data


def load_preset(name: str) -> dict[str, Any]:
    names = preset_names()
    if name not in names:
        import difflib
        close = difflib.get_close_matches(name, names, n=2)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"unknown preset {name!r}.{hint} Available: {', '.join(names)}")
    return load_yaml(Path(str(resources.files("evobench.presets") / f"{name}.yaml")))


def build_config(preset: str | None = None, config_file: str | None = None, **overrides: Any) -> RunConfig:
    """Preset, then config file, then non-None overrides (CLI flags), validated once."""
    data: dict[str, Any] = load_preset(preset or "default") if preset or not config_file else {}
    if config_file:
        data.update(load_yaml(config_file))
    data.update({k: v for k, v in overrides.items() if v is not None})
    return validate(data)
