"""Run configuration: frozen pydantic models loaded from YAML, presets and CLI flags.

Every validation error becomes a one-line :class:`ConfigError` that names the field.
"""

from __future__ import annotations

import re
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


def call_factory(factory, options: dict[str, Any], what: str, detail: str = "") -> Any:
    """``factory(**options)``; a missing optional package is one line ``{what} needs ...`` and a bad
    option (TypeError/ValueError) one line ``{what}{detail}: {message}``, both :class:`ConfigError`."""
    from evobench.errors import missing_package

    try:
        return factory(**options)
    except ModuleNotFoundError as e:
        raise ConfigError(f"{what} {missing_package(e)}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}{detail}: {' '.join(str(e).split())}") from None


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


MAX_SEED = 2**63  # seeds are 0 <= s < 2**63 (numpy and torch generators take them as they are)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=,@-]{0,119}")


def parse_seeds(v: Any) -> list[int]:
    """Seeds from a YAML value or a CLI string: ``[0, 1]``, ``7``, ``"0,1,2"``, ``"42-46"`` (inclusive)
    or a mix such as ``"0,5-7"``. Every seed is an integer with 0 <= s < 2**63; ``"5-3"`` is an error."""
    items = [v] if isinstance(v, int | str) and not isinstance(v, bool) else v
    if not isinstance(items, list | tuple):
        raise ValueError(f"seeds must be a list of integers or a string like '0,1,2' or '42-46', got {v!r}")
    out: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ValueError(f"seed {item!r} is not an integer")
        parts = [item] if isinstance(item, int) else [s.strip() for s in item.split(",")]
        for part in parts:
            if isinstance(part, int):
                out.append(part)
                continue
            if not part:
                if isinstance(item, str) and item.strip() and "," in item:
                    continue  # "0,1," : a trailing comma
                raise ValueError(f"seeds: empty entry in {v!r}")
            lo, sep, hi = part.partition("-") if not part.startswith("-") else (part, "", "")
            try:
                lo_i, hi_i = (int(lo), int(hi)) if sep else (int(part), int(part))
            except ValueError:
                raise ValueError(f"seeds must look like '0,1,2' or '42-46', got {part!r}") from None
            if lo_i > hi_i:
                raise ValueError(f"seed range {part!r} is empty (its start is above its end)")
            if hi_i - lo_i >= 100_000:
                raise ValueError(f"seed range {part!r} holds more than 100,000 seeds")
            out += list(range(lo_i, hi_i + 1))
    bad = [s for s in out if not 0 <= s < MAX_SEED]
    if bad:
        raise ValueError(f"seed {bad[0]} is out of range: seeds must satisfy 0 <= seed < 2**63")
    if not out:
        raise ValueError("give at least one seed")
    if len(set(out)) != len(out):
        raise ValueError("seeds must be distinct")
    return out


def _spec_list(v: Any, key: str) -> Any:
    if isinstance(v, str):
        v = [s.strip() for s in v.split(",") if s.strip()]
    if isinstance(v, list):
        return [{"name": x} if isinstance(x, str) else x for x in v]
    return v


class RunConfig(_Frozen):
    """A head-to-head comparison: every baseline on every task, same budget, same seeds."""

    name: str = "comparison"  # results folder and MLflow parent run; build_config names it after the tasks
    tasks: list[TaskSpec]
    # scored only on each run's recommended model and on the sources, test split (evobench.report_tasks)
    report_tasks: list[TaskSpec] = Field(default_factory=list)
    baselines: list[BaselineSpec] | None = None  # None = every registered baseline that fits the task
    budget: int = Field(1000, gt=0, strict=True)  # strict: YAML `yes` is not a budget
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    device: str = "auto"  # cpu | cuda | cuda:N | auto (cuda when present); given to task factories that take it
    save_best_model: bool = Field(True, strict=True)  # best_model.safetensors per run (recipe spaces too)
    export_best: bool = Field(False, strict=True)  # also runs/<run>/checkpoint/: weights, config, tokenizer, hashes
    save_search_scores: bool = Field(False, strict=True)  # search_scores.npy per run: every candidate's scores
    tracking_uri: str | None = None  # None = sqlite:///./mlruns.db
    experiment: str = "evobench"
    out: str = "evobench-results"
    spaces: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per space kind: constructor options
    threads: int | None = Field(None, gt=0, strict=True)  # torch intra-op threads (None = torch's default)

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v: Any) -> Any:
        return _spec_list(v, "tasks")

    @field_validator("report_tasks", mode="before")
    @classmethod
    def _report_tasks(cls, v: Any) -> Any:
        return _spec_list(v, "report_tasks")

    @field_validator("report_tasks")
    @classmethod
    def _distinct_reports(cls, v: list) -> list:
        names = [t.name for t in v]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice is not None:
            raise ValueError(f"{twice!r} is listed twice")
        return v

    @field_validator("baselines", mode="before")
    @classmethod
    def _baselines(cls, v: Any) -> Any:
        if v in ("all", ["all"]):
            return None
        return _spec_list(v, "baselines")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> Any:
        return parse_seeds(v)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", v):
            raise ValueError(f"device must be cpu, cuda, cuda:N or auto, got {v!r}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.fullmatch(v):
            raise ValueError(f"{v!r} is not usable as a folder name: use letters, digits and . _ + = , @ - "
                             "(no path separators, no leading dot, at most 120 characters)")
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
    """Preset, then config file, then non-None overrides (CLI flags), validated once.

    Without a config file the ``default`` preset applies. The comparison's name is, in order: the
    ``name`` override, the config file's ``name``, the preset's name when the preset's tasks are run
    unchanged, else the tasks' names joined by ``+`` (so a preset's name never labels other tasks).
    """
    data: dict[str, Any] = load_preset(preset or "default") if preset or not config_file else {}
    preset_tasks = data.get("tasks")
    file_data = load_yaml(config_file) if config_file else {}
    data.update(file_data)
    if isinstance(overrides.get("baselines"), str) and isinstance(data.get("baselines"), list):
        overrides = {**overrides, "baselines": _pick_baselines(overrides["baselines"], data["baselines"])}
    data.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("name") is None and "name" not in file_data and data.get("tasks") != preset_tasks:
        data.pop("name", None)
        data["name"] = _tasks_name(data.get("tasks"))
    return validate(data)


def _pick_baselines(flag: str, entries: list) -> list | str:
    """``--baselines a,b`` over a preset's or file's list: each name takes the entries it names there
    (by label, else every entry of that baseline), with their configs; a name not there runs with
    its defaults. ``all`` stays ``all``."""
    if flag.strip() == "all":
        return flag
    picked: list = []
    for name in (n.strip() for n in flag.split(",")):
        if not name:
            continue
        by_label = [e for e in entries if isinstance(e, dict) and e.get("label") == name]
        by_name = [e for e in entries if (e.get("name") if isinstance(e, dict) else e) == name
                   and not (isinstance(e, dict) and e.get("label"))]
        picked += by_label or by_name or [name]
    return picked


def _tasks_name(tasks: Any) -> str:
    """``a+b+c`` from the tasks setting (a list of names/mappings or a comma string)."""
    items = _spec_list(tasks, "tasks") if tasks is not None else []
    names = [str(x.get("name", "")) if isinstance(x, dict) else str(x) for x in items] if isinstance(items, list) else []
    names = [n for n in names if n]
    if not names:
        return "comparison"
    text = "+".join(names)
    return text if len(text) <= 100 else f"{names[0]}+{len(names) - 1}-more"
