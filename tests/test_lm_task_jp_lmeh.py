"""JP-LMEH subtasks and suite: prompts of real documents pinned, loaders, scoring by hand, the suite layout.

The pinned prompts are the first evaluated document of each released file (its shots drawn from the
file's last 100 documents by the harness's seeded sampler), as lm-evaluation-harness 0.4.13's
``japanese_leaderboard`` configs render them: the literals are lm-eval's own contexts for these
documents (``benchmarks/lmeval_agreement.py`` writes the local files it reads).
"""

from __future__ import annotations

import json

import pytest

from evobench.task import SEARCH, TEST
from evobench.tasks.jp_lmeh import jaqket, jcqa, jnli, jsquad, marc_ja, mgsm, xlsum, xwinograd
from evobench.tasks.jp_lmeh.base import LMEHTask
from evobench.tasks.jp_lmeh.suite import JPLMEHSuite, jp_lmeh, layout
from tests.lm_task_helpers import REAL, FakeEngine

needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"no released benchmark files at {REAL}")
MODULES = {"jcqa": jcqa, "jnli": jnli, "jsquad": jsquad, "mgsm": mgsm}

PINNED = {
    "jcqa": (
        '以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n'
        '\n'
        '### 指示：\n'
        '出力は以下から選択してください：\n'
        '- 足\n'
        '- 肩\n'
        '- 人体\n'
        '- 筋肉\n'
        '- 手\n'
        '\n'
        '### 入力：\n'
        'この中で実験に使われることがあるのは？\n'
        '\n'
        '### 応答：\n'
        '人体\n'
        '\n'
        '### 指示：\n'
        '出力は以下から選択してください：\n'
        '- キック\n'
        '- 倒す\n'
        '- 狩猟\n'
        '- パンチ\n'
        '- 暴行\n'
        '\n'
        '### 入力：\n'
        '野生動物を捕獲することを何という？\n'
        '\n'
        '### 応答：\n'
        '狩猟\n'
        '\n'
        '### 指示：\n'
        '出力は以下から選択してください：\n'
        '- 座る\n'
        '- 寝転ぶ\n'
        '- ジョギングする\n'
        '- 足を片方ずつ前に出す\n'
        '- 足を動かす\n'
        '\n'
        '### 入力：\n'
        '身体に一番負担がかかる作業は？\n'
        '\n'
        '### 応答：\n'
        'ジョギングする\n'
        '\n'
        '### 指示：\n'
        '出力は以下から選択してください：\n'
        '- 掲示板\n'
        '- パソコン\n'
        '- マザーボード\n'
        '- ハードディスク\n'
        '- まな板\n'
        '\n'
        '### 入力：\n'
        '電子機器で使用される最も主要な電子回路基板の事をなんと言う？\n'
        '\n'
        '### 応答：'
    ),
    "jnli": (
        '以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n'
        '\n'
        '### 指示：\n'
        '与えられた前提と仮説の関係を回答してください。\n'
        '\n'
        '出力は以下から選択してください：\n'
        '含意\n'
        '矛盾\n'
        '中立\n'
        '\n'
        '### 入力：\n'
        '前提：大きなプロペラ機のオブジェがあります。\n'
        '仮説：広場にプロペラ飛行機のオブジェが飾られています。\n'
        '\n'
        '### 応答：\n'
        '中立\n'
        '\n'
        '### 指示：\n'
        '与えられた前提と仮説の関係を回答してください。\n'
        '\n'
        '出力は以下から選択してください：\n'
        '含意\n'
        '矛盾\n'
        '中立\n'
        '\n'
        '### 入力：\n'
        '前提：砂浜でたくさんの人が過ごしています。\n'
        '仮説：小山を見渡す海辺の砂浜にパラソルとたくさんの人がいます。\n'
        '\n'
        '### 応答：\n'
        '中立\n'
        '\n'
        '### 指示：\n'
        '与えられた前提と仮説の関係を回答してください。\n'
        '\n'
        '出力は以下から選択してください：\n'
        '含意\n'
        '矛盾\n'
        '中立\n'
        '\n'
        '### 入力：\n'
        '前提：オーブンが設置されているキッチンの写真です。\n'
        '仮説：オーブンが設置されているキッチンの写真です。\n'
        '\n'
        '### 応答：\n'
        '含意\n'
        '\n'
        '### 指示：\n'
        '与えられた前提と仮説の関係を回答してください。\n'
        '\n'
        '出力は以下から選択してください：\n'
        '含意\n'
        '矛盾\n'
        '中立\n'
        '\n'
        '### 入力：\n'
        '前提：時計がついている場所にパブリックマーケットセンターとかかれた看板が設置されています。\n'
        '仮説：屋根の上に看板があり時計もついています。\n'
        '\n'
        '### 応答：'
    ),
    "jsquad": (
        '以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n'
        '\n'
        '### 指示：\n'
        '与えられた文脈から、質問に対する答えを抜き出してください。\n'
        '\n'
        '### 入力：\n'
        '文脈：ゼネコンは日本特有の形態。セメントメジャーにラファージュホルシムやイタルチェメンティ。\n'
        '質問：ゼネコンはどの国の特有の形態か？\n'
        '\n'
        '### 応答：\n'
        '日本\n'
        '\n'
        '### 指示：\n'
        '与えられた文脈から、質問に対する答えを抜き出してください。\n'
        '\n'
        '### 入力：\n'
        '文脈：遺伝的には地域差より河川毎の差が大きく、同一河川での年級毎（年ごと）の差は小さい。これは、高い母川回帰性のため河川間の交雑が起き難く、回帰個体の年齢にバラツキがあり年ごとの交配が行われていることを意味する。\n'
        '質問：遺伝的には地域差より河川毎の差が大きく、同一河川での年級毎（年ごと）の差は小さい魚はなに？\n'
        '\n'
        '### 応答：\n'
        'サケ\n'
        '\n'
        '### 指示：\n'
        '与えられた文脈から、質問に対する答えを抜き出してください。\n'
        '\n'
        '### 入力：\n'
        '文脈：梅雨（つゆ、ばいう）は、北海道と小笠原諸島を除く日本、朝鮮半島南部、中国の南部から長江流域にかけての沿海部、および台湾など、東アジアの広範囲においてみられる特有の気象現象で、5月から7月にかけて来る曇りや雨の多い期間のこと。雨季の一種である。\n'
        '質問：日本で梅雨がないのは北海道とどこか。\n'
        '\n'
        '### 応答：'
    ),
    "mgsm": (
        '以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n'
        '\n'
        '### 指示：\n'
        '与えられた問題に対して、ステップごとに答えを導き出してください。\n'
        '\n'
        '### 入力：\n'
        '駐車場に3台の車があり、2台の車が到着するとしたら、駐車場には何台の車がありますか？\n'
        '\n'
        '### 応答：\n'
        '最初に3台の車があり、さらに2台到着したので、今は3+2で5台の車があるはずです。答えは5です。\n'
        '\n'
        '### 指示：\n'
        '与えられた問題に対して、ステップごとに答えを導き出してください。\n'
        '\n'
        '### 入力：\n'
        'ロジャーは5個のテニスボールがあります。テニスボールの缶を2つ追加で買います。それぞれの缶には3つのテニスボールが入っています。彼は今いくつのテニスボールがありますか？\n'
        '\n'
        '### 応答：\n'
        'ロジャーは最初5個のボールがありました。テニスボール3個入りの缶が2つあれば、テニスボールは6個あります。5+6=11。答えは11です。\n'
        '\n'
        '### 指示：\n'
        '与えられた問題に対して、ステップごとに答えを導き出してください。\n'
        '\n'
        '### 入力：\n'
        'ジェイソンは20個の飴を持っています。彼はデニーに飴をいくつかあげました。今、ジェイソンには12個の飴があります。ジェイソンはデニーにいくつ飴をあげましたか？\n'
        '\n'
        '### 応答：\n'
        'ジェイソンには最初20個の飴がありましたが、今彼は12個しか持っていません、なので彼はデニーに、20-12=8個の飴をあげました。答えは8です。\n'
        '\n'
        '### 指示：\n'
        '与えられた問題に対して、ステップごとに答えを導き出してください。\n'
        '\n'
        '### 入力：\n'
        'オリビアには$23あります。彼女はそれぞれ$3のベーグルを5つ買いました。彼女にはいくらのお金が残っていますか？\n'
        '\n'
        '### 応答：\n'
        '$3のベーグルは5個で、5*3=15ドルになるはずです。オリビアは最初$23あったので、今彼女には23-15=8ドル残っています。答えは8です。\n'
        '\n'
        '### 指示：\n'
        '与えられた問題に対して、ステップごとに答えを導き出してください。\n'
        '\n'
        '### 入力：\n'
        'マイケルは58個のゴルフボールを持っています。火曜日、彼は\n'
        '23個のゴルフボールを失くしました。水曜日、さらに2個失くしました。水曜日の終わりには、彼は何このゴルフボールを持っていましたか？\n'
        '\n'
        '### 応答：\n'
        'マイケルは最初58個のゴルフボールがあり、23個なくしました、だから彼は58-23=35個残っています。彼があと2個なくした後、彼は今35-2=33個残っています。答えは33個です。\n'
        '\n'
        '### 指示：\n'
        '与えられた問題に対して、ステップごとに答えを導き出してください。\n'
        '\n'
        '### 入力：\n'
        'ジャネットのアヒルは1日に16個の卵を生みます。ジャネットは毎朝朝食の一環で3個を消費し、毎日4個使って友達向けにマフィンを焼きます。残りを市場で1個あたり2ドルの価格で売ります。彼女は毎日市場でいくら手に入れていますか？\n'
        '\n'
        '### 応答：'
    ),
}


