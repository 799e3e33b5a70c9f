"""One registry type for tasks, baselines, merge ops and trackers.

Entries are objects, or lazy ``"module:attr"`` strings resolved on first ``get``. Installed packages
add entries through Python entry points (group ``evobench.<kind>``, e.g. ``evobench.baselines``), so a
pip-installed method appears without editing evobench.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """Unknown or conflicting registry name (message is one line, names the problem)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.group = entry_point_group or f"evobench.{kind.replace(' ', '_')}s"
        self._entries: dict[str, T | str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, obj: T | str | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj`` returns a decorator.

        Re-registering the same object is a no-op; a different object under a taken name is an error.
        """
        if obj is None:
            def deco(o: T) -> T:
                self.register(name, o)
                return o
            return deco
        if not name or not isinstance(name, str):
            raise RegistryError(f"{self.kind} name must be a non-empty string, got {name!r}")
        old = self._entries.get(name)
        if isinstance(old, str) and not isinstance(obj, str) and old == _spec_of(obj):
            old = None  # the lazy entry's module is being imported and registers the real object
        if old is not None and old is not obj and old != obj:
            raise RegistryError(f"{self.kind} {name!r} is already registered to {old!r}")
        self._entries[name] = obj
        return obj

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.group):
            self._entries.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name not in self._entries:
            raise RegistryError(self.unknown_message(name))
        obj = self._entries[name]
        if isinstance(obj, str):
            obj = _resolve(obj, f"{self.kind} {name!r}")
            self._entries[name] = obj
        return obj

    def spec(self, name: str) -> str:
        """The entry's ``"module:attr"`` without importing it (the object's own, once resolved)."""
        self._load_entry_points()
        if name not in self._entries:
            raise RegistryError(self.unknown_message(name))
        obj = self._entries[name]
        return obj if isinstance(obj, str) else _spec_of(obj)

    def unknown_message(self, name: str) -> str:
        names = self.names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(names) or '(none)'}"


def _spec_of(obj: object) -> str:
    return f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"


def _resolve(spec: str, what: str):
    module, _, attr = spec.partition(":")
    if not attr:
        raise RegistryError(f"{what}: lazy entry {spec!r} must look like 'module:attr'")
    try:
        obj = importlib.import_module(module)
    except ImportError as e:
        raise RegistryError(f"{what}: cannot import {module!r} ({e})") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as e:
            raise RegistryError(f"{what}: {module!r} has no attribute {attr!r}") from e
    return obj


# The project's registries. Built-in entries are lazy so `import evobench` stays light.
TASKS: Registry = Registry("task", "evobench.tasks")
BASELINES: Registry = Registry("baseline", "evobench.baselines")
MERGE_OPS: Registry = Registry("merge op", "evobench.merge_ops")
TRACKERS: Registry = Registry("tracker", "evobench.trackers")


_BUILTIN = {
    TASKS: {
        "digits-scratch": "evobench.tasks.digits:scratch",
        "digits-specialists": "evobench.tasks.digits:specialists",
        "digits-specialists-shared": "evobench.tasks.digits:specialists_shared",
        "digits-specialists-blocks": "evobench.tasks.digits:specialists_blocks",
        "ja-math-mini": "evobench.tasks.ja_math_mini:ja_math_mini",
        "ja-vlm-mini": "evobench.tasks.ja_vlm_mini:ja_vlm_mini",
        "mgsm-ja": "evobench.tasks.mgsm_ja:mgsm_ja",
        "jp-lmeh": "evobench.tasks.jp_lmeh.suite:jp_lmeh",
        "jp-lmeh-jcqa": "evobench.tasks.jp_lmeh.jcqa:jcqa",
        "jp-lmeh-jnli": "evobench.tasks.jp_lmeh.jnli:jnli",
        "jp-lmeh-marc-ja": "evobench.tasks.jp_lmeh.marc_ja:marc_ja",
        "jp-lmeh-jsquad": "evobench.tasks.jp_lmeh.jsquad:jsquad",
        "jp-lmeh-jaqket": "evobench.tasks.jp_lmeh.jaqket:jaqket",
        "jp-lmeh-xlsum": "evobench.tasks.jp_lmeh.xlsum:xlsum",
        "jp-lmeh-xwinograd": "evobench.tasks.jp_lmeh.xwinograd:xwinograd",
        "jp-lmeh-mgsm": "evobench.tasks.jp_lmeh.mgsm:mgsm",
        "jp-lmeh-jcola": "evobench.tasks.jp_lmeh.jcola:jcola",
        "ja-vg-vqa-500": "evobench.tasks.ja_vqa:ja_vg_vqa_500",
        "ja-vlm-bench-itw": "evobench.tasks.ja_vqa:ja_vlm_bench_itw",
        "image-prompt": "evobench.tasks.image_prompt:image_prompt",
        "webshop": "evobench.tasks.webshop.task:webshop",
        "mean-of": "evobench.tasks.mean_of:mean_of",
        "math-mini": "evobench.tasks.webshop_mini:math_mini",
        "webshop-mini": "evobench.tasks.webshop_mini:webshop_mini",
    },
    BASELINES: {
        "random-search": "evobench.baselines.random_search:RandomSearch",
        "cmaes-ps": "evobench.baselines.cmaes_ps:CMAESPS",
        "cmaes-dfs": "evobench.baselines.cmaes_dfs:CMAESDFS",
        "ps-dfs": "evobench.baselines.ps_dfs:PSDFS",
        "m2n2": "evobench.baselines.m2n2:M2N2",
        "m2n2-no-attraction": "evobench.baselines.m2n2:M2N2NoAttraction",
        "m2n2-no-split": "evobench.baselines.m2n2:M2N2NoSplit",
        "m2n2-no-crossover": "evobench.baselines.m2n2:M2N2NoCrossover",
        "m2n2-alpha0": "evobench.baselines.m2n2:M2N2Alpha0",
        "brute-force-slerp": "evobench.baselines.brute_force:BruteForceSlerp",
        "ga": "evobench.baselines.ga:GA",
        "map-elites": "evobench.baselines.map_elites:MapElites",
    },
    MERGE_OPS: {
        "linear": "evobench.merge.ops:linear",
        "task_arithmetic": "evobench.merge.ops:task_arithmetic",
        "ties": "evobench.merge.ops:ties",
        "dare": "evobench.merge.ops:dare",
        "dare_ties": "evobench.merge.ops:dare_ties",
        "slerp": "evobench.merge.slerp:slerp",
        "split_slerp": "evobench.merge.slerp:split_slerp",
        "layer_path": "evobench.merge.layer_path:layer_path",
    },
    TRACKERS: {
        "mlflow": "evobench.tracking:MLflowTracker",
        "none": "evobench.tracking:NullTracker",
    },
}
for _reg, _entries in _BUILTIN.items():
    for _name, _spec in _entries.items():
        _reg.register(_name, _spec)
