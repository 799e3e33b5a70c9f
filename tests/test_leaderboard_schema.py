"""Submission and protocol files: good ones load, every bad one is one line naming the file, the line
and the field (hand-written cases and hypothesis-generated ones); the method's wire refuses garbage."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evobench.leaderboard import wire
from evobench.leaderboard.protocol import load_protocol, track_hash
from evobench.leaderboard.submission import SubmissionError, load_submission
from evobench.leaderboard.yamlsafe import MAX_BYTES, YamlError

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"name": "my-method", "version": "1.0", "authors": ["Ada"], "license": "MIT",
        "code": {"package": "my-pkg", "version": "0.3.1"}, "entry_point": "my-method",
        "hyperparameters": {"popsize": 8}, "tracks": ["digits"]}


def _write(tmp_path: Path, data) -> Path:
    p = tmp_path / "sub.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def test_a_good_submission_loads(tmp_path):
    s = load_submission(_write(tmp_path, GOOD))
    assert s.name == "my-method" and s.code.package == "my-pkg" and s.hyperparameters == {"popsize": 8}


@pytest.mark.parametrize("change, field", [
    ({"name": "My Method"}, "name"),
    ({"name": "../etc"}, "name"),
    ({"name": ""}, "name"),
    ({"authors": []}, "authors"),
    ({"authors": [" "]}, "authors"),
    ({"license": ""}, "license"),
    ({"code": {"package": "p"}}, "code"),
    ({"code": {"package": "p", "version": "1", "file": "a.py", "sha256": "0" * 63 + "a"}}, "code"),
    ({"code": {"file": "a.py"}}, "code"),
    ({"code": {"file": "a.py", "sha256": "XYZ"}}, "code"),
    ({"code": {"file": "a.txt", "sha256": "0" * 63 + "a"}}, "code"),
    ({"code": {"file": "sub\\..\\a.py", "sha256": "0" * 63 + "a"}}, "code"),
    ({"entry_point": ""}, "entry_point"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "http://example.org"}, "url"),
    ({"tracks": []}, "tracks"),
    ({"tracks": ["digits", "digits"]}, "tracks"),
    ({"hyperparameters": [1, 2]}, "hyperparameters"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_fields_name_the_field_and_its_line(tmp_path, change, field):
    data = {**GOOD, **change}
    p = _write(tmp_path, data)
    with pytest.raises(SubmissionError) as e:
        load_submission(p)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{p}:")
    line = int(msg.split(":")[1])
    key_line = next(i + 1 for i, t in enumerate(p.read_text().splitlines()) if t.startswith(field + ":"))
    assert line >= key_line and f": {field}" in msg


def test_missing_field_is_named(tmp_path):
    p = _write(tmp_path, {k: v for k, v in GOOD.items() if k != "license"})
    with pytest.raises(SubmissionError, match=r"sub.yaml:1: license: Field required"):
        load_submission(p)


@pytest.mark.parametrize("text, message", [
    ("!!python/object/apply:os.system ['echo hi']\n", "could not determine a constructor"),
    ("name: !!python/name:os.system\n", "could not determine a constructor"),
    ("a: &x [1, 2]\nb: *x\n", "anchors and aliases are not allowed"),
    ("name: [unclosed\n", "not valid YAML"),
    ("- a\n- b\n", "is a YAML mapping, not list"),
    ("", "is a YAML mapping, not NoneType"),
    ("when: 2026-01-01\n" + yaml.safe_dump({**GOOD, "hyperparameters": {"d": "x"}}).replace("d: x", "d: 2026-01-01"),
     "hyper-parameters must be plain JSON values"),
])
def test_unsafe_or_broken_yaml_is_refused(tmp_path, text, message):
    with pytest.raises(SubmissionError, match=message):
        load_submission(_write(tmp_path, text))


def test_an_oversized_or_binary_file_is_refused(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("a: " + "x" * MAX_BYTES)
    with pytest.raises(SubmissionError, match="more than"):
        load_submission(p)
    p.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(SubmissionError, match="not UTF-8"):
        load_submission(p)


_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
_value = st.recursive(_scalar, lambda c: st.one_of(st.lists(c, max_size=3),
                                                   st.dictionaries(st.text(max_size=8), c, max_size=3)), max_leaves=8)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from([*GOOD, "extra"]), _value, max_size=9), st.booleans())
def test_generated_submissions_load_or_fail_cleanly(tmp_path, fields, merge):
    data = {**GOOD, **fields} if merge else fields
    p = _write(tmp_path, data)
    try:
        s = load_submission(p)
    except SubmissionError as e:
        assert "\n" not in str(e) and str(e).startswith(str(p))
    else:
        assert s.name == data["name"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_generated_yaml_text_loads_or_fails_cleanly(tmp_path, text):
    p = tmp_path / "t.yaml"
    p.write_text(text, encoding="utf-8")
    try:
        load_submission(p)
    except SubmissionError as e:
        assert "\n" not in str(e)


def test_the_committed_protocol_and_submissions_load():
    protocol = load_protocol(ROOT / "leaderboard" / "protocol.yaml")
    assert set(protocol.tracks) == {"digits", "ja-math-mini"}
    assert protocol.tracks["digits"].task.name == "digits-specialists"
    assert len({track_hash(protocol, t) for t in protocol.tracks}) == 2
    names = set()
    for p in sorted((ROOT / "leaderboard" / "submissions").glob("*.yaml")):
        s = load_submission(p)
        assert p.stem == s.name and set(s.tracks) <= set(protocol.tracks)
        names.add(s.name)
    assert {"m2n2", "cmaes-ps", "random-search"} <= names


@pytest.mark.parametrize("text, message", [
    ("version: 0\ntracks: {t: {task: {name: digits-specialists}, budget: 5, seeds: [0]}}\n", "version"),
    ("version: 1\ntracks: {t: {task: {name: x}, budget: 0, seeds: [0]}}\n", "budget"),
    ("version: 1\ntracks: {t: {task: {name: x}, budget: 5, seeds: '3-1'}}\n", "seeds"),
    ("version: 1\ntracks: {t: {task: {name: x}, budget: 5, seeds: [0], spaces: [warp]}}\n", "unknown space kind"),
    ("version: 1\nalpha: 2\ntracks: {t: {task: {name: x}, budget: 5, seeds: [0]}}\n", "alpha"),
    ("version: 1\ntracks: {}\n", "tracks"),
])
def test_bad_protocols_name_the_field(tmp_path, text, message):
    p = tmp_path / "protocol.yaml"
    p.write_text(text)
    with pytest.raises(YamlError, match=message):
        load_protocol(p)


def test_the_protocol_hash_changes_with_any_track_setting(tmp_path):
    p = tmp_path / "protocol.yaml"
    base = "version: 1\ntracks: {t: {task: {name: x}, budget: 5, seeds: [0, 1]}}\n"
    p.write_text(base)
    h = track_hash(load_protocol(p), "t")
    for changed in (base.replace("budget: 5", "budget: 6"), base.replace("[0, 1]", "[0, 2]"),
                    base.replace("version: 1", "version: 2"), "alpha: 0.1\n" + base):
        p.write_text(changed)
        assert track_hash(load_protocol(p), "t") != h


# ---- the wire between evobench and a method's process ------------------------------------------------
def test_messages_round_trip_arrays_exactly():
    r, w = os.pipe()
    x = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    wire.send(w, {"op": "ask", "k": 3}, {"x": x, "none": None})
    header, arrays = wire.recv(r)
    assert header == {"op": "ask", "k": 3} and set(arrays) == {"x"}
    assert arrays["x"].dtype == np.float32 and np.array_equal(arrays["x"], x)


@pytest.mark.parametrize("payload, message", [
    (struct.pack(">I", 5) + b"nope!", "not strict JSON"),
    (struct.pack(">I", 3) + b"NaN", "not strict JSON"),
    (struct.pack(">I", 2**31), "message header of"),
    (struct.pack(">I", 2) + b"[]", "not an object"),
])
def test_garbage_messages_are_refused(payload, message):
    r, w = os.pipe()
    os.write(w, payload)
    os.close(w)
    with pytest.raises(wire.WireError, match=message):
        wire.recv(r)


def test_a_pickled_array_is_refused():
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    head = b'{"arrays": ["x"]}'
    r, w = os.pipe()
    os.write(w, struct.pack(">I", len(head)) + head + struct.pack(">Q", len(buf.getvalue())) + buf.getvalue())
    os.close(w)
    with pytest.raises(wire.WireError, match="not a plain .npy array"):
        wire.recv(r)


def test_a_silent_peer_times_out():
    import time

    r, _w = os.pipe()
    with pytest.raises(wire.WireTimeout):
        wire.recv(r, deadline=time.monotonic() + 0.2)
