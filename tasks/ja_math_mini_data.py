"""ja-math-mini data: arithmetic word problems from templates (English and Japanese), fixed seeds.

A problem is ``a + b`` (a, b in 1..9) or ``a - b`` (a = b + c; b, c in 1..9), told as a short word
problem about a person and some items. Every text used anywhere is generated here:

- the task's problems (Japanese, distinct texts; by default 64 search / 128 test);
- the base model's bilingual pretraining text: problems in English and in Japanese, each followed
  by its language-neutral equation with a RANDOM result, ``a + b = n`` -- no computed answer anywhere;
- the math specialist's fine-tuning text: correct worked answers ``a + b = c`` (no Japanese) to
  English problems, to bare equations (a share ``bare``) and to Japanese problems (a share
  ``other_language``);
- the Japanese specialist's fine-tuning text: Japanese problems answered ``a + b = n個`` -- the
  equation with a random result ``n`` followed by the problem's counter word (個, 本, 冊, 枚): it
  learns the Japanese frame, not arithmetic.

The only Japanese-specific thing an answer has is the counter after the result; the only skill the
math specialist adds is the result. No training text repeats one of the first :data:`MAX_PROBLEMS`
task problems. Prompts are ``Q: {problem}\nA:``; completions start with a space.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

PROMPT = "Q: {q}\nA:"
NUMBERS = range(1, 10)
MAX_PROBLEMS = 512  # task problems reserved (never in a training text): n_search + n_test <= this

NAMES = (("Tom", "太郎"), ("Anna", "花子"), ("Ken", "健"), ("Mary", "美咲"), ("Sam", "翔太"),
         ("Lucy", "さくら"), ("Bob", "大輔"), ("Emma", "ゆい"))
# (English plural, Japanese noun, Japanese counter)
ITEMS = (("apples", "りんご", "個"), ("pens", "ペン", "本"), ("books", "本", "冊"), ("cards", "カード", "枚"),
         ("eggs", "たまご", "個"), ("flowers", "花", "本"), ("stickers", "シール", "枚"), ("candies", "あめ", "個"))
TEMPLATES = {
    ("en", "+"): ("{n} has {a} {i}. {n} buys {b} more. How many {i} does {n} have now?",
                  "{n} has {a} {i} and gets {b} more {i}. How many {i} does {n} have in all?"),
    ("en", "-"): ("{n} has {a} {i} and gives {b} to a friend. How many {i} are left?",
                  "{n} has {a} {i}. {n} loses {b} of them. How many {i} does {n} have now?"),
    ("ja", "+"): ("{n}は{i}を{a}{c}持っています。さらに{b}{c}買いました。{i}は全部で何{c}ですか。",
                  "{n}は{i}を{a}{c}持っています。{b}{c}もらいました。{i}は全部で何{c}になりましたか。"),
    ("ja", "-"): ("{n}は{i}を{a}{c}持っています。友だちに{b}{c}あげました。{i}は何{c}残っていますか。",
                  "{n}は{i}を{a}{c}持っています。{b}{c}なくしました。{i}は何{c}残っていますか。"),
}

_NUMBER = re.compile(r"\d*\.?\d+")  # MGSM's answer reading: the last match, as a number
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class WordProblem:
    lang: str  # "en" or "ja"
    op: str  # "+" or "-"
    a: int
    b: int
    text: str
    unit: str = ""  # the Japanese counter word of the items (個, 本, 冊, 枚)

    @property
    def answer(self) -> int:
        return self.a + self.b if self.op == "+" else self.a - self.b

    @property
    def equation(self) -> str:
        return f"{self.a} {self.op} {self.b}"

    @property
    def prompt(self) -> str:
        return PROMPT.format(q=self.text)


def make_problem(rng: random.Random, lang: str, op: str | None = None) -> WordProblem:
    """One random problem in ``lang`` (the operation too is drawn unless given)."""
    op = op or rng.choice("+-")
    x, y = rng.choice(NUMBERS), rng.choice(NUMBERS)
    a, b = (x, y) if op == "+" else (x + y, y)
    en_name, ja_name = rng.choice(NAMES)
    en_item, ja_item, counter = rng.choice(ITEMS)
    template = rng.choice(TEMPLATES[(lang, op)])
    if lang == "en":
        text = template.format(n=en_name, i=en_item, a=a, b=b)
    else:
        text = template.format(n=ja_name, i=ja_item, c=counter, a=a, b=b)
    return WordProblem(lang, op, a, b, text, counter)


def task_problems(n: int = MAX_PROBLEMS) -> list[WordProblem]:
    """The first ``n`` task problems (Japanese, distinct texts, additions and subtractions alternating)."""
    rng = random.Random("ja-math-mini-task")
    seen: set[str] = set()
    out: list[WordProblem] = []
    while len(out) < n:
        p = make_problem(rng, "ja", "+" if len(out) % 2 == 0 else "-")
        if p.text not in seen:
            seen.add(p.text)
            out.append(p)
    return out


def task_splits(n_search: int = 64, n_test: int = 128) -> dict[str, list[WordProblem]]:
    """The task's splits: the first ``n_search`` task problems, then the next ``n_test``."""
    problems = task_problems(n_search + n_test)
    return {"search": problems[:n_search], "test": problems[n_search:]}


def training_texts(kind: str, n: int, seed: int, exclude: set[str], bare: float = 0.0,
                   other_language: float = 0.0) -> list[tuple[str, str]]:
    """``n`` training texts ``(prompt, completion)`` for one stage, never on a problem text in ``exclude``.

    ``kind``: ``"base"`` (English and Japanese problems, each followed by its equation with a random
    result ``a + b = n``), ``"en"`` (problems with correct results ``a + b = c``: English ones, a share
    ``bare`` of bare equations and a share ``other_language`` of Japanese problems) or ``"ja"``
    (Japanese problems answered ``a + b = n`` + the counter word, ``n`` random: the frame, no arithmetic).
    """
    rng = random.Random(f"ja-math-mini-{kind}-{seed}")
    out: list[tuple[str, str]] = []
    while len(out) < n:
        lang = rng.choice(("en", "ja")) if kind == "base" else kind
        if kind == "en" and rng.random() < other_language:
            lang = "ja"
        p = make_problem(rng, lang)
        if p.text in exclude:
            continue
        if kind == "en" and rng.random() < bare:  # a bare equation: arithmetic without words
            p = WordProblem("en", p.op, p.a, p.b, p.equation)
        if kind == "en":
            completion = f" {p.equation} = {p.answer}"
        else:
            guess = rng.randint(0, 18)  # a random result: no arithmetic is ever trained
            completion = f" {p.equation} = {guess}" + (p.unit if kind == "ja" else "")
        out.append((p.prompt, completion))
    return out


def read_number(completion: str) -> float | None:
    """The last number in ``completion`` (MGSM's rule: last match of ``\\d*\\.?\\d+``), or None."""
    found = _NUMBER.findall(completion)
    return float(found[-1]) if found else None


def is_japanese(completion: str) -> bool:
    """Japanese answer: at least one kana or kanji character and no Latin letter."""
    return bool(_JAPANESE.search(completion)) and not _LATIN.search(completion)


def check_answer(completion: str, answer: int) -> tuple[bool, bool]:
    """(correct, correct and Japanese): the last number equals ``answer``; and the answer is in Japanese."""
    correct = read_number(completion) == float(answer)
    return correct, correct and is_japanese(completion)
