"""Report tasks and per-example records on language models: search mgsm-ja, report JP-LMEH subtasks.

Two tiny Llama models saved as Hugging Face folders (one tokenizer) are merged on MGSM-JA's search
split; each run's recommended model and both sources are also scored on JCommonsenseQA and on the
JP-LMEH suite of JNLI and JCommonsenseQA (released files, first few test documents).
"""

from __future__ import annotations

import json

import pytest

from evobench.compare import run_comparison
from evobench.config import validate
from evobench.records import example_ids, records
from evobench.task import TEST
from tests.lm_task_helpers import REAL, save_tiny_model

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"no released benchmark files at {REAL}")


def _other_model(folder):
    from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer

    tok = tiny_tokenizer()
    tiny_llama(tiny_llama_config(tok), seed=5, std=0.2).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return [str(save_tiny_model(tmp_path_factory.mktemp("tiny-a"))), _other_model(tmp_path_factory.mktemp("tiny-b"))]


JCQA = {"data_dir": str(REAL), "limit_test": 3, "batch_size": 4}
SUITE = {"data_dir": str(REAL), "subtasks": ["jnli", "jcqa"], "limit_test": 2, "batch_size": 4}


@pytest.fixture(scope="module")
def compared(models, tmp_path_factory):
    cfg = validate({
        "tasks": [{"name": "mgsm-ja", "options": {"models": models, "data_dir": str(REAL), "max_new_tokens": 3,
                                                  "batch_size": 4, "limit_search": 2, "limit_test": 3}}],
        "report_tasks": [{"name": "jp-lmeh-jcqa", "options": JCQA}, {"name": "jp-lmeh", "options": SUITE}],
        "baselines": ["random-search"], "budget": 3, "seeds": [0, 1], "device": "cpu",
        "out": str(tmp_path_factory.mktemp("lm-report"))})
    return run_comparison(cfg, progress=False)


def _lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _rescore(factory, options, models, state):
    """The saved weights scored on a report task through a problem over the first model (not the run)."""
    problem = factory(models=models[:1], device="cpu", **options)
    result = problem.task.evaluate(problem.pool.family.build(state), TEST)
    return result, records(result, example_ids(problem.task, TEST, len(result.scores)))


def test_report_scores_equal_rescoring_the_saved_model(compared, models):
    from safetensors.torch import load_file

    from evobench.tasks.jp_lmeh.jcqa import jcqa
    from evobench.tasks.jp_lmeh.suite import jp_lmeh

    for r in compared.results:
        folder = compared.out_dir / r.record
        run = json.loads((folder / "run.json").read_text())
        state = load_file(str(folder / "best_model.safetensors"))
        for name, factory, options in (("jp-lmeh-jcqa", jcqa, JCQA), ("jp-lmeh", jp_lmeh, SUITE)):
            result, recs = _rescore(factory, options, models, state)
            assert run["report"][name]["score"] == result.primary == r.report[name]["score"]
            assert run["report"][name]["metrics"] == pytest.approx(result.metrics)
            assert _lines(folder / "records" / f"{name}.jsonl") == json.loads(json.dumps(recs))
        assert run["report"]["jp-lmeh"]["examples"] == 4 and run["report"]["jp-lmeh-jcqa"]["examples"] == 3
        assert set(run["report"]["jp-lmeh"]["metrics"]) == {"avg", "jnli", "jcqa"}


def test_mgsm_records_keep_prompt_hashes(compared):
    from evobench.scoring import prompt_hash
    from evobench.tasks.mgsm_ja import prompt

    r = compared.results[0]
    recs = _lines(compared.out_dir / r.record / "records" / "mgsm-ja.jsonl")
    assert len(recs) == 3 and [x["score"] for x in recs] == list(r.test_scores)
    assert recs[0]["prompt_sha256"] == prompt_hash(prompt(
        "ジャネットのアヒルは1日に16個の卵を生みます。ジャネットは毎朝朝食の一環で3個を消費し、毎日4個使って友達向けに"
        "マフィンを焼きます。残りを市場で1個あたり2ドルの価格で売ります。彼女は毎日市場でいくら手に入れていますか？"))
    assert recs[0]["target"] == 18 and all(isinstance(x["completion"], str) for x in recs)


def test_sources_are_scored_on_the_report_tasks(compared, models):
    from evobench.tasks.jp_lmeh.jcqa import jcqa
    from evobench.tasks.lm_common import score_model

    rows = compared.sources["mgsm-ja"]
    assert [row["source"] for row in rows] == models
    for model, row in zip(models, rows, strict=True):
        alone = score_model(jcqa(models=[model], device="cpu", **JCQA), TEST)
        assert row["report"]["jp-lmeh-jcqa"]["score"] == alone.primary
        recs = _lines(compared.out_dir / row["record"] / "records" / "jp-lmeh-jcqa.jsonl")
        assert [x["score"] for x in recs] == list(alone.scores)
    table = (compared.out_dir / "table.txt").read_text()
    assert "mgsm-ja: report tasks" in table and "jp-lmeh-jcqa" in table


def test_lm_families_with_other_tokenizers_are_incompatible():
    from evobench.models.causal_lm import IncompatibleModelsError, pool_from_models
    from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer

    tok = tiny_tokenizer()
    other = tiny_tokenizer(["まったく別のコーパスです。", "another corpus entirely, with other merges 123"])
    a = pool_from_models({"a": tiny_llama(tiny_llama_config(tok), seed=1)}, tokenizers=tok).family
    b = pool_from_models({"b": tiny_llama(tiny_llama_config(tok), seed=1)}, tokenizers=other).family  # same shapes
    a.check_compatible(pool_from_models({"c": tiny_llama(tiny_llama_config(tok), seed=2)}, tokenizers=tok).family)
    with pytest.raises(IncompatibleModelsError, match="'search' and 'report'.*tokenizer"):
        a.check_compatible(b, ("search", "report"))


def test_a_report_problem_keeps_only_its_task(models, monkeypatch):
    """The report factory loads the models again to check them; that copy is not kept."""
    import functools
    import gc
    import weakref

    from evobench.compare import plan
    from evobench.registry import TASKS

    real, loaded = TASKS.get("jp-lmeh-jcqa"), []

    @functools.wraps(real)
    def spy(*a, **k):
        problem = real(*a, **k)
        loaded.append(weakref.ref(problem.pool.family.template))
        return problem

    monkeypatch.setitem(TASKS._entries, "jp-lmeh-jcqa", spy)
    cfg = validate({"tasks": [{"name": "mgsm-ja", "options": {"models": models, "data_dir": str(REAL),
                                                              "limit_test": 3}}],
                    "report_tasks": [{"name": "jp-lmeh-jcqa", "options": JCQA}], "baselines": ["random-search"],
                    "device": "cpu"})
    pairs, _ = plan(cfg)
    gc.collect()
    assert [r.name for r in pairs[0].reports] == ["jp-lmeh-jcqa"] and len(loaded) == 1
    assert loaded[0]() is None
