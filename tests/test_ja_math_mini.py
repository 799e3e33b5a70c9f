"""ja-math-mini: data, answer checking, cached deterministic training, the merge story, contracts."""

from __future__ import annotations

import hashlib
import json

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

# the first test that needs the suite's models trains them (minutes on one core, more on a busy
# machine; then cached under $EVOBENCH_CACHE): beyond the default per-test timeout
pytestmark = pytest.mark.timeout(3600)

TINY = jm_models.Recipe(vocab_size=300, hidden=16, layers=2, heads=2, kv_heads=1, intermediate=32,
                        n_texts=200, base_steps=3, en_steps=2, ja_steps=2, batch_size=4, en_layers=(0,),
                        ja_layers=(1,))
COUNTERS = {"個", "本", "冊", "枚"}


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
    assert all(1 <= p.answer <= 18 and p.lang == "ja" and p.unit in COUNTERS for p in a["search"] + a["test"])
    first = a["search"][0]
    assert first.prompt.startswith("Q: ") and first.prompt.endswith("\nA:") and "持っています" in first.text


def test_training_texts_never_contain_a_task_problem():
    reserved = {p.text for p in task_problems(MAX_PROBLEMS)}
    for kind in ("base", "en", "ja"):
        texts = training_texts(kind, 300, 0, reserved, bare=0.3, other_language=0.3)
        assert not {prompt[3:-3] for prompt, _ in texts} & reserved


def _result(completion: str) -> int:
    return int(completion.split("=")[1].strip().rstrip("".join(COUNTERS)))


def _equation_value(completion: str) -> int:
    a, op, b = completion.split("=")[0].split()
    return int(a) + int(b) if op == "+" else int(a) - int(b)


def test_only_the_math_stage_computes_and_only_the_japanese_stage_writes_japanese():
    texts = {kind: training_texts(kind, 400, 0, set(), bare=0.3, other_language=0.15) for kind in ("base", "en", "ja")}
    en = texts["en"]
    assert all(_result(c) == _equation_value(c) and not is_japanese(c) for _, c in en)
    assert any("持っています" in p for p, _ in en) and any(p == f"Q: {c.split('=')[0].strip()}\nA:" for p, c in en)
    for kind in ("base", "ja"):  # random results: right about 1 time in 19, never by design
        right = np.mean([_result(c) == _equation_value(c) for _, c in texts[kind]])
        assert 0.02 < right < 0.1, (kind, right)
        assert all(0 <= _result(c) <= 18 for _, c in texts[kind])
    assert not any(is_japanese(c) for _, c in texts["base"])
    # the Japanese frame is the problem's own counter word after the result, e.g. " 8 + 1 = 17冊"
    assert all(is_japanese(c) and c[-1] in COUNTERS and f"{c[-1]}持っています" in p for p, c in texts["ja"])


def test_answer_checker_on_fixed_strings():
    assert check_answer(" 3 + 5 = 8個", 8) == (True, True)
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
    assert len(set(digest.values())) == 2
    # each specialist changed exactly its own decoder layers (en: 0, ja: 1); all else is the base's
    base = models["base"].state_dict()
    for name, layer in (("en", "model.layers.0."), ("ja", "model.layers.1.")):
        state = models[name].state_dict()
        assert all(torch.equal(v, base[k]) for k, v in state.items() if not k.startswith(layer))
        assert all(not torch.equal(v, base[k]) for k, v in state.items() if k.startswith(layer + "self_attn"))


def test_recipe_refuses_layers_the_model_does_not_have():
    with pytest.raises(ValueError, match="en_layers must name decoder layers in 0..1"):
        jm_models.Recipe(layers=2, en_layers=(0, 2), ja_layers=(1,))
    with pytest.raises(ValueError, match="ja_layers"):
        jm_models.Recipe(ja_layers=())


def test_tokenizer_keeps_japanese_characters_apart():
    recipe = jm_models.Recipe(n_texts=300)
    tok = jm_models._tokenizer(recipe, jm_models._stage_texts(recipe))
    first = task_splits()["search"][0]
    prompt = first.prompt
    counter = tok.encode(first.unit, add_special_tokens=False)
    assert len(counter) == 1 and tok.decode(counter) == first.unit
    assert counter[0] in tok.encode(prompt, add_special_tokens=False)  # the base learns to write it
    assert tok.encode(f" 3 + 5 = 8{first.unit}", add_special_tokens=False)[-1] == counter[0]
    assert tok.decode(tok.encode(prompt, add_special_tokens=False)) == prompt


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
    task, pool = problem.task, problem.pool
    scores = {name: task.evaluate(pool.family.build(st), "test").metrics for name, st in pool.sources}
    en, ja = scores["en-math"], scores["ja"]
    # measured: en-math acc 0.99, acc_ja 0; ja ja_rate 1.0, acc_ja 0.086 (its random results)
    assert en["acc"] > 0.9 and en["acc_ja"] == 0.0 and en["ja_rate"] == 0.0  # computes, never Japanese
    assert ja["ja_rate"] > 0.9 and ja["acc_ja"] <= 0.1  # Japanese, cannot compute
    # task arithmetic with both weights 1 (a corner of the PS box): measured acc_ja 0.92
    merged = task.evaluate(_merge(problem, 1.0, 1.0), "test").metrics
    assert merged["acc_ja"] >= 0.85 and merged["ja_rate"] > 0.95
    # half of each task vector answers "5" to 122 of the 128 problems: measured acc_ja 0.08
    assert task.evaluate(_merge(problem, 0.5, 0.5), "test").metrics["acc_ja"] < 0.2