@needs_real
@pytest.mark.parametrize("key", list(PINNED))
def test_prompt_of_the_first_real_document(key):
    module = MODULES[key]
    docs, shots = module.load(REAL)
    task = LMEHTask(module.SPEC, docs, shots, engine=None)
    assert task.prompts(TEST, 1)[0] == PINNED[key]


@needs_real
@pytest.mark.parametrize("key, sizes", [("jcqa", (100, 1019)), ("jnli", (100, 2334)), ("jsquad", (100, 4342)),
                                        ("mgsm", (32, 250))])
def test_real_files_split_into_pool_and_evaluated(key, sizes):
    docs, shots = MODULES[key].load(REAL)
    assert (len(docs[SEARCH]), len(docs[TEST])) == sizes
    k = MODULES[key].SPEC.shots
    assert all(len(s) == k for s in shots[SEARCH] + shots[TEST])
    if key != "mgsm":  # a search document never is its own shot; test shots come from the pool
        assert all(all(x is not d for x in s) for d, s in zip(docs[SEARCH], shots[SEARCH], strict=True))
        pool = {id(d) for d in docs[SEARCH]}
        assert all(id(x) in pool for s in shots[TEST] for x in s)


def test_choice_scoring_by_hand():
    docs = [{"sentence1": "犬が走る。", "sentence2": "動物が走る。", "label": 0},
            {"sentence1": "猫が寝る。", "sentence2": "猫が走る。", "label": 1}]
    engine = FakeEngine(logprobs={"\n含意": -1.0, "\n矛盾": -2.0, "\n中立": -0.5})
    task = LMEHTask(jnli.SPEC, {SEARCH: docs[:1], TEST: docs}, {SEARCH: [[]], TEST: [[], []]}, engine)
    r = task.evaluate(None, TEST)
    assert [p["prediction"] for p in r.predictions] == [2, 2]  # 中立 has the highest log-likelihood
    assert r.scores.tolist() == [0.0, 0.0] and r.metrics == {"acc": 0.0}
    assert [q.continuation for q in engine.requests[:3]] == ["\n含意", "\n矛盾", "\n中立"]
    assert engine.requests[0].context.endswith("前提：犬が走る。\n仮説：動物が走る。\n\n### 応答：")
    engine.logprobs["\n矛盾"] = 0.0
    assert task.evaluate(None, TEST).scores.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("spec, completion, doc, expected", [
    (jsquad.SPEC, " 1492年\n", {"answers": {"text": ["1492年"]}}, ("1492年", 1.0)),
    (jsquad.SPEC, "1492", {"answers": {"text": ["1492年"]}}, ("1492", 0.0)),
    (mgsm.SPEC, "5+6=11。答えは11です。", {"answer_number": 11}, (11, 1.0)),
    (mgsm.SPEC, "答えは1,100", {"answer_number": 1100}, (1100, 1.0)),
    (mgsm.SPEC, "11個、答えは1.5", {"answer_number": 11}, (None, 0.0)),  # the last match decides
])
def test_generation_readers(spec, completion, doc, expected):
    assert spec.read(completion, doc) == expected


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_hub_schema_subtasks_on_generated_rows(tmp_path):
    n = 103  # three evaluated documents beside the pool of 100
    _write_jsonl(tmp_path / "marc_ja-valid.jsonl", [{"sentence": f"商品{i}は良い。", "label": i % 2} for i in range(n)])
    _write_jsonl(tmp_path / "jaqket_v2-valid.jsonl",
                 [{"question": f"問{i}", "answers": {"text": [f"答{i}"]}, "ctxs": {"text": [f"文{i}a", f"文{i}b"]}}
                  for i in range(n)])
    _write_jsonl(tmp_path / "xlsum_ja-test.jsonl", [{"text": f"記事{i}。", "summary": f"要約{i}"} for i in range(n)])
    _write_jsonl(tmp_path / "xwinograd_ja-test.jsonl",
                 [{"sentence1": f" 文A{i} ", "sentence2": f"文B{i}", "answer": "2"} for i in range(n)])
    docs, shots = marc_ja.load(tmp_path)
    assert (len(docs[SEARCH]), len(docs[TEST])) == (100, 3)
    assert marc_ja.SPEC.text(docs[TEST][0]) == (
        "### 指示：\n以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。\n\n"
        "### 入力：\n商品0は良い。\n\n### 応答：")
    assert marc_ja.SPEC.target(docs[TEST][1]) == "ネガティブ"
    docs, shots = jaqket.load(tmp_path)
    assert jaqket.SPEC.text(docs[TEST][2]) == (
        "### 指示：\n与えられた文脈から、質問に対する答えを抜き出してください。\n\n### 入力：\n文脈：文2a\n文2b\n質問：問2"
        "\n\n### 応答：")
    assert len(shots[TEST][0]) == 1
    docs, _ = xlsum.load(tmp_path)
    assert xlsum.SPEC.text(docs[TEST][0]) == (
        "### 指示：\n与えられたニュース記事を要約してください。\n\n### 入力：\nニュース記事：記事0。\n\n### 応答：")
    docs, shots = xwinograd.load(tmp_path)
    assert shots[TEST][0] == [] and xwinograd.SPEC.choices(docs[TEST][0]) == ["文A0", "文B0"]
    assert xwinograd.SPEC.label(docs[TEST][0]) == 1
    engine = FakeEngine(logprobs={"文A0": -3.0, "文B0": -4.0})
    task = LMEHTask(xwinograd.SPEC, {SEARCH: [], TEST: docs[TEST][:1]}, {SEARCH: [], TEST: [[]]}, engine)
    r = task.evaluate(None, TEST)
    assert r.predictions[0]["prediction"] == 0 and r.scores.tolist() == [0.0]
    assert engine.requests[0].context == ""  # no prompt: the sentence follows the prefix token alone


