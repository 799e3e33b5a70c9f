"""The WebShop reward, one hand-computed case per rule of the original's goal.py."""

from __future__ import annotations

import pytest

pytest.importorskip("rapidfuzz")

from evobench.tasks.webshop.reward import (  # noqa: E402
    LexiconNouns,
    SpacyNouns,
    attribute_matches,
    fuzzy_match,
    normalize_color,
    option_matches,
    reward,
    token_set_ratio,
    type_reward,
)
from tests.webshop_helpers import NOUNS, goal, product  # noqa: E402

# ---- fuzzy matching ------------------------------------------------------------------------------


def test_token_set_ratio_by_hand():
    # no shared token: the Indel ratio of the two strings, 2 * LCS / (len a + len b)
    assert token_set_ratio("a" * 17 + "xxx", "a" * 17 + "yyy") == 85  # 34 / 40
    assert token_set_ratio("a" * 18 + "xx", "a" * 18 + "yy") == 90  # 36 / 40
    # 40 / 47 = 85.1 is rounded to 85 before the comparison, as thefuzz returns integers
    assert token_set_ratio("a" * 20 + "xxx", "a" * 20 + "yyyy") == 85
    # shared "essential": the best of sect+"oil" vs sect+"oils" = 2 * 13 / 27 = 96.3
    assert token_set_ratio("essential oil", "essential oils") == 96
    # one token set inside the other: 100
    assert token_set_ratio("powder snow", "cool powder snow") == 100
    # case and punctuation do not count; characters 128-255 are dropped ("naïve" -> "nave"; 8/9 with it)
    assert token_set_ratio("Tea-Tree", "tea tree") == 100
    assert token_set_ratio("naïve", "nave") == 100


def test_a_match_is_above_85():
    assert not fuzzy_match("a" * 17 + "xxx", "a" * 17 + "yyy")  # exactly 85
    assert not fuzzy_match("a" * 20 + "xxx", "a" * 20 + "yyyy")  # 85.1, rounded to 85
    assert fuzzy_match("a" * 18 + "xx", "a" * 18 + "yy")  # 90


# ---- attributes ------------------------------------------------------------------------------------


def test_attributes_fuzzy_then_title_bullets_description():
    p = product(title="Crunchwell Kettle Chips", attributes=("essential oil", "tea tree"),
                bullet_points=("Made VEGAN in small batches",), description="With Natural Ingredients only.")
    # essential oils: fuzzy 96 on "essential oil"; kettle: in the title; vegan: in the bullets;
    # natural ingredients: in the description; gluten free: nowhere
    wanted = ["essential oils", "kettle", "vegan", "natural ingredients", "gluten free"]
    assert attribute_matches(p, wanted) == 4
    assert attribute_matches(p, ["gluten free"]) == 0
    # the substring rule compares the goal attribute as it is with the lower-cased texts
    assert attribute_matches(p, ["Vegan"]) == 0


# ---- options ---------------------------------------------------------------------------------------


def test_colors_reduce_to_the_first_listed_colour():
    assert normalize_color("navy blue") == "blue"  # "blue" comes before "navy" in the list
    assert normalize_color("light grey") == "grey"  # "grey" before "light"
    assert normalize_color("dark green") == "dark"  # "dark" before "green"
    assert normalize_color("sour cream and onion") == "cream"
    assert normalize_color("sea salt") == "sea salt"


def test_option_matches_by_hand():
    assert option_matches(["pack of 12", "grey", "xl"], ["grey", "xl", "pack of 12"]) == 3
    assert option_matches(["pack of 12", "blue", "xl"], ["grey", "xl", "pack of 12"]) == 2
    assert option_matches(["navy blue"], ["blue"]) == 1  # both "blue"
    assert option_matches(["dark green"], ["green"]) == 0  # "dark" vs "green": 2 * 1 / 9
    assert option_matches(["powder snow"], ["cool powder snow"]) == 1
    assert option_matches([], ["grey"]) == 0
    assert option_matches(["grey"], []) == 0


# ---- type ------------------------------------------------------------------------------------------


def _type(p_title, g_name, p_query="q1", g_query="q1", p_cat="a › b › c", g_cat="a › b › c"):
    return type_reward(product(title=p_title, query=p_query, product_category=p_cat),
                       goal(name=g_name, query=g_query, product_category=g_cat), NOUNS)


