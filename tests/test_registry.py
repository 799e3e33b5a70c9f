"""Registry: registration, lazy entries, conflicts, did-you-mean errors, entry points, light import."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from evobench.registry import BASELINES, MERGE_OPS, TASKS, Registry, RegistryError


def _fn_a():
    return "a"


def _fn_b():
    return "b"


# --- register / get ---------------------------------------------------------------------------------

def test_register_and_get():
    r = Registry("widget")
    assert r.register("a", _fn_a) is _fn_a
    assert r.get("a") is _fn_a
    assert "a" in r and "b" not in r
    assert r.names() == ["a"]
    assert list(r) == ["a"]


def test_decorator_form_registers_and_returns_the_object():
    r = Registry("widget")

    @r.register("deco")
    def f():
        return 42

    assert r.get("deco") is f
    assert f() == 42  # the decorator returns the function itself, not a wrapper


def test_names_are_sorted():
    r = Registry("widget")
    for n in ("zeta", "alpha", "mid"):
        r.register(n, n.upper())
    assert r.names() == ["alpha", "mid", "zeta"]


def test_lazy_entry_is_resolved_on_get_and_cached():
    r = Registry("widget")
    r.register("dumps", "json:dumps")
    assert r._entries["dumps"] == "json:dumps"  # stays a string until asked for
    assert r.get("dumps") is json.dumps
    assert r._entries["dumps"] is json.dumps  # resolved once, then cached


def test_lazy_entry_with_dotted_attribute():
    r = Registry("widget")
    r.register("join", "os:path.join")
    import os

    assert r.get("join") is os.path.join


def test_lazy_entry_does_not_import_until_get():
    code = (
        "import sys\n"
        "from evobench.registry import Registry\n"
        "r = Registry('widget')\n"
        "r.register('x', 'xml.dom.minidom:parseString')\n"
        "assert 'xml.dom.minidom' not in sys.modules, 'imported at register time'\n"
        "r.names(); 'x' in r\n"
        "assert 'xml.dom.minidom' not in sys.modules, 'imported by names()'\n"
        "r.get('x')\n"
        "assert 'xml.dom.minidom' in sys.modules\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_reregistering_the_same_object_is_fine():
    r = Registry("widget")
    r.register("a", _fn_a)
    r.register("a", _fn_a)
    r.register("lazy", "json:dumps")
    r.register("lazy", "json:dumps")
    assert r.get("a") is _fn_a
    assert r.get("lazy") is json.dumps


def test_real_object_may_replace_its_own_lazy_entry():
    # the lazy entry's module registers the real object on import (e.g. the @merge_op decorator)
    r = Registry("widget")
    r.register("fa", f"{__name__}:_fn_a")
    r.register("fa", _fn_a)
    assert r.get("fa") is _fn_a


def test_different_object_under_taken_name_raises():
    r = Registry("widget")
    r.register("a", _fn_a)
    with pytest.raises(RegistryError, match="'a'") as ei:
        r.register("a", _fn_b)
    assert "already registered" in str(ei.value)
    assert r.get("a") is _fn_a  # unchanged


def test_different_object_over_lazy_entry_raises():
    r = Registry("widget")
    r.register("a", f"{__name__}:_fn_a")
    with pytest.raises(RegistryError, match="already registered"):
        r.register("a", _fn_b)
    with pytest.raises(RegistryError, match="already registered"):
        r.register("a", "json:dumps")


@pytest.mark.parametrize("bad", ["", None, 3])
def test_bad_name_raises(bad):
    r = Registry("widget")
    with pytest.raises(RegistryError, match="non-empty string"):
        r.register(bad, _fn_a)


def test_registry_error_is_a_keyerror_with_a_plain_message():
    r = Registry("widget")
    with pytest.raises(KeyError) as ei:
        r.get("nope")
    msg = str(ei.value)
    assert not msg.startswith(("'", '"'))  # not KeyError's repr-quoting
    assert "\n" not in msg


# --- unknown names ------------------------------------------------------------------------------------

def test_unknown_name_did_you_mean_and_available():
    r = Registry("widget")
    for n in ("random-search", "cmaes-ps", "m2n2"):
        r.register(n, n)
    with pytest.raises(RegistryError) as ei:
        r.get("random-serch")
    msg = str(ei.value)
    assert "unknown widget 'random-serch'" in msg
    assert "Did you mean 'random-search'?" in msg
    assert "Available: cmaes-ps, m2n2, random-search" in msg


def test_unknown_name_without_close_match_has_no_hint():
    r = Registry("widget")
    r.register("alpha", 1)
    msg = str(pytest.raises(RegistryError, r.get, "zzzzzzzz").value)
    assert "Did you mean" not in msg
    assert "Available: alpha" in msg


def test_unknown_name_on_empty_registry():
    msg = Registry("widget").unknown_message("x")
    assert "Available: (none)" in msg


# --- bad lazy specs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("no_colon_here", "module:attr"),
        ("evobench_no_such_module_xyz:thing", "evobench_no_such_module_xyz"),
        ("json:no_such_attribute_xyz", "no_such_attribute_xyz"),
        ("os:path.no_such_attribute_xyz", "path.no_such_attribute_xyz"),
    ],
)
def test_bad_lazy_spec_raises_registry_error_naming_it(spec, fragment):
    r = Registry("widget")
    r.register("broken", spec)
    with pytest.raises(RegistryError) as ei:
        r.get("broken")
    msg = str(ei.value)
    assert "widget 'broken'" in msg
    assert fragment in msg


# --- entry points ------------------------------------------------------------------------------------

def _fake_entry_points(group_wanted: str, eps):
    def fake(*args, group=None, **kwargs):
        return list(eps) if group == group_wanted else []

    return fake


def test_entry_points_appear_and_resolve(monkeypatch):
    ep = importlib.metadata.EntryPoint(name="plugin-method", value="json:loads", group="evobench.baselines")
    monkeypatch.setattr(importlib.metadata, "entry_points", _fake_entry_points("evobench.baselines", [ep]))
    r = Registry("baseline", "evobench.baselines")
    r.register("builtin", _fn_a)
    assert "plugin-method" in r.names()
    assert "builtin" in r.names()
    assert "plugin-method" in r
    assert r.get("plugin-method") is json.loads


def test_entry_points_default_group_and_other_groups(monkeypatch):
    ep = importlib.metadata.EntryPoint(name="plugin-method", value="json:loads", group="evobench.baselines")
    monkeypatch.setattr(importlib.metadata, "entry_points", _fake_entry_points("evobench.baselines", [ep]))
    assert Registry("baseline").group == "evobench.baselines"
    assert "plugin-method" in Registry("baseline").names()  # default group from the kind
    assert "plugin-method" not in Registry("task", "evobench.tasks").names()


def test_entry_point_name_in_did_you_mean(monkeypatch):
    ep = importlib.metadata.EntryPoint(name="plugin-method", value="json:loads", group="evobench.baselines")
    monkeypatch.setattr(importlib.metadata, "entry_points", _fake_entry_points("evobench.baselines", [ep]))
    r = Registry("baseline", "evobench.baselines")
    msg = str(pytest.raises(RegistryError, r.get, "plugin-methd").value)
    assert "Did you mean 'plugin-method'?" in msg


def test_broken_entry_point_raises_registry_error(monkeypatch):
    ep = importlib.metadata.EntryPoint(name="bad-plugin", value="evobench_no_such_pkg_xyz:X",
                                       group="evobench.baselines")
    monkeypatch.setattr(importlib.metadata, "entry_points", _fake_entry_points("evobench.baselines", [ep]))
    r = Registry("baseline", "evobench.baselines")
    with pytest.raises(RegistryError, match="evobench_no_such_pkg_xyz"):
        r.get("bad-plugin")


# --- the built-in registries -------------------------------------------------------------------------

@pytest.mark.parametrize("name", BASELINES.names())
def test_builtin_baseline_resolves(name):
    from evobench.baseline import Baseline

    cls = BASELINES.get(name)
    assert isinstance(cls, type) and issubclass(cls, Baseline)
    assert cls.name == name
    assert cls.spaces, f"{name} declares no spaces"


@pytest.mark.parametrize("name", TASKS.names())
def test_builtin_task_resolves(name):
    assert callable(TASKS.get(name))


@pytest.mark.parametrize("name", MERGE_OPS.names())
def test_builtin_merge_op_resolves(name):
    op = MERGE_OPS.get(name)
    assert callable(op)
    assert op.op_name == name
    assert isinstance(op.knobs, tuple) and op.knobs


def test_builtin_names_present():
    assert {"digits-scratch", "digits-specialists", "digits-specialists-blocks"} <= set(TASKS.names())
    assert {"random-search", "cmaes-ps", "cmaes-dfs", "ps-dfs", "m2n2", "ga", "map-elites",
            "brute-force-slerp"} <= set(BASELINES.names())
    assert {"linear", "task_arithmetic", "ties", "dare", "dare_ties", "slerp", "split_slerp",
            "layer_path"} <= set(MERGE_OPS.names())


def test_importing_evobench_is_light():
    code = (
        "import sys, evobench, evobench.registry\n"
        "print(','.join(m for m in ('torch', 'mlflow', 'pymoo') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"heavy modules imported: {res.stdout.strip()}"