def test_bad_row_is_a_one_line_error(tmp_path):
    from evobench.lmdata import DataFormatError

    _write_jsonl(tmp_path / "marc_ja-valid.jsonl", [{"sentence": "良い", "label": "positive"}])
    with pytest.raises(DataFormatError, match="marc_ja-valid.jsonl: row 1: column 'label'") as e:
        marc_ja.load(tmp_path)
    assert "\n" not in str(e.value)


def test_missing_file_names_what_to_download(tmp_path):
    from evobench.lmdata import DataUnavailableError

    with pytest.raises(DataUnavailableError, match="no xlsum_ja-test.jsonl in .*mkshing/xlsum_ja") as e:
        xlsum.load(tmp_path)
    assert "\n" not in str(e.value)


def test_layout_is_round_robin():
    assert layout([3, 1, 2]) == [(0, 0), (1, 0), (2, 0), (0, 1), (2, 1), (0, 2)]
    assert layout([3, 1, 2], 4) == [(0, 0), (1, 0), (2, 0), (0, 1)]


def test_suite_scores_by_hand():
    def docs(n):
        return [{"sentence1": f"前提{i}", "sentence2": f"仮説{i}", "label": i % 3} for i in range(n)]

    engine = FakeEngine(logprobs={"\n含意": -1.0, "\n矛盾": -2.0, "\n中立": -3.0})  # always predicts 含意 (0)
    a = LMEHTask(jnli.SPEC, {SEARCH: docs(1), TEST: docs(3)}, {SEARCH: [[]], TEST: [[]] * 3}, engine)
    b = LMEHTask(marc_ja.SPEC, {SEARCH: [{"sentence": "x", "label": 0}], TEST: [{"sentence": "y", "label": 1}]},
                 {SEARCH: [[]], TEST: [[]]}, FakeEngine(logprobs={"\nポジティブ": -1.0, "\nネガティブ": -2.0}))
    suite = JPLMEHSuite([a, b])
    r = suite.evaluate(None, TEST)
    # order: jnli 0, marc 0, jnli 1, jnli 2; jnli right on doc 0 only (1/3), marc wrong (0/1)
    assert r.scores.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert [p["task"] for p in r.predictions] == ["jnli", "marc_ja", "jnli", "jnli"]
    assert r.metrics == {"avg": pytest.approx(1 / 6), "jnli": pytest.approx(1 / 3), "marc_ja": 0.0}
    assert suite.aggregate(r.scores) == pytest.approx(r.primary)
    r2 = suite.evaluate(None, TEST, limit=3)
    assert r2.scores.tolist() == [1.0, 0.0, 0.0] and r2.primary == pytest.approx(0.25)
    assert suite.aggregate(r2.scores) == pytest.approx(0.25)
    assert suite.split_sizes() == {SEARCH: 2, TEST: 4}
    assert len(suite.example_ids(TEST)) == 4


@pytest.mark.parametrize("options, message", [
    ({"subtasks": ["jcqa", "nope"]}, "unknown \\['nope'\\]"),
    ({"subtasks": "jcqa"}, "subtasks must be a non-empty list"),
    ({"subtasks": ["jcqa"], "search_path": "x.jsonl"}, "search_path applies only to the mgsm subtask"),
    ({"limit_test": 0}, "max_new_tokens|limit_test must be a positive integer"),
])
def test_suite_bad_options(options, message):
    with pytest.raises(ValueError, match=message) as e:
        jp_lmeh(**{"models": ["m"], **options})
    assert "\n" not in str(e.value)


def test_subtask_refuses_a_search_path():
    with pytest.raises(ValueError, match="search_path applies only to MGSM"):
        jcqa.jcqa(models=["m"], search_path="x.jsonl")