def test_type_reward_rules():
    other_cat = "x › y › z"
    # same query, same title: 1
    t = _type("Crunchwell Potato Chips", "Crunchwell Potato Chips")
    assert (t.r_type, t.query_match, t.category_match, t.title_score) == (1.0, True, True, 1.0)
    # only the breadcrumb shares two levels, title 1/8 (>= 0.1): 1
    t = _type("Crunchwell", "crunchwell chips potato bar bars shampoo widget ounce", p_query="q2",
              p_cat="a › b › d")
    assert (t.r_type, t.query_match, t.category_match, t.title_score) == (1.0, False, True, 0.125)
    # a breadcrumb sharing one level is no category match; title 1/4 > 0.2 alone gives 1
    t = _type("Potato Snack", "Crunchwell Potato Chips Bag", p_query="q2", p_cat="a › x › y")
    assert (t.r_type, t.category_match, t.title_score) == (1.0, False, 0.25)
    # title exactly 0.2 and nothing else: 0.5
    t = _type("Potato", "Crunchwell Potato Chips Bag Box", p_query="q2", p_cat=other_cat)
    assert (t.r_type, t.title_score) == (0.5, 0.2)
    # same query but title 1/11 < 0.1: 0.1
    t = _type("Potato", "potato chips bar bars shampoo crunchwell widget ounce pack box tin")
    assert t.r_type == 0.1 and t.title_score == pytest.approx(1 / 11)
    # same query and category but no title noun in common: 0
    t = _type("Shampoo", "Crunchwell Potato Chips")
    assert (t.r_type, t.title_score) == (0.0, 0.0)
    # a goal title without nouns: title score 0.2 -> 1 with a query match, 0.5 without any match
    assert _type("Shampoo", "Very Good Stuff").r_type == 1.0
    t = _type("Shampoo", "Very Good Stuff", p_query="q2", p_cat=other_cat)
    assert (t.r_type, t.title_score) == (0.5, 0.2)
    # repeated goal nouns count in the denominator: potato / (chips, chips, potato)
    assert _type("Potato Snack", "Chips Chips Potato").title_score == pytest.approx(1 / 3)
    # breadcrumb levels are compared as sets: "a › a › b" vs "a › b" share two
    assert _type("Shampoo", "Crunchwell", p_query="q2", p_cat="a › a › b", g_cat="a › b").category_match


# ---- the total -------------------------------------------------------------------------------------


def test_total_reward_by_hand():
    p = product(title="Crunchwell Potato Chips", attributes=("gluten free",), options={"size": ["5 ounce"]})
    g = goal(attributes=("gluten free", "vegan"), goal_options=("5 ounce", "sea salt"), price_upper=20.0)
    # 1 attribute + 1 option + price, out of 2 + 2 + 1, times r_type 1
    r = reward(p, g, 15.0, {"size": "5 ounce"}, NOUNS)
    assert r.reward == pytest.approx(3 / 5) and (r.attribute_matches, r.option_matches, r.price_ok) == (1, 1, True)
    # over the bound: 2 / 5
    assert reward(p, g, 20.01, {"size": "5 ounce"}, NOUNS).reward == pytest.approx(2 / 5)
    # at the bound: the price counts
    assert reward(p, g, 20.0, {}, NOUNS).reward == pytest.approx(2 / 5)
    # r_type 0.5 (other query and breadcrumb, title 1/5): 3/5 * 0.5
    q = product(title="Crunchwell Snack", query="snacks", product_category="x › y › z",
                attributes=("gluten free",))
    g5 = goal(name="Crunchwell Potato Chips Bag Box", attributes=("gluten free", "vegan"),
              goal_options=("5 ounce", "sea salt"))
    r = reward(q, g5, 15.0, {"size": "5 ounce"}, NOUNS)
    assert (r.r_type, r.reward) == (0.5, pytest.approx(0.3))
    # no goal options: (attributes + price) / (attributes + 1)
    assert reward(p, goal(attributes=("gluten free",)), 5.0, {}, NOUNS).reward == 1.0


def test_lexicon_nouns():
    nouns = LexiconNouns(["chips", "pack"])
    assert nouns("Potato Chips (Pack of 2), chips") == ["chips", "pack", "chips"]
    with pytest.raises(ValueError, match="single lower-case words"):
        LexiconNouns(["two words"])


def test_spacy_nouns_say_how_to_install_in_one_line():
    try:
        import spacy

        spacy.load("en_core_web_sm")
        pytest.skip("spaCy's en_core_web_sm is installed")
    except (ModuleNotFoundError, OSError):
        pass
    with pytest.raises(ValueError) as e:
        SpacyNouns()("Potato Chips")
    assert "en_core_web_sm" in str(e.value) and "\n" not in str(e.value)
