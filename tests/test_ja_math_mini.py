"""ja-math-mini: data, answer checking, cached deterministic training, the merge story, contracts."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from evobench.contract import TaskContract  # noqa: E402
from evobench.tasks import ja_math_mini_models as jm_models  # noqa: E402
from evobench.tasks.ja_math_mini import ja_math_mini  # noqa: E402
from evobench.tasks.ja_math_mini_data import (  # noqa: E402
    MAX_PROBLEMS,
    check_answer,
    is_japanese,
    read_number,
    task_problems,
    task_splits,
    training_texts,
)

TINY = jm_models.Recipe(vocab_size=300, hidden=16, layers=2, heads=2, kv_heads=1, intermediate=32,
                        n_texts=200, base_steps=3, en_steps=2, ja_steps=2, batch_size=4)


@pytest.fixture(scope="module")
def problem():
    """The default problem (models trained once per machine, then loaded from the cache)."""
    return ja_math_mini()


def test_data_is_deterministic_and_splits_disjoint():
    a, b = task_splits(), task_splits()
    assert [p.text for p in a["search"]] == [p.text for p in b["search"]]
    assert len(a["search"]) == 64 and len(a["test"]) == 128
    search, test = {p.text for p in a["search"]}, {p.text for p in a["test"]}
    assert len(search) == 64 and len(test) == 128 and not search & test
    ops = [p.op for p in a["test"]]
    assert ops.count("+") == ops.count("-") == 64
    assert all(1 <= p.answer <= 18 and p.lang == "ja" for p in a["search"] + a["test"])
    first = a["search"][0]
    assert first.prompt.startswith("Q: ") and first.prompt.endswith("\nA:") and "持っています" in first.text


def test_training_texts_never_contain_a_task_problem():
    reserved = {p.text for p in task_problems(MAX_PROBLEMS)}
    for kind in ("base", "en", "ja"):
        texts = training_texts(kind, 300, 0, reserved, bare=0.3, other_language=0.3)
        assert not {prompt[3:-3] for prompt, _ in texts} & reserved
    en = training_texts("en", 50, 0, set())
    assert all(seg[0][0].endswith(".") and not is_japanese(seg[0][0]) for _, seg in en)
    ja = training_texts("ja", 50, 0, set())
    assert all(seg[1][1] is False and seg[0][0].startswith(" 答え:") for _, seg in ja)


def test_answer_checker_on_fixed_strings():
    assert check_answer(" 答え: 3 + 5 = 8。", 8) == (True, True)
    assert check_answer("答えは8です。", 8) == (True, True)
    assert check_answer(" 3 + 5 = 8. The answer is 8.", 8) == (True, False)
    assert check_answer(" 3 + 5 = 8.", 8) == (True, False)  # right, but no Japanese
    assert check_answer(" 答え: 3 + 5 = 7。", 8) == (False, False)
    assert check_answer("答え: 8 apples", 8) == (True, False)  # a Latin letter: not Japanese
    assert check_answer("", 8) == (False, False)
    assert read_number("5,600") == 600.0 and read_number("-3") == 3.0 and read_number("なし") is None


def test_training_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOBENCH_CACHE", str(tmp_path))
    before = jm_models.TRAINING_RUNS["count"]
    tok, models = jm_models.load_or_train(TINY)
    assert jm_models.TRAINING_RUNS["count"] == before + 3  # base, en, ja
    folder = tmp_path / "ja-math-mini" / TINY.key()
    files = sorted(f.name for f in folder.iterdir())
    assert files == ["base.safetensors", "config.json", "en.safetensors", "ja.safetensors", "recipe.json",
                     "tokenizer.json"]
    digest = {n: hashlib.sha256((folder / f"{n}.safetensors").read_bytes()).hexdigest() for n in ("en", "ja")}
    tok2, again = jm_models.load_or_train(TINY)
    assert jm_models.TRAINING_RUNS["count"] == before + 3  # loaded, not trained
    assert all(torch.equal(models["en"].state_dict()[k], v) for k, v in again["en"].state_dict().items())
    assert tok2.get_vocab() == tok.get_vocab()
    _, retrained, _ = jm_models.train_models(TINY)
    assert all(torch.equal(models[n].state_dict()[k], v) for n in ("base", "en", "ja")
               for k, v in retrained[n].state_dict().items())
    assert not torch.equal(retrained["en"].state_dict()["lm_head.weight"],
                           retrained["ja"].state_dict()["lm_head.weight"])
    assert len(set(digest.values())) == 2


def test_factory_validates_options():
    for bad, match in (({"n_search": 0}, "n_search"), ({"n_test": 1.5}, "n_test"),
                       ({"n_search": 400, "n_test": 200}, "at most 512"), ({"batch_size": True}, "batch_size")):
        with pytest.raises(ValueError, match=match):
            ja_math_mini(**bad)


def _merge(problem, w_en: float, w_ja: float):
    base = problem.pool.base
    (_, en), (_, ja) = problem.pool.sources
    return problem.pool.family.build({k: base[k] + w_en * (en[k] - base[k]) + w_ja * (ja[k] - base[k])
                                      for k in base})


def test_story_sources_fail_and_a_merge_wins(problem):
    task = problem.task
    scores = {name: task.evaluate(problem.pool.family.build(st), "test").metrics for name, st in problem.pool.sources}
    en, ja = scores["en-math"], scores["ja"]
    assert en["acc"] > 0.8 and en["acc_ja"] == 0.0 and en["ja_rate"] == 0.0  # computes, never Japanese
    assert ja["ja_rate"] > 0.9 and ja["acc_ja"] < 0.1  # Japanese, cannot compute
    merged = task.evaluate(_merge(problem, 0.5, 1.0), "test").metrics  # measured: acc_ja 0.156 vs 0.0 / 0.055
    assert merged["acc_ja"] > 0.12 and merged["acc_ja"] >= max(en["acc_ja"], ja["acc_ja"]) + 0.05


def test_problem_offers_every_space_and_descriptors(problem):
    assert problem.space_kinds() == ["ps", "params", "dfs", "ps+dfs"]
    assert {"descriptors", "base", "two-starting-models"} <= problem.provides()
    r = problem.task.evaluate(problem.pool.family.build(problem.pool.sources[0][1]), "search", limit=4)
    assert len(r.predictions) == 4 and r.targets == [p.answer for p in task_splits()["search"][:4]]
    assert r.descriptors.shape == (2,) and r.metrics["acc"] == pytest.approx(r.descriptors[0])


class TestJaMathMiniContract(TaskContract):
    limit = 8

    @pytest.fixture
    def task_factory(self):
        return ja_math_mini, {}

    @pytest.fixture
    def changed_task_factory(self):
        return ja_math_mini, {"n_search": 32}


@pytest.mark.slow
def test_comparison_runs(tmp_path):
    from evobench.compare import run_comparison
    from evobench.config import RunConfig

    cfg = RunConfig(tasks=["ja-math-mini"], baselines=["random-search", "cmaes-ps"], budget=4, seeds=[0],
                    out=str(tmp_path), name="jm")
    comp = run_comparison(cfg, progress=False)
    runs = comp.results
    assert len(runs) == 2 and all(r.evaluations == 4 and np.isfinite(r.test_score) for r in runs)
    assert all(0.0 <= r.test_metrics["acc"] <= 1.0 and "acc_ja" in r.test_metrics for r in runs)
