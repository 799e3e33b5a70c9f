"""The cache key of models trained in code (the embedded mini suites) and where they are kept."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from evobench.trained_cache import cache_root, recipe_key


@dataclass(frozen=True)
class Recipe:
    steps: int = 10
    lr: float = 1.0
    layers: tuple[int, ...] = (0, 1)
    frozen: bool = True


def test_the_key_hashes_the_documented_blob():
    want = hashlib.sha256(json.dumps({"recipe": {"steps": 10, "lr": 1.0, "layers": [0, 1], "frozen": True},
                                      "data": "3", "torch": "2.13.0"}, sort_keys=True).encode()).hexdigest()[:16]
    assert recipe_key(Recipe(), data="3", torch="2.13.0") == want


def test_a_float_field_is_keyed_by_value_not_spelling():
    assert recipe_key(Recipe(lr=1), data="3") == recipe_key(Recipe(lr=1.0), data="3")
    assert recipe_key(Recipe(lr=2), data="3") != recipe_key(Recipe(lr=1.0), data="3")


def test_any_change_misses():
    base = recipe_key(Recipe(), data="3", torch="2.13.0")
    assert recipe_key(Recipe(steps=11), data="3", torch="2.13.0") != base
    assert recipe_key(Recipe(layers=(0, 2)), data="3", torch="2.13.0") != base
    assert recipe_key(Recipe(frozen=False), data="3", torch="2.13.0") != base
    assert recipe_key(Recipe(), data="4", torch="2.13.0") != base
    assert recipe_key(Recipe(), data="3", torch="2.14.1") != base


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EVOBENCH_CACHE", str(tmp_path))
    assert cache_root("ja-math-mini") == tmp_path / "ja-math-mini"
    monkeypatch.delenv("EVOBENCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root("x") == tmp_path / "home" / ".cache" / "evobench" / "x"
