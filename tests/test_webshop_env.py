"""The WebShop environment: BM25 search, pages in text mode, the page flow, invalid actions, the step limit."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("bm25s")
pytest.importorskip("Stemmer")

from evobench.tasks.webshop.env import WebShop, parse_action, run_episodes  # noqa: E402
from evobench.tasks.webshop.search import SearchEngine, document  # noqa: E402
from tests.webshop_helpers import catalogue, goal, product  # noqa: E402

INSTRUCTION = "i need gluten free potato chips, and price lower than 20.00 dollars"


def _widgets(n=23):
    """n products that all match "widget", in catalogue order, plus the goal's chips."""
    items = [product(asin=f"B00000W{i:03d}", title=f"Widget Number {i}", query="widget", price=1.0 + i)
             for i in range(n)]
    chips = product(asin="B0000CHIPS", title="Crunchwell Potato Chips", description="Crunchy and salty.",
                    bullet_points=("Kettle cooked", "Gluten free"), pricing=(8.5, 12.0), price=9.25,
                    options={"flavor name": ["sea salt", "barbecue"], "size": ["5 ounce", "8 ounce"]})
    return items + [chips]


@pytest.fixture(scope="module")
def shop():
    return WebShop(catalogue(_widgets(), [goal(asin="B0000CHIPS", instruction_text=INSTRUCTION)]))


def _session(shop):
    return shop.session(shop.catalogue.goals[0])


# ---- search --------------------------------------------------------------------------------------


def _lucene_bm25(docs: list[list[str]], query: list[str], k1=0.9, b=0.4) -> np.ndarray:
    """Lucene's BM25 (8.0 on, without the constant k1 + 1 factor) written out: the sum over query terms
    of idf * tf / (tf + k1 (1 - b + b dl / avgdl)), idf = ln(1 + (n - df + 0.5) / (df + 0.5))."""
    n, avgdl = len(docs), sum(len(d) for d in docs) / len(docs)
    out = np.zeros(n)
    for term in query:
        df = sum(term in d for d in docs)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, d in enumerate(docs):
            tf = d.count(term)
            out[i] += idf * tf / (tf + k1 * (1 - b + b * len(d) / avgdl))
    return out


def test_bm25_scores_are_lucenes_on_stems_without_stop_words():
    items = [product(asin="B1", title="Potato Chips", query="a"),
             product(asin="B2", title="Chips and chips for the party", query="a"),
             product(asin="B3", title="Shampoo for dry hair", query="a", options={"size": ["8 fl oz"]})]
    engine = SearchEngine(items)
    assert document(items[2]) == "shampoo for dry hair   size: 8 fl oz"
    # Porter stems; "and", "for", "the" are Lucene stop words
    docs = [["potato", "chip"], ["chip", "chip", "parti"], ["shampoo", "dry", "hair", "size", "8", "fl", "oz"]]
    assert np.allclose(engine.scores("the potato chips"), _lucene_bm25(docs, ["potato", "chip"]), rtol=1e-5)
    assert engine.search("the potato chips") == [0, 1]  # B3 shares no term: not a hit
    assert engine.search("the and") == [] and engine.search("zzz") == []


def test_a_query_term_that_stems_to_nothing_is_no_term():
    """Porter stems a lone "s" (as in "chip's") to the empty string, which bm25s keeps as a
    vocabulary placeholder with no column in the index: such a term is ignored, never a crash."""
    items = [product(asin="B1", title="Potato Chips", query="a"), product(asin="B2", title="Hair oil", query="a")]
    engine = SearchEngine(items)
    assert engine.search("it's") == [] and engine.search("s") == []
    assert engine.search("chip's") == engine.search("chips") == [0]
    np.testing.assert_array_equal(engine.scores("potato s chips"), engine.scores("potato chips"))


def test_search_returns_at_most_50_ties_in_catalogue_order():
    items = [product(asin=f"B{i:04d}", title="Widget", query="w") for i in range(60)]
    assert SearchEngine(items).search("widget") == list(range(50))


# ---- pages ---------------------------------------------------------------------------------------


def test_pages_in_text_mode(shop):
    s = _session(shop)
    assert s.observation == f"WebShop [SEP] Instruction: [SEP] {INSTRUCTION} [SEP] Search"
    assert s.available_actions() == {"has_search_bar": True, "clickables": []}
    step = s.step("search[Widget]")
    assert step.valid and not step.done and step.reward == 0.0
    first = " [SEP] ".join(f"B00000W{i:03d} [SEP] Widget Number {i} [SEP] ${1.0 + i}" for i in range(10))
    assert s.observation == (f"Instruction: [SEP] {INSTRUCTION} [SEP] Back to Search [SEP] "
                             f"Page 1 (Total results: 23) [SEP] Next > [SEP] {first}")
    assert s.available_actions()["clickables"] == ["back to search", "next >"] + [f"b00000w{i:03d}" for i in range(10)]
    s.step("click[Next >]")
    s.step("click[next >]")
    third = " [SEP] ".join(f"B00000W{i:03d} [SEP] Widget Number {i} [SEP] ${1.0 + i}" for i in range(20, 23))
    assert s.observation == (f"Instruction: [SEP] {INSTRUCTION} [SEP] Back to Search [SEP] "
                             f"Page 3 (Total results: 23) [SEP] < Prev [SEP] Next > [SEP] {third}")
    s.step("click[next >]")  # past the end: an empty page, Next > still there
    assert s.observation.endswith("Page 4 (Total results: 23) [SEP] < Prev [SEP] Next >")
    assert s.action_list() == ["click[back to search]", "click[< prev]", "click[next >]"]