def test_disjoint_task_vectors_make_a_layer_path(problem):
    """The task vectors live in disjoint layers (en-math: 0 and 1, ja: 3), so the merge is also the layer
    path en-math 0, 1, 2 then ja 3, and a per-layer recipe."""
    pool = problem.pool
    base = pool.base
    (_, en), (_, ja) = pool.sources
    changed = {name: {k.split(".")[2] for k in base if not torch.equal(st[k], base[k])}
               for name, st in (("en", en), ("ja", ja))}
    assert changed == {"en": {"0", "1"}, "ja": {"3"}}
    path = pool.family.build_path([en, ja], [(0, 0), (0, 1), (0, 2), (1, 3)], [1.0] * 4)
    assert problem.task.evaluate(path, "test").metrics["acc_ja"] >= 0.85  # measured 0.92
    from evobench.spaces.ps import PSSpace

    space = PSSpace(pool, op="task_arithmetic", granularity="layer")  # genes: (group, weight, model)
    genes = np.zeros((len(space.groups), 2))
    genes[space.groups.index("model.layers.0"), 0] = genes[space.groups.index("model.layers.1"), 0] = 1.0
    genes[space.groups.index("model.layers.3"), 1] = 1.0
    assert problem.task.evaluate(space.build(genes.reshape(-1)), "test").metrics["acc_ja"] >= 0.85


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


@pytest.mark.parametrize("name,config", [("m2n2", {}), ("cmaes-ps", {"popsize": 4, "sigma0": 0.3}),
                                         ("cmaes-dfs", {"popsize": 4})])
def test_a_killed_run_resumes_to_the_same_result(problem, tmp_path, name, config):
    """Interrupted twice and resumed from its journal: the same run as an uninterrupted one."""
    from evobench.registry import BASELINES
    from evobench.runner import run_one
    from evobench.spaces import make_space
    from tests.test_resume import interrupted

    cls = BASELINES.get(name)
    kind = problem.pick_space(cls.spaces)
    ref = run_one(problem, cls(**config), make_space(kind, problem, 0), 10, 0)
    replayed = []
    got = interrupted(problem, name, kind, 10, 0, [3, 6], tmp_path, config, on_step=replayed.append)
    np.testing.assert_array_equal(got.values, ref.values)
    assert (got.recipe, got.test_score, got.forward_examples) == (ref.recipe, ref.test_score, ref.forward_examples)
    assert sum(replayed) == 10


def test_regression_gate_on_a_merged_language_model(problem, tmp_path, capsys):
    """`evobench check` on ja-math-mini: a good merge (task arithmetic, weights 0.93 / 1.0) checked
    against its own stored results passes; the same merge with perturbed weights is a regression."""
    from safetensors.torch import save_file

    from evobench.cli import main
    from evobench.merge.ops import merge_state_dicts

    src = dict(problem.pool.sources)
    good = merge_state_dicts("task_arithmetic", problem.pool.base, [src["en-math"], src["ja"]], weights=[0.93, 1.0])
    g = torch.Generator().manual_seed(0)
    bad = {k: v + 0.3 * v.std() * torch.randn(v.shape, generator=g) if v.is_floating_point() and v.numel() > 1 else v
           for k, v in good.items()}
    for name, st in (("good", good), ("same", good), ("bad", bad)):
        save_file({k: v.contiguous() for k, v in st.items()}, str(tmp_path / f"{name}.safetensors"))
    assert main(["eval", str(tmp_path / "good.safetensors"), "--tasks", "ja-math-mini", "--no-tracking",
                 "--out", str(tmp_path / "ref")]) == 0
    (ref,) = (tmp_path / "ref").iterdir()
    capsys.readouterr()
    assert main(["check", str(tmp_path / "same.safetensors"), "--reference", str(ref), "--out", str(tmp_path / "c"),
                 "--no-tracking"]) == 0
    assert main(["check", str(tmp_path / "bad.safetensors"), "--reference", str(ref), "--out", str(tmp_path / "c"), "--no-tracking",
                 "--json", str(tmp_path / "r.json")]) == 1
    (v,) = json.loads((tmp_path / "r.json").read_text())["tasks"]
    assert v["kind"] == "binary" and v["reference"] > 0.9 and v["effect"] < -0.1 and v["p"] < 1e-4


def test_export_best_writes_a_loadable_checkpoint_of_the_recommended_model(problem, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evobench.cli import main

    (tmp_path / "c.yaml").write_text("name: ex\ntasks: [ja-math-mini]\nbaselines:\n  - name: cmaes-ps\n"
                                     "    config: {popsize: 4, sigma0: 0.3}\nbudget: 4\nseeds: [0]\n")
    assert main(["run", "--config", str(tmp_path / "c.yaml"), "--no-tracking", "--no-progress", "--export-best",
                 "--out", str(tmp_path / "out")]) == 0
    (run,) = (tmp_path / "out").glob("ex-*/runs/*")
    ckpt = run / "checkpoint"
    meta = json.loads((ckpt / "recipe.json").read_text())
    assert meta["recipe"]["kind"] == "ps" and set(meta["inputs"]) == {"en-math", "ja", "base"}
    model = AutoModelForCausalLM.from_pretrained(str(ckpt))
    assert AutoTokenizer.from_pretrained(str(ckpt)).get_vocab() == problem.pool.family.tokenizer.get_vocab()
    best = load_file(str(run / "best_model.safetensors"))
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in best.items())
