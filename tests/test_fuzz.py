"""Bad input everywhere, generated: run configs (as data and as YAML files), seeds, command-line flags,
results files given to `evobench report`, dataset files (MGSM TSV, JGLUE JSON lines, JSQuAD) and
journal chunks. Nothing but clean one-line validation errors may come out. About 13,000 cases per
run (hypothesis, derandomized: the same cases on every machine)."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evobench.config import ConfigError, RunConfig, build_config, parse_seeds, validate

FUZZ = settings(max_examples=1500, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
KEYS = ["name", "tasks", "report_tasks", "baselines", "budget", "seeds", "device", "save_best_model",
        "save_search_scores", "tracking_uri", "experiment", "out", "spaces", "threads", "typo"]
plausible = {
    "tasks": st.one_of(st.just(["digits-specialists"]), st.lists(st.sampled_from(
        ["digits-specialists", "digits-scratch", "nope", "", {"name": "digits-scratch", "options": {"x": 1}}]),
        max_size=3), json_values),
    "baselines": st.one_of(st.just(["m2n2"]), st.lists(st.one_of(st.sampled_from(["m2n2", "cmaes-ps", "all", "x"]),
                                                                  st.fixed_dictionaries({"name": st.text(max_size=6)},
                                                                                        optional={"config": json_values})),
                                                        max_size=3), json_values),
    "budget": st.one_of(st.integers(-5, 10**6), json_values),
    "seeds": st.one_of(st.text(alphabet="0123456789,- ", max_size=12), st.lists(st.integers(-3, 2**64), max_size=4),
                       json_values),
    "name": st.one_of(st.text(max_size=20), json_values),
}


def _one_line(e: BaseException) -> None:
    text = str(e)
    assert text and "\n" not in text, f"not one line: {text!r}"


@st.composite
def run_configs(draw):
    out = {}
    for key in draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=8)):
        out[key] = draw(plausible.get(key, json_values))
    return out


@FUZZ
@given(run_configs())
def test_run_configs_validate_or_say_why_in_one_line(data):
    try:
        cfg = validate(data)
    except ConfigError as e:
        _one_line(e)
        return
    assert isinstance(cfg, RunConfig) and cfg.budget > 0 and cfg.seeds and all(0 <= s < 2**63 for s in cfg.seeds)


@FUZZ
@given(st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                 st.sampled_from(["!!python/object/apply:os.system ['echo hacked']\n", "tasks: [a\n", "- 1\n- 2\n",
                                  "budget: !!float 1e3\n", "seeds: &a [1]\nx: *a\n", "\x00", "tasks: !!binary aGk=\n"])))
def test_config_files_load_or_say_why(text):
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "c.yaml"
        f.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            build_config(config_file=str(f))
        except ConfigError as e:
            _one_line(e)


@settings(FUZZ, max_examples=2000)
@given(st.one_of(st.text(alphabet="0123456789,- x", max_size=16), st.integers(-2**65, 2**65),
                 st.lists(st.one_of(st.integers(-5, 2**64), st.text(max_size=5), st.booleans(), st.none()), max_size=5),
                 json_values))
def test_seeds_parse_or_say_why(value):
    try:
        seeds = parse_seeds(value)
    except ValueError as e:
        _one_line(e)
        return
    assert seeds and len(set(seeds)) == len(seeds) and all(0 <= s < 2**63 for s in seeds)


FLAGS = ["--preset", "--config", "--tasks", "--baselines", "--budget", "--seeds", "--out", "--name", "--threads",
         "--device", "--report-tasks", "--tracker", "--experiment", "--cache", "--executor", "--workers", "--resume",
         "--no-tracking", "--no-progress", "--bogus"]
VALUES = ["default", "digits-specialists", "m2n2,cmaes-ps", "all", "-1", "0", "3", "1e3", "0,5-3", "42-46", "",
          "cpu", "cuda:7", "ray", "none", "nope", "a/b", "/proc/nonexistent/x", "off", "abc"]


@settings(FUZZ, max_examples=1500)
@given(st.lists(st.one_of(st.sampled_from(FLAGS), st.sampled_from(VALUES)), max_size=8))
def test_command_line_flags_exit_0_or_2_with_one_line(argv):
    import contextlib
    import io

    from evobench import cli

    calls = []

    def fake_run(cfg, **kw):  # never run a comparison: only what happens before it is fuzzed
        calls.append(cfg)
        raise SystemExit(0)

    import os

    import evobench.compare as compare

    err = io.StringIO()
    saved, here = compare.run_comparison, os.getcwd()
    compare.run_comparison = fake_run
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # a flag value taken as a folder (--cache all) lands here
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    code = cli.main(["run", "--no-tracking", *argv])
                except SystemExit as e:
                    code = e.code
        finally:
            compare.run_comparison = saved
            os.chdir(here)
    assert code in (0, 2), (argv, code, err.getvalue())
    if code == 2:
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        assert len(lines) == 1 and "error" in lines[0], (argv, err.getvalue())


# ---- results files given to `evobench report` ----------------------------------------------------------

def _valid_results() -> dict:
    return {"config": {"tasks": ["digits-specialists"], "budget": 5, "seeds": [0]}, "environment": {},
            "runs": [{"task": "digits-specialists", "baseline": "m2n2", "baseline_name": "m2n2", "seed": 0,
                      "space": "params", "budget": 5, "evaluations": 5, "test_score": 0.5}], "sources": {}}


@st.composite
def broken_results(draw):
    data = _valid_results()
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "config", "run"]))
        target = {"top": data, "config": data.get("config"),
                  "run": (data.get("runs") or [None])[0] if isinstance(data.get("runs"), list) else None}[where]
        if not isinstance(target, dict):
            continue  # already replaced by something else
        key = draw(st.sampled_from(sorted(target) + ["extra"]))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return data


@settings(FUZZ, max_examples=1500)
@given(st.one_of(broken_results(), json_values))
def test_results_files_for_report_load_or_say_why(data):
    from evobench.report import load_comparison

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "results.json"
        f.write_text(json.dumps(data, allow_nan=True))
        try:
            load_comparison([str(f)])
        except ConfigError as e:
            _one_line(e)


# ---- dataset files -----------------------------------------------------------------------------------

cells = st.text(alphabet=string.printable + "日本語１２", max_size=10)


@settings(FUZZ, max_examples=1500)
@given(st.lists(st.lists(cells, min_size=0, max_size=4), max_size=5))
def test_mgsm_tsv_rows_read_or_say_which_row(rows):
    from evobench.lmdata.mgsm import read_mgsm_tsv
    from evobench.lmdata.source import DataFormatError

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "mgsm_ja.tsv"
        f.write_text("\n".join("\t".join(r) for r in rows), encoding="utf-8")
        try:
            out = read_mgsm_tsv(f)
        except DataFormatError as e:
            _one_line(e)
            return
        assert all(isinstance(r["question"], str) for r in out)


jcqa_rows = st.fixed_dictionaries({}, optional={
    "q_id": st.one_of(st.integers(), cells), "question": st.one_of(cells, json_values),
    **{f"choice{i}": st.one_of(cells, json_values) for i in range(5)}, "label": st.one_of(st.integers(-1, 6), json_values)})


@settings(FUZZ, max_examples=1500)
@given(st.lists(st.one_of(jcqa_rows, json_values), min_size=1, max_size=4), st.booleans())
def test_jglue_json_lines_read_or_say_which_row(rows, broken_line):
    from evobench.lmdata.jglue import load_jcommonsenseqa
    from evobench.lmdata.source import LMDataError

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "valid-v1.3.json"
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        if broken_line:
            lines.insert(1, "{not json")
        f.write_text("\n".join(lines), encoding="utf-8")
        try:
            out = load_jcommonsenseqa(f)
        except LMDataError as e:
            _one_line(e)
            return
        assert len(out) == len(rows) and all(len(r["choices"]) == 5 for r in out)


@settings(FUZZ, max_examples=1000)
@given(st.one_of(json_values, st.fixed_dictionaries({"data": st.lists(st.fixed_dictionaries({}, optional={
    "title": cells, "paragraphs": st.lists(st.fixed_dictionaries({}, optional={
        "context": cells, "qas": st.lists(st.fixed_dictionaries({}, optional={
            "id": cells, "question": cells, "answers": json_values}), max_size=2)}), max_size=2)}), max_size=2)})))
def test_jsquad_files_read_or_say_where(data):
    from evobench.lmdata.jglue import read_jsquad
    from evobench.lmdata.source import LMDataError

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "valid-v1.1.json"
        f.write_text(json.dumps(data, ensure_ascii=False, allow_nan=True), encoding="utf-8")
        try:
            read_jsquad(f)
        except LMDataError as e:
            _one_line(e)


# ---- journal chunks --------------------------------------------------------------------------------------

@settings(FUZZ, max_examples=1500)
@given(st.binary(max_size=200))
def test_journal_payloads_decode_or_raise_value_error(payload):
    from evobench.journal import decode

    try:
        decode(payload)
    except ValueError as e:
        _one_line(e)


def test_the_fuzz_budget_is_at_least_ten_thousand_cases():
    per_test = {test_run_configs_validate_or_say_why_in_one_line: 1500, test_config_files_load_or_say_why: 1500,
                test_seeds_parse_or_say_why: 2000, test_command_line_flags_exit_0_or_2_with_one_line: 1500,
                test_results_files_for_report_load_or_say_why: 1500, test_mgsm_tsv_rows_read_or_say_which_row: 1500,
                test_jglue_json_lines_read_or_say_which_row: 1500, test_jsquad_files_read_or_say_where: 1000,
                test_journal_payloads_decode_or_raise_value_error: 1500}
    for test, n in per_test.items():
        assert test.hypothesis.inner_test and test._hypothesis_internal_use_settings.max_examples == n
    assert sum(per_test.values()) >= 10_000

