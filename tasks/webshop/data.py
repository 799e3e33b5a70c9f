"""The released WebShop data read from a local folder, processed as the original's ``load_products``
and ``get_human_goals`` (``web_agent_site/engine/engine.py``, ``goal.py``).

Files (from the release's ``setup.sh``): products ``items_shuffle.json`` (or the 1,000-product
``items_shuffle_1000.json``), their annotated attributes ``items_ins_v2.json`` (or
``items_ins_v2_1000.json``) and the human instructions ``items_human_ins.json``.

- **Products**, in file order: an ASIN that is ``nan`` or longer than 10 characters, or seen before,
  is skipped; title = ``name``, description = ``full_description``, bullet points =
  ``small_description`` (a string is one bullet); ``query`` lower-cased and stripped; ``pricing``
  text split at ``$``, every part's digits and dots read as a number, at most the first two kept
  (tag ``$a`` or ``$a to $b``; none: ``[100.0]``, ``$100.0``); options from
  ``customization_options`` (name lower-cased; each value stripped, ``/`` → `` | ``, lower-cased);
  attributes from ``items_ins_v2`` (``["DUMMY_ATTR"]`` when absent).
- **Price paid**: the one price, or one uniform draw in a range (``random.Random(seed)``, products
  in order; the original draws unseeded).
- **Goals**: every human instruction with at least one attribute, products in order; instruction
  text = the instruction without end dots, plus ``, and price lower than B.00 dollars``; the bound B
  is the larger of two draws from the first four multiples of 10 above the price (no text and a bound
  of 1,000,000 when fewer than two exist; same seeded generator, after the prices); then the goals
  are shuffled by ``random.Random(233)``, which gives the original order. The first 500 are the test
  goals, the next 1,000 the original's evaluation goals (the search goals here).

Every file and row is checked on the way in; a problem is one line naming the file and the row.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from evobench.lmdata.source import DataFormatError
from evobench.tasks.webshop.schema import Catalogue, Goal, NounParser, Product

PRICE_RANGE = [10.0 * i for i in range(1, 100)]
GOAL_SHUFFLE_SEED = 233
N_TEST_GOALS = 500  # the original's test goals: the first 500
N_EVAL_GOALS = 1000  # its evaluation goals: the next 1,000
FILES = {"products": ("items_shuffle.json", "items_shuffle_1000.json"),
         "attributes": ("items_ins_v2.json", "items_ins_v2_1000.json"),
         "instructions": ("items_human_ins.json",)}


class WebShopDataMissing(ValueError):
    """The released files are not where they were looked for (one line naming them)."""


def _text(where: str, row: Any, key: str, value: Any, allow_empty: bool = True) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise DataFormatError(f"{where}: row {row}: column {key!r}: expected a"
                              f"{'' if allow_empty else ' non-empty'} string, got {value!r}")
    return value


def _field(where: str, row: Any, item: Mapping, key: str) -> Any:
    if key not in item:
        raise DataFormatError(f"{where}: row {row}: no column {key!r}")
    return item[key]


def parse_pricing(text: Any, where: str = "pricing", row: Any = 0) -> list[float]:
    """The original's price parse: ``"$12.99"`` → [12.99], ``"$10.99 - $15.99"`` → [10.99, 15.99],
    empty or None → [100.0]."""
    if text is None or text == "" or text == []:
        return [100.0]
    if not isinstance(text, str):
        raise DataFormatError(f"{where}: row {row}: column 'pricing': expected a string, got {text!r}")
    out = []
    for part in text.split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", part)
        try:
            out.append(float(Decimal(digits)))
        except InvalidOperation:
            raise DataFormatError(f"{where}: row {row}: column 'pricing': cannot read a price in {text!r}") from None
    if not out:
        raise DataFormatError(f"{where}: row {row}: column 'pricing': no $ price in {text!r}")
    return out[:2]


def price_tag(pricing: list[float]) -> str:
    return f"${pricing[0]}" if len(pricing) == 1 else f"${pricing[0]} to ${pricing[1]}"


def _options(where: str, row: Any, raw: Any) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise DataFormatError(f"{where}: row {row}: column 'customization_options': expected an object, got {raw!r}")
    options: dict[str, tuple[str, ...]] = {}
    for name, contents in raw.items():
        if contents is None:
            continue
        if not isinstance(contents, list) or not all(isinstance(c, Mapping) and "value" in c for c in contents):
            raise DataFormatError(f"{where}: row {row}: column 'customization_options': option {name!r} must be a "
                                  "list of objects with a 'value'")
        options[name.lower()] = tuple(_text(where, row, "value", c["value"]).strip().replace("/", " | ").lower()
                                      for c in contents)
    return options


def process_products(raw: Any, attributes: Any, where: str, rng: random.Random) -> list[Product]:
    """Products from the raw product list and the attribute file (module docstring)."""
    if not isinstance(raw, list):
        raise DataFormatError(f"{where}: expected a JSON list of products, got {type(raw).__name__}")
    if not isinstance(attributes, Mapping):
        raise DataFormatError(f"{where}: the attribute file must be a JSON object keyed by ASIN")
    seen: set[str] = set()
    out = []
    for i, p in enumerate(raw):
        if not isinstance(p, Mapping):
            raise DataFormatError(f"{where}: row {i}: expected an object, got {type(p).__name__}")
        asin = _text(where, i, "asin", _field(where, i, p, "asin"))
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        bullets = _field(where, i, p, "small_description")
        bullets = bullets if isinstance(bullets, list) else [bullets]
        pricing = parse_pricing(p.get("pricing"), where, i)
        price = pricing[0] if len(pricing) == 1 else rng.uniform(*pricing)
        attrs = attributes.get(asin, {})
        attrs = attrs.get("attributes") if isinstance(attrs, Mapping) and "attributes" in attrs else ["DUMMY_ATTR"]
        if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
            raise DataFormatError(f"{where}: attributes of {asin}: expected a list of strings, got {attrs!r}")
        out.append(Product(
            asin=asin, title=_text(where, i, "name", _field(where, i, p, "name")),
            category=_text(where, i, "category", _field(where, i, p, "category")),
            query=_text(where, i, "query", _field(where, i, p, "query")).lower().strip(),
            product_category=_text(where, i, "product_category", _field(where, i, p, "product_category")),
            description=_text(where, i, "full_description", _field(where, i, p, "full_description")),
            bullet_points=tuple(_text(where, i, "small_description", b) for b in bullets),
            attributes=tuple(attrs), options=_options(where, i, p.get("customization_options")),
            pricing=tuple(pricing), price_tag=price_tag(pricing), price=price))
    return out


def human_goals(products: list[Product], instructions: Any, where: str, rng: random.Random) -> list[Goal]:
    """The goals of the human instructions in the original order (module docstring)."""
    if not isinstance(instructions, Mapping):
        raise DataFormatError(f"{where}: expected a JSON object keyed by ASIN")
    goals = []
    for p in products:
        entries = instructions.get(p.asin, [])
        if not isinstance(entries, list):
            raise DataFormatError(f"{where}: {p.asin}: expected a list of instructions, got {type(entries).__name__}")
        for j, ins in enumerate(entries):
            row = f"{p.asin}[{j}]"
            if not isinstance(ins, Mapping):
                raise DataFormatError(f"{where}: row {row}: expected an object")
            attrs = _field(where, row, ins, "instruction_attributes")
            opts = _field(where, row, ins, "instruction_options")
            for key, v in (("instruction_attributes", attrs), ("instruction_options", opts)):
                if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
                    raise DataFormatError(f"{where}: row {row}: column {key!r}: expected a list of strings, got {v!r}")
            if not attrs:
                continue
            text = _text(where, row, "instruction", _field(where, row, ins, "instruction"), allow_empty=False)
            bounds = [b for b in PRICE_RANGE if b > p.price][:4]
            if len(bounds) >= 2:
                upper = sorted(rng.sample(bounds, 2))[1]
                text = text.strip(".") + f", and price lower than {upper:.2f} dollars"
            else:
                upper, text = 1000000.0, text.strip(".")
            goals.append(Goal(asin=p.asin, category=p.category, query=p.query, name=p.title,
                              product_category=p.product_category, instruction_text=text,
                              attributes=tuple(attrs), goal_options=tuple(opts), price_upper=upper))
    random.Random(GOAL_SHUFFLE_SEED).shuffle(goals)
    return goals


def build_catalogue(products: Any, attributes: Any, instructions: Any, nouns: NounParser, source: str,
                    seed: int = 0) -> Catalogue:
    """A catalogue from the three files' parsed contents (prices and bounds drawn from ``seed``)."""
    rng = random.Random(seed)
    items = process_products(products, attributes, source, rng)
    return Catalogue(items, human_goals(items, instructions, source, rng), nouns, source)


def find_files(data_dir: str | os.PathLike) -> dict[str, Path]:
    """The three files in ``data_dir`` (the full release first, else the 1,000-product one)."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise WebShopDataMissing(f"webshop: data_dir: no such directory: {folder}")
    full = all((folder / names[0]).is_file() for names in FILES.values())
    small = all((folder / names[-1]).is_file() for names in FILES.values())
    if not (full or small):
        raise WebShopDataMissing(
            f"webshop: {folder} lacks the WebShop data: put items_shuffle.json (or items_shuffle_1000.json), "
            "items_ins_v2.json (or items_ins_v2_1000.json) and items_human_ins.json there "
            "(the files princeton-nlp/WebShop's setup.sh downloads)")
    pick = 0 if full else -1
    return {kind: folder / names[pick] for kind, names in FILES.items()}


def _read(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None


def load_catalogue(data_dir: str | os.PathLike, nouns: NounParser, seed: int = 0) -> Catalogue:
    """The released catalogue and goals from ``data_dir`` (see :func:`find_files`)."""
    files = find_files(data_dir)
    return build_catalogue(_read(files["products"]), _read(files["attributes"]), _read(files["instructions"]),
                           nouns, str(files["products"]), seed)
