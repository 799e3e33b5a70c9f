"""Run configuration: presets, YAML files, override precedence, validation messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from evobench.config import (
    ConfigError,
    RunConfig,
    build_config,
    load_preset,
    load_yaml,
    preset_names,
    validate,
)

MIN = {"tasks": ["digits-scratch"]}


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as ei:
        fn(*args, **kwargs)
    msg = str(ei.value)
    assert "\n" not in msg, f"multi-line ConfigError: {msg!r}"
    return msg


# --- presets ------------------------------------------------------------------------------------------

def test_preset_names_include_the_shipped_presets():
    names = preset_names()
    assert {"default", "m2n2-digits-scratch", "m2n2-digits-specialists"} <= set(names)
    assert names == sorted(names)
    assert all(not n.endswith(".yaml") for n in names)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_validates(name):
    cfg = build_config(preset=name)
    assert isinstance(cfg, RunConfig)
    assert cfg.tasks and cfg.budget > 0 and cfg.seeds
    assert validate(load_preset(name)) == cfg


def test_m2n2_presets_match_the_reference_settings():
    s = build_config(preset="m2n2-digits-scratch")
    assert [t.name for t in s.tasks] == ["digits-scratch"]
    assert s.budget == 50000
    assert s.seeds == [42, 43, 44, 45, 46]
    m2n2 = next(b for b in s.baselines if b.name == "m2n2")
    assert m2n2.config == {"archive_size": 20, "alpha": 1.0, "mutation_std": 0.01}
    p = build_config(preset="m2n2-digits-specialists")
    assert [t.name for t in p.tasks] == ["digits-specialists"]
    assert p.budget == 10000
    assert next(b for b in p.baselines if b.name == "m2n2").config["mutation_std"] == 0.0


def test_default_preset_runs_all_baselines():
    cfg = build_config()
    assert cfg.baselines is None  # "all"
    assert cfg == build_config(preset="default")


def test_unknown_preset_did_you_mean():
    msg = one_line_error(build_config, preset="m2n2-digits-scrach")
    assert "unknown preset 'm2n2-digits-scrach'" in msg
    assert "Did you mean 'm2n2-digits-scratch'" in msg
    assert "Available:" in msg and "default" in msg


# --- validate -----------------------------------------------------------------------------------------

def test_minimal_config_defaults():
    cfg = validate(MIN)
    assert [t.name for t in cfg.tasks] == ["digits-scratch"]
    assert cfg.tasks[0].options == {}
    assert cfg.baselines is None
    assert cfg.budget == 1000
    assert cfg.seeds == [0, 1, 2]
    assert cfg.threads is None


def test_comma_strings_for_tasks_baselines_seeds():
    cfg = validate({"tasks": "digits-scratch, digits-specialists", "baselines": "random-search,m2n2",
                    "seeds": "3, 1,2"})
    assert [t.name for t in cfg.tasks] == ["digits-scratch", "digits-specialists"]
    assert [b.name for b in cfg.baselines] == ["random-search", "m2n2"]
    assert [b.config for b in cfg.baselines] == [{}, {}]
    assert cfg.seeds == [3, 1, 2]


def test_list_of_names_and_mappings_mix():
    cfg = validate({"tasks": ["digits-scratch", {"name": "digits-specialists", "options": {"seed": 7}}],
                    "baselines": ["random-search", {"name": "m2n2", "config": {"alpha": 0.5}, "label": "M2N2"}]})
    assert cfg.tasks[1].options == {"seed": 7}
    assert cfg.baselines[1].config == {"alpha": 0.5}
    assert cfg.baselines[1].display == "M2N2"
    assert cfg.baselines[0].display == "random-search"


@pytest.mark.parametrize("all_value", ["all", ["all"]])
def test_all_baselines_is_none(all_value):
    assert validate({**MIN, "baselines": all_value}).baselines is None


def test_config_is_frozen():
    cfg = validate(MIN)
    with pytest.raises(ValidationError):
        cfg.budget = 5
    with pytest.raises(ValidationError):
        cfg.tasks[0].name = "digits-specialists"


def test_unknown_top_level_key_rejected():
    msg = one_line_error(validate, {**MIN, "budjet": 10})
    assert "budjet" in msg


def test_unknown_task_spec_key_rejected():
    msg = one_line_error(validate, {"tasks": [{"name": "digits-scratch", "opts": {}}]})
    assert "opts" in msg


@pytest.mark.parametrize("budget", [0, -5])
def test_nonpositive_budget_rejected(budget):
    msg = one_line_error(validate, {**MIN, "budget": budget})
    assert "budget" in msg


@pytest.mark.parametrize("seeds", [[1, 2, 1], "4,4"])
def test_duplicate_seeds_rejected(seeds):
    msg = one_line_error(validate, {**MIN, "seeds": seeds})
    assert "seeds" in msg and "distinct" in msg


def test_empty_seeds_rejected():
    assert "seeds" in one_line_error(validate, {**MIN, "seeds": []})


@pytest.mark.parametrize("tasks", [[], ""])
def test_no_task_rejected(tasks):
    assert "task" in one_line_error(validate, {"tasks": tasks})


def test_missing_tasks_rejected():
    assert "tasks" in one_line_error(validate, {})


def test_unknown_task_did_you_mean():
    msg = one_line_error(validate, {"tasks": ["digits-scrach"]})
    assert "digits-scrach" in msg
    assert "Did you mean 'digits-scratch'" in msg
    assert "Available:" in msg


def test_unknown_baseline_did_you_mean():
    msg = one_line_error(validate, {**MIN, "baselines": "random-serch"})
    assert "random-serch" in msg
    assert "Did you mean 'random-search'" in msg
    assert "Available:" in msg


def test_bad_baseline_config_value_names_the_baseline_and_field():
    msg = one_line_error(validate, {**MIN, "baselines": [{"name": "random-search",
                                                          "config": {"batch_size": -1}}]})
    assert "baselines[0]" in msg
    assert "random-search" in msg
    assert "batch_size" in msg


def test_unknown_baseline_config_key_names_the_index_and_key():
    msg = one_line_error(validate, {**MIN, "baselines": ["m2n2", {"name": "random-search",
                                                                  "config": {"batch_sise": 3}}]})
    assert "baselines[1]" in msg
    assert "batch_sise" in msg


def test_valid_baseline_config_accepted():
    cfg = validate({**MIN, "baselines": [{"name": "random-search", "config": {"batch_size": 4}}]})
    assert cfg.baselines[0].config == {"batch_size": 4}


# --- YAML files and precedence ------------------------------------------------------------------------

def test_yaml_file_loading(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("tasks: [digits-specialists]\nbudget: 17\nseeds: [5, 6]\nbaselines: random-search\n")
    assert load_yaml(f) == {"tasks": ["digits-specialists"], "budget": 17, "seeds": [5, 6],
                            "baselines": "random-search"}
    cfg = build_config(config_file=str(f))
    assert [t.name for t in cfg.tasks] == ["digits-specialists"]
    assert cfg.budget == 17 and cfg.seeds == [5, 6]
    assert [b.name for b in cfg.baselines] == ["random-search"]
    # a file alone is not layered onto the default preset; with no name it is named after its tasks
    assert cfg.name == "digits-specialists"


def test_overrides_win_over_file_over_preset(tmp_path):
    preset = load_preset("m2n2-digits-specialists")
    f = tmp_path / "run.yaml"
    f.write_text("budget: 33\nseeds: [1, 2]\nname: from-file\n")
    cfg = build_config(preset="m2n2-digits-specialists", config_file=str(f), seeds="9", out="x")
    assert cfg.seeds == [9]  # override beats file
    assert cfg.budget == 33  # file beats preset
    assert cfg.name == "from-file"
    assert cfg.out == "x"
    assert [t.name for t in cfg.tasks] == preset["tasks"]  # preset fills the rest
    assert len(cfg.baselines) == len(preset["baselines"])


def test_none_overrides_are_ignored(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("tasks: digits-scratch\nbudget: 33\n")
    cfg = build_config(config_file=str(f), budget=None, seeds=None)
    assert cfg.budget == 33 and cfg.seeds == [0, 1, 2]


def test_overrides_on_preset():
    cfg = build_config(preset="default", budget=5, tasks="digits-scratch", baselines="m2n2")
    assert cfg.budget == 5
    assert [t.name for t in cfg.tasks] == ["digits-scratch"]
    assert [b.name for b in cfg.baselines] == ["m2n2"]


def test_override_validation_errors_are_config_errors():
    assert "budget" in one_line_error(build_config, preset="default", budget=0)


def test_missing_config_file(tmp_path):
    p = tmp_path / "nope.yaml"
    msg = one_line_error(build_config, config_file=str(p))
    assert str(p) in msg
    assert "does not exist" in msg


def test_invalid_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("tasks: [digits-scratch\nbudget: : 3\n")
    msg = one_line_error(build_config, config_file=str(p))
    assert str(p) in msg
    assert "YAML" in msg


@pytest.mark.parametrize("text", ["- digits-scratch\n- digits-specialists\n", "just a string\n", ""])
def test_yaml_must_be_a_mapping(tmp_path, text):
    p = tmp_path / "list.yaml"
    p.write_text(text)
    msg = one_line_error(load_yaml, p)
    assert str(p) in msg
    assert "mapping" in msg


def test_yaml_with_unknown_key(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("tasks: digits-scratch\nbaseline: m2n2\n")
    msg = one_line_error(build_config, config_file=str(p))
    assert "baseline" in msg


# --- known defects (kept visible) -------------------------------------------------------------------

def test_duplicate_seeds_after_coercion_rejected():
    one_line_error(validate, {**MIN, "seeds": [1, "1"]})


def test_non_utf8_config_file_is_a_config_error(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes(b"name: caf\xe9\ntasks: digits-scratch\n")
    assert str(p) in one_line_error(load_yaml, p)


@pytest.mark.parametrize("data, needle", [
    ({"tasks": ["digits-scratch"], "budget": True}, "budget"),
    ({"tasks": ["digits-scratch"], "baselines": []}, "at least one baseline"),
    ({"tasks": ["digits-scratch"], "threads": 0}, "threads"),
])
def test_more_invalid_values_name_the_field(data, needle):
    with pytest.raises(ConfigError, match=needle):
        validate(data)


def test_config_file_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="is not a file"):
        load_yaml(tmp_path)


def test_baselines_flag_keeps_the_presets_configs_for_the_names_it_picks():
    from evobench.config import build_config

    cfg = build_config("ja-math-mini", baselines="cmaes-ps,m2n2")
    assert [(b.name, b.config) for b in cfg.baselines] == [("cmaes-ps", {"popsize": 8, "sigma0": 0.3}), ("m2n2", {})]
    cfg = build_config("ja-math-mini", baselines="ga,cmaes-dfs")
    assert [(b.name, b.config) for b in cfg.baselines] == [("ga", {"pop_size": 10}), ("cmaes-dfs", {"popsize": 8})]
    assert build_config("ja-math-mini", baselines="all").baselines is None
