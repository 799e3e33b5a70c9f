"""The webshop task: options, splits, records, the task contract, and a tiny LM agent end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("bm25s")
pytest.importorskip("rapidfuzz")

from evobench.records import records_jsonl  # noqa: E402
from evobench.registry import TASKS  # noqa: E402
from evobench.task import SEARCH, TEST  # noqa: E402
from evobench.task_contract import TaskContract  # noqa: E402
from evobench.tasks.lm_common import score_model  # noqa: E402
from evobench.tasks.webshop.generated import generated_catalogue  # noqa: E402
from evobench.tasks.webshop.task import webshop  # noqa: E402
from tests.lm_task_helpers import save_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return str(save_tiny_model(tmp_path_factory.mktemp("tiny-lm")))


def _options(tiny_dir, **extra):
    return {"models": [tiny_dir], "max_new_tokens": 4, "step_limit": 3, "batch_size": 4, **extra}


class TestWebShopContract(TaskContract):
    limit = 2

    @pytest.fixture
    def task_factory(self, tiny_dir):
        return webshop, _options(tiny_dir)

    @pytest.fixture
    def changed_task_factory(self, tiny_dir):
        return webshop, _options(tiny_dir, seed=1)


def test_registered_and_split_as_webshop_mini(tiny_dir):
    assert TASKS.get("webshop") is webshop
    problem = webshop(**_options(tiny_dir))
    goals = generated_catalogue(0).goals
    assert problem.task.split_sizes() == {SEARCH: 96, TEST: 100}
    assert problem.task.splits[TEST] == goals[:100] and problem.task.splits[SEARCH] == goals[100:]
    limited = webshop(**_options(tiny_dir, limit_search=5, limit_test=3)).task
    assert limited.split_sizes() == {SEARCH: 5, TEST: 3} and limited.splits[TEST] == goals[:3]


@pytest.mark.parametrize("option, value, message", [
    ("step_limit", 0, "step_limit must be a positive integer"),
    ("history", -1, "history must be a non-negative integer"),
    ("seed", -1, "seed must be a non-negative integer"),
    ("limit_test", 0, "limit_test must be a positive integer"),
    ("data_dir", "/nonexistent/webshop", "data_dir: no such directory"),
    ("prompt", "short", "prompt must be one of react, compact"),
    ("snap", "yes", "snap must be true or false"),
])
def test_bad_options_are_one_line_errors(tiny_dir, option, value, message):
    with pytest.raises(ValueError, match=message) as e:
        webshop(**_options(tiny_dir, **{option: value}))
    assert "\n" not in str(e.value)


def test_compact_prompt_is_played_and_changes_the_data_hash(tiny_dir):
    react = webshop(**_options(tiny_dir, limit_test=1)).task
    compact = webshop(**_options(tiny_dir, limit_test=1, prompt="compact")).task
    assert react.prompt == "react" and compact.prompt == "compact"
    assert react.data_hash() != compact.data_hash()
    assert compact.data_hash() != webshop(**_options(tiny_dir, limit_test=1, prompt="compact", history=2)).task.data_hash()
    assert compact.data_hash() != webshop(**_options(tiny_dir, limit_test=1, prompt="compact", snap=True)).task.data_hash()
    seen = []
    generate = compact.engine.generate

    def spy(model, requests):
        seen.extend(r.prompt for r in requests)
        return generate(model, requests)

    compact.engine.generate = spy
    pool = webshop(**_options(tiny_dir)).pool
    model = pool.family.build(pool.sources[0][1])
    compact.evaluate(model, TEST)
    first = compact.splits[TEST][0].instruction_text
    assert seen[0] == f"WebShop [SEP] Instruction: [SEP] {first} [SEP] Search\nAction:"


def test_a_data_dir_without_the_release_names_the_files(tiny_dir, tmp_path):
    with pytest.raises(ValueError) as e:
        webshop(**_options(tiny_dir, data_dir=str(tmp_path)))
    assert "items_human_ins.json" in str(e.value) and "\n" not in str(e.value)


def test_tiny_lm_agent_runs_episodes_end_to_end(tiny_dir):
    problem = webshop(**_options(tiny_dir, max_new_tokens=6, step_limit=4, limit_test=3))
    r = score_model(problem, TEST)
    assert len(r.scores) == 3 and r.n_forward == 3
    assert r.primary == r.metrics["score"] == pytest.approx(float(np.mean(r.scores)))
    for rec, score in zip(r.predictions, r.scores, strict=True):
        assert 1 <= rec["steps"] <= 4 and len(rec["actions"]) == len(rec["completions"]) == rec["steps"]
        assert rec["ended"] in ("buy", "step limit") and rec["reward"] == score
        assert (rec["purchased"] is None) == (rec["ended"] == "step limit")
    total_invalid = sum(rec["n_invalid"] for rec in r.predictions)
    assert r.metrics["invalid_rate"] == pytest.approx(total_invalid / sum(rec["steps"] for rec in r.predictions))
    assert len(problem.task.engine.tokens) == 0  # no prompt kept from one candidate to the next
    lines = records_jsonl(problem.task, TEST, r).splitlines()
    first = json.loads(lines[0])
    goal = problem.task.splits[TEST][0]
    assert first["example_id"] == first["goal_id"] and first["target"] == goal.asin
    assert first["instruction"] == goal.instruction_text and first["index"] == 0


def test_released_data_needs_spacy_in_one_line(tiny_dir, tmp_path):
    from evobench.tasks.webshop.generated import write_files

    try:
        import spacy

        spacy.load("en_core_web_sm")
        pytest.skip("spaCy's en_core_web_sm is installed")
    except (ModuleNotFoundError, OSError):
        pass
    write_files(tmp_path)  # the release's file names and schema
    with pytest.raises(ValueError) as e:
        webshop(**_options(tiny_dir, data_dir=str(tmp_path)))
    assert "en_core_web_sm" in str(e.value) and "\n" not in str(e.value)


def test_released_split_is_the_originals():
    from evobench.tasks.webshop.schema import Catalogue
    from evobench.tasks.webshop.task import goal_splits

    catalogue = generated_catalogue(0)
    many = Catalogue(catalogue.products, catalogue.goals * 9, catalogue.nouns, "nine copies")  # 1,764 goals
    splits = goal_splits(many, released=True)
    assert splits[TEST] == many.goals[:500] and splits[SEARCH] == many.goals[500:1500]


@pytest.mark.slow
def test_a_comparison_merges_two_tiny_agents(tiny_dir, tmp_path):
    from evobench.compare import run_comparison
    from evobench.config import RunConfig
    from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer

    other = tmp_path / "other"
    tok = tiny_tokenizer()
    tiny_llama(tiny_llama_config(tok), seed=5, std=0.2).save_pretrained(other)
    tok.save_pretrained(other)
    options = _options(tiny_dir, models=[tiny_dir, str(other)], limit_search=2, limit_test=2, step_limit=2,
                       max_new_tokens=3)
    cfg = RunConfig(tasks=[{"name": "webshop", "options": options}], baselines=["random-search"], budget=2,
                    seeds=[0], device="cpu", out=str(tmp_path / "out"), name="shop")
    comp = run_comparison(cfg, progress=False, write=True)
    [run] = comp.results
    assert run.evaluations == 2 and 0.0 <= run.test_score <= 1.0
    assert set(run.test_metrics) >= {"score", "success_rate", "invalid_rate"}
    [records] = sorted((tmp_path / "out").glob("shop-*/runs/*/records/webshop.jsonl"))
    lines = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2 and all(rec["steps"] <= 2 and "actions" in rec for rec in lines)