def test_item_and_sub_pages(shop):
    s = _session(shop)
    s.step("search[potato chips]")
    assert s.step("click[b0000chips]").valid
    head = f"Instruction: [SEP] {INSTRUCTION} [SEP] Back to Search [SEP] < Prev"
    assert s.observation == (f"{head} [SEP] flavor name [SEP] sea salt [SEP] barbecue [SEP] size [SEP] 5 ounce "
                             "[SEP] 8 ounce [SEP] Crunchwell Potato Chips [SEP] Price: $8.5 to $12.0 [SEP] "
                             "Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now")
    assert s.action_list() == ["click[back to search]", "click[< prev]", "click[sea salt]", "click[barbecue]",
                               "click[5 ounce]", "click[8 ounce]", "click[description]", "click[features]",
                               "click[reviews]", "click[buy now]"]
    s.step("click[Description]")
    assert s.observation == f"{head} [SEP] Crunchy and salty."
    s.step("click[< prev]")
    s.step("click[features]")
    assert s.observation == f"{head} [SEP] Kettle cooked [SEP] Gluten free"
    s.step("click[< prev]")
    s.step("click[reviews]")
    assert s.observation == head  # the release loads no reviews
    assert s.action_list() == ["click[back to search]", "click[< prev]"]


def test_page_flow_options_and_purchase(shop):
    s = _session(shop)
    s.step("search[potato chips]")
    s.step("click[b0000chips]")
    s.step("click[barbecue]")
    s.step("click[sea salt]")  # replaces barbecue: one value per option name
    s.step("click[8 ounce]")
    assert s.options == {"flavor name": "sea salt", "size": "8 ounce"}
    s.step("click[< prev]")  # back to the results: the choice is dropped, as the original's results page does
    assert s.page == "results" and s.options == {} and s.asin is None
    s.step("click[b0000chips]")
    s.step("click[sea salt]")
    s.step("click[description]")
    s.step("click[< prev]")  # from a sub page back to the item: the choice stays
    assert s.page == "item" and s.options == {"flavor name": "sea salt"}
    step = s.step("click[Buy Now]")
    # gluten free is in the bullets; no goal options; paid 9.25 <= 20: (1 + 0 + 1) / (1 + 0 + 1)
    assert step.done and step.reward == 1.0 and s.ended == "buy" and s.outcome.price_ok
    assert s.observation == "Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] 1.0"
    with pytest.raises(ValueError, match="is over"):
        s.step("click[buy now]")


def test_back_to_search_starts_over(shop):
    s = _session(shop)
    s.step("search[widget]")
    s.step("click[next >]")
    s.step("click[b00000w012]")
    s.step("click[back to search]")
    assert s.page == "search" and s.keywords is None and s.asin is None
    s.step("search[widget]")
    assert s.page_number == 1 and s.observation.startswith(f"Instruction: [SEP] {INSTRUCTION} [SEP] Back to Search")


# ---- invalid actions and the step limit -----------------------------------------------------------


def test_invalid_actions_leave_the_page_and_say_why(shop):
    s = _session(shop)
    page = s.observation
    for action, why in [("click[buy now]", "no button 'buy now'"), ("search[]", "needs a query"),
                        ("buy the chips", "invalid action"), ("search[ ]", "needs a query")]:
        step = s.step(action)
        assert not step.valid and why in step.error and step.observation == page and not step.done
    s.step("search[widget]")
    results = s.observation
    step = s.step("search[chips]")
    assert not step.valid and "only available on the search page" in step.error and s.observation == results
    step = s.step("click[b0000chips]")  # not on this page of results
    assert not step.valid and s.observation == results
    assert s.n_invalid == 6 and s.steps == 7
    assert s.trace[-1] == ("click[b0000chips]", results, "no button 'b0000chips' on this page")


def test_step_limit_ends_with_reward_zero():
    shop = WebShop(catalogue(_widgets(3), [goal(asin="B00000W000")]), step_limit=3)
    s = shop.session(shop.catalogue.goals[0])
    assert not s.step("search[widget]").done
    assert not s.step("click[b00000w000]").done
    step = s.step("click[description]")
    assert step.done and step.reward == 0.0 and s.ended == "step limit" and s.outcome is None
    with pytest.raises(ValueError, match="step_limit must be a positive integer"):
        WebShop(shop.catalogue, step_limit=0)


def test_parse_action():
    assert parse_action(" click[Buy Now] ") == ("click", "Buy Now")
    assert parse_action("search[a [b] c]") == ("search", "a [b] c")
    assert parse_action("think[hm]") is None and parse_action("click buy") is None


def test_run_episodes_steps_all_running_episodes_together(shop):
    calls = []

    class Scripted:
        def actions(self, sessions):
            calls.append([s.index for s in sessions])
            return ["search[potato chips]" if s.page == "search" else
                    ("click[b0000chips]" if s.page == "results" else "click[buy now]") if s.index == 0 else
                    "click[nothing]" for s in sessions]

    goals = [shop.catalogue.goals[0]] * 2
    sessions = run_episodes(WebShop(shop.catalogue, step_limit=5, engine=shop.engine), goals, Scripted())
    assert calls == [[0, 1], [0, 1], [0, 1], [1], [1]]
    assert [s.reward for s in sessions] == [1.0, 0.0] and [s.ended for s in sessions] == ["buy", "step limit"]


def test_search_cache_is_bounded(shop, monkeypatch):
    import evobench.tasks.webshop.env as env

    fresh = WebShop(shop.catalogue, engine=shop.engine)
    monkeypatch.setattr(env, "SEARCH_CACHE", 2)
    for q in ("widget", "chips", "potato"):
        fresh.search(q)
    assert list(fresh._searches) == ["chips", "potato"]
    assert [p.asin for p in fresh.search("widget")][:2] == ["B00000W000", "B00000W001"]
