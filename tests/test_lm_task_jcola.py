"""JCoLA subtask: the prompt of a real document rebuilt by hand, MCC by hand, the suite, missing data."""

from __future__ import annotations

import json
import random

import pytest

from evobench.scoring import Loglikelihood
from evobench.task import SEARCH, TEST
from evobench.tasks.jp_lmeh import jcola
from evobench.tasks.jp_lmeh.base import LMEHTask
from evobench.tasks.jp_lmeh.suite import JPLMEHSuite, jp_lmeh
from tests.lm_task_helpers import REAL

needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"no released benchmark files at {REAL}")
QUESTION = "\n質問: この文は文法的ですか？\n答え:"


class MarkerEngine:
    """Log-likelihoods that depend on the document: " はい" wins when the last sentence starts with "良"."""

    def __init__(self):
        self.requests = []

    def loglikelihood(self, model, requests):
        self.requests += list(requests)
        out = []
        for r in requests:
            sentence = r.context.rsplit("\n\n", 1)[-1]
            yes = sentence.startswith("良")
            out.append(Loglikelihood(-1.0 if (r.continuation == " はい") == yes else -2.0, False, 1))
        return out


def _docs(labels, good):
    return [{"uid": i, "source": "s", "label": y, "diacritic": None, "sentence": ("良" if g else "悪") + f"文{i}。"}
            for i, (y, g) in enumerate(zip(labels, good, strict=True))]


def test_mcc_by_hand():
    # labels 1 1 0 0 1, predictions 1 0 0 1 1: TP 2, FN 1, TN 1, FP 1 -> (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    docs = _docs([1, 1, 0, 0, 1], [True, False, False, True, True])
    engine = MarkerEngine()
    task = LMEHTask(jcola.SPEC, {SEARCH: docs[:2], TEST: docs}, {SEARCH: [[], []], TEST: [[]] * 5}, engine)
    r = task.evaluate(None, TEST)
    assert [p["prediction"] for p in r.predictions] == [1, 0, 0, 1, 1]
    assert r.scores.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert r.primary == pytest.approx(1 / 6) and r.metrics == {"mcc": pytest.approx(1 / 6)}
    assert task.aggregate(r.scores) == pytest.approx(1 / 6)  # from the scores and the test labels alone
    assert [q.continuation for q in engine.requests[:2]] == [" いいえ", " はい"]
    assert engine.requests[0].context == "良文0。" + QUESTION
    # the first two documents alone: labels 1 1, predictions 1 0 -> one class of labels -> MCC 0
    assert task.evaluate(None, TEST, limit=2).primary == 0.0
    # the search split has its own labels: all right -> MCC 0 again (a single label class)
    assert task.aggregate(task.evaluate(None, SEARCH).scores, SEARCH) == 0.0


def test_mcc_in_the_suite():
    docs = _docs([1, 1, 0, 0, 1], [True, False, False, True, True])
    task = LMEHTask(jcola.SPEC, {SEARCH: docs[:2], TEST: docs}, {SEARCH: [[], []], TEST: [[]] * 5}, MarkerEngine())
    r = JPLMEHSuite([task]).evaluate(None, TEST)
    assert r.metrics["jcola"] == pytest.approx(1 / 6) and r.primary == pytest.approx(1 / 6)


def test_shots_are_joined_as_the_japanese_harness_did():
    docs = _docs([1, 0], [True, False])
    shot = {"sentence": "猫が寝る。", "label": 1}
    task = LMEHTask(jcola.SPEC, {SEARCH: docs[:1], TEST: docs}, {SEARCH: [[]], TEST: [[shot], [shot]]}, None)
    assert task.prompts(TEST, 1)[0] == "猫が寝る。" + QUESTION + " はい\n\n" + "良文0。" + QUESTION


@needs_real
def test_prompt_of_the_first_real_document():
    lines = (REAL / "jcola" / "in_domain_valid-v1.0.json").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(x) for x in lines if x.strip()]
    pool, evaluated = rows[-100:], rows[:-100]
    shots = random.Random(1234).sample(pool, 3)  # the harness's sampler, first document's draw
    answer = {1: "はい", 0: "いいえ"}
    expected = "".join(f"{s['sentence']}{QUESTION} {answer[s['label']]}\n\n" for s in shots)
    expected += evaluated[0]["sentence"] + QUESTION
    docs, shots_by_split = jcola.load(REAL)
    assert (len(docs[SEARCH]), len(docs[TEST])) == (100, len(rows) - 100)
    assert LMEHTask(jcola.SPEC, docs, shots_by_split, None).prompts(TEST, 1)[0] == expected


def test_missing_data_names_what_to_download(tmp_path):
    from evobench.lmdata import DataUnavailableError

    with pytest.raises(DataUnavailableError, match="no in_domain_valid-v1.0.json in .*osekilab/JCoLA") as e:
        jcola.load(tmp_path)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="JCoLA") as e:
        jcola.jcola(models=["m"])  # no data_dir and no hub copy
    assert "\n" not in str(e.value)


def test_jcola_is_optional_in_the_suite():
    from evobench.tasks.jp_lmeh.suite import SUBTASKS

    assert "jcola" not in SUBTASKS and len(SUBTASKS) == 8
    with pytest.raises(ValueError, match="unknown \\['jcolla'\\].*jcola"):
        jp_lmeh(models=["m"], subtasks=["jcolla"])
