"""WebShop data: the release's processing rules, the loader's one-line errors, the generated catalogue."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("rapidfuzz")

from evobench.lmdata.source import DataFormatError  # noqa: E402
from evobench.tasks.webshop.data import (  # noqa: E402
    WebShopDataMissing,
    build_catalogue,
    load_catalogue,
    parse_pricing,
    price_tag,
)
from evobench.tasks.webshop.generated import NOUNS, generated_catalogue, raw_files, write_files  # noqa: E402
from tests.webshop_helpers import NOUNS as TEST_NOUNS  # noqa: E402


def raw_product(asin="B000000001", **extra):
    p = {"asin": asin, "name": "Crunchwell Potato Chips", "category": "food", "query": " Potato Chips ",
         "product_category": "Food › Snacks › Chips", "full_description": "Crunchy.",
         "small_description": "Kettle cooked", "pricing": "$12.99", "images": [],
         "customization_options": {"Flavor Name": [{"value": "Sea Salt/Vinegar ", "image": None}],
                                   "Size": None}}
    p.update(extra)
    return p


def test_parse_pricing_as_the_original():
    assert parse_pricing("$12.99") == [12.99]
    assert parse_pricing("$10.99 - $15.99") == [10.99, 15.99]
    assert parse_pricing("$1,299.00") == [1299.0]
    assert parse_pricing("$1$2$3") == [1.0, 2.0]
    assert parse_pricing("") == [100.0] and parse_pricing(None) == [100.0]
    assert price_tag([12.99]) == "$12.99" and price_tag([10.0, 15.5]) == "$10.0 to $15.5"
    with pytest.raises(DataFormatError, match="cannot read a price"):
        parse_pricing("$abc")


def test_products_processed_as_the_original():
    raw = [raw_product(), raw_product(asin="nan"), raw_product(asin="B0000000012"), raw_product(),
           raw_product(asin="B000000002", pricing="$10 - $20", small_description=["a", "b"])]
    c = build_catalogue(raw, {"B000000002": {"attributes": ["vegan"]}}, {}, TEST_NOUNS, "raw", seed=0)
    assert [p.asin for p in c.products] == ["B000000001", "B000000002"]  # nan, 11 characters, repeat skipped
    p, q = c.products
    assert p.query == "potato chips" and p.bullet_points == ("Kettle cooked",) and q.bullet_points == ("a", "b")
    assert p.options == {"flavor name": ("sea salt | vinegar",)}  # stripped, "/" -> " | ", lower-cased
    assert p.attributes == ("DUMMY_ATTR",) and q.attributes == ("vegan",)
    assert (p.price, p.price_tag) == (12.99, "$12.99")
    # a range: one uniform draw from random.Random(seed), products in order
    assert q.price == random.Random(0).uniform(10.0, 20.0) and q.price_tag == "$10.0 to $20.0"


def test_goals_bounds_and_the_original_order():
    raw = [raw_product(asin=f"B00000000{i}", pricing=f"${price}") for i, price in enumerate([975, 985, 23.5, 5, 5, 5])]
    instructions = {f"B00000000{i}": [{"instruction": f"goal {i}.", "instruction_attributes": ["crunchy"],
                                       "instruction_options": ["sea salt"]}] for i in range(6)}
    instructions["B000000005"].append({"instruction": "no attributes", "instruction_attributes": [],
                                       "instruction_options": []})
    c = build_catalogue(raw, {}, instructions, TEST_NOUNS, "raw", seed=0)
    # random.seed(233); random.shuffle(goals) puts 6 goals in this order
    assert [g.asin[-1] for g in c.goals] == ["2", "0", "3", "4", "1", "5"]  # the goal without attributes is skipped
    by = {g.asin[-1]: g for g in c.goals}
    # 975: the first four multiples of 10 above are 980, 990 -> both drawn, the bound is 990
    assert by["0"].price_upper == 990.0
    assert by["0"].instruction_text == "goal 0, and price lower than 990.00 dollars"
    # 985: only 990 above (fewer than two): no bound text, bound 1,000,000
    assert by["1"].price_upper == 1000000.0 and by["1"].instruction_text == "goal 1"
    # 23.5: the larger of two of 30, 40, 50, 60
    assert by["2"].price_upper in (40.0, 50.0, 60.0) and by["2"].instruction_text.endswith(
        f"lower than {by['2'].price_upper:.2f} dollars")
    assert by["0"].goal_options == ("sea salt",) and by["0"].name == "Crunchwell Potato Chips"
    assert by["0"].query == "potato chips" and by["0"].product_category == "Food › Snacks › Chips"


def test_bad_rows_are_one_line_errors():
    cases = [([{"asin": "B1"}], {}, "no column 'small_description'"),
             ([{k: v for k, v in raw_product().items() if k != "name"}], {}, "row 0: no column 'name'"),
             ([raw_product(full_description=None)], {}, "column 'full_description'"),
             ([raw_product(customization_options={"Size": "large"})], {}, "option 'Size'"),
             ({"B1": {}}, {}, "expected a JSON list")]
    for raw, instructions, message in cases:
        with pytest.raises(DataFormatError, match=message) as e:
            build_catalogue(raw, {}, instructions, TEST_NOUNS, "items.json")
        assert "\n" not in str(e.value)
    with pytest.raises(DataFormatError, match="instruction_attributes"):
        build_catalogue([raw_product()], {}, {"B000000001": [{"instruction": "x", "instruction_attributes": "a",
                                                              "instruction_options": []}]}, TEST_NOUNS, "ins.json")


def test_missing_files_name_them_in_one_line(tmp_path):
    with pytest.raises(WebShopDataMissing) as e:
        load_catalogue(tmp_path, TEST_NOUNS)
    text = str(e.value)
    assert "\n" not in text
    assert all(n in text for n in ("items_shuffle.json", "items_ins_v2.json", "items_human_ins.json"))
    (tmp_path / "items_shuffle.json").write_text("[", encoding="utf-8")
    (tmp_path / "items_ins_v2.json").write_text("{}", encoding="utf-8")
    (tmp_path / "items_human_ins.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataFormatError, match="items_shuffle.json: not JSON"):
        load_catalogue(tmp_path, TEST_NOUNS)


def test_generated_catalogue_is_deterministic_and_reads_back_from_the_release_files(tmp_path):
    c = generated_catalogue(0)
    assert len(c.products) == 100 and len(c.goals) == 196
    assert len({g.instruction_text for g in c.goals}) == len(c.goals)
    assert raw_files(0) == raw_files(0) and raw_files(1) != raw_files(0)
    write_files(tmp_path)
    raw = json.loads((tmp_path / "items_shuffle.json").read_text(encoding="utf-8"))
    assert set(raw[0]) >= {"asin", "name", "category", "query", "product_category", "full_description",
                           "small_description", "pricing", "customization_options"}
    back = load_catalogue(tmp_path, NOUNS, seed=0)
    assert back.products == c.products and back.goals == c.goals
    assert back.fingerprint() == c.fingerprint() != generated_catalogue(1).fingerprint()
    for g in c.goals:  # each goal's target has its attributes and options
        p = c.by_asin[g.asin]
        assert set(g.attributes) <= set(p.attributes) and g.price_upper > p.price
        assert all(any(o in vals for vals in p.options.values()) for o in g.goal_options)
