"""A small generated search set of Japanese arithmetic word problems (the default search split).

The paper's search set (1,069 GSM8K train problems machine-translated to Japanese) is not
distributed; until a translated set is given (``search_path``), the MGSM tasks search on these
problems: six templates (addition, subtraction, multiplication, division, two steps, change),
filled from a ``random.Random(seed)`` draw, in the schema of the real rows (``question``,
``answer`` = a worked answer ending "答えは N です。", ``answer_number``, ``equation_solution``).
They are easier and more uniform than GSM8K: good enough to rank merges, not to report.
"""

from __future__ import annotations

import random
from typing import Any

NAMES = ("太郎", "花子", "健太", "さくら", "美咲", "翔太", "陽菜", "大輝")
ITEMS = (("りんご", "個"), ("鉛筆", "本"), ("ノート", "冊"), ("シール", "枚"), ("クッキー", "枚"), ("卵", "個"))


def _add(r: random.Random, name: str, item: str, unit: str) -> tuple[str, str, int]:
    a, b = r.randint(3, 40), r.randint(2, 30)
    return (f"{name}は{item}を{a}{unit}持っています。さらに{b}{unit}買いました。{item}は全部で何{unit}ですか？",
            f"{a} + {b} = {a + b}", a + b)


def _subtract(r: random.Random, name: str, item: str, unit: str) -> tuple[str, str, int]:
    b = r.randint(2, 30)
    a = b + r.randint(1, 40)
    return (f"{name}は{item}を{a}{unit}持っていました。友だちに{b}{unit}あげました。{item}は何{unit}残っていますか？",
            f"{a} - {b} = {a - b}", a - b)


def _multiply(r: random.Random, name: str, item: str, unit: str) -> tuple[str, str, int]:
    a, b = r.randint(2, 12), r.randint(2, 9)
    return (f"1箱に{item}が{a}{unit}入っています。{name}は{b}箱買いました。{item}は全部で何{unit}ですか？",
            f"{a} * {b} = {a * b}", a * b)


def _divide(r: random.Random, name: str, item: str, unit: str) -> tuple[str, str, int]:
    a, b = r.randint(2, 12), r.randint(2, 8)
    return (f"{name}は{a * b}{unit}の{item}を{b}人の友だちに同じ数ずつ分けます。1人あたり何{unit}になりますか？",
            f"{a * b} / {b} = {a}", a)


def _two_steps(r: random.Random, name: str, item: str, unit: str) -> tuple[str, str, int]:
    a, b, c = r.randint(5, 30), r.randint(2, 6), r.randint(3, 25)
    return (f"{name}は1時間に{a}ページ本を読みます。{b}時間読んだあと、さらに{c}ページ読みました。"
            "全部で何ページ読みましたか？", f"{a} * {b} + {c} = {a * b + c}", a * b + c)


def _change(r: random.Random, name: str, item: str, unit: str) -> tuple[str, str, int]:
    a, b = r.choice((80, 120, 150, 200, 250)), r.randint(2, 4)
    c = 1000 if a * b < 1000 else 5000
    return (f"{item}は1{unit}{a}円です。{name}は{b}{unit}買って、{c}円札で払いました。おつりは何円ですか？",
            f"{c} - {a} * {b} = {c - a * b}", c - a * b)


TEMPLATES = (_add, _subtract, _multiply, _divide, _two_steps, _change)


def generated_search_set(n: int = 32, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` problems, templates in turn, names/items/numbers from ``random.Random(seed)``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    r = random.Random(seed)
    rows = []
    for i in range(n):
        item, unit = r.choice(ITEMS)
        question, equation, number = TEMPLATES[i % len(TEMPLATES)](r, r.choice(NAMES), item, unit)
        rows.append({"question": question, "answer": f"{equation}。答えは{number}です。",
                     "answer_number": number, "equation_solution": equation})
    return rows
