"""The WebShop environment in text mode: pages, actions, the page flow and the step limit.

A :class:`WebShop` holds a catalogue and its search index; :meth:`WebShop.session` starts one episode
for a goal. Pages and buttons follow the original Flask site and its text environment
(``web_agent_site/envs/web_agent_text_env.py``, ``templates/``):

- **search** page: ``WebShop [SEP] Instruction: [SEP] <instruction> [SEP] Search``; the only action is
  ``search[<query>]``.
- **results**: ``Back to Search``, ``Page p (Total results: n)``, ``< Prev`` (from page 2 on),
  ``Next >`` (always, as the original: a page past the end lists nothing), then per product (10 a
  page of the 50 found) its ASIN, title and price tag. Clicking an ASIN opens the item.
- **item**: ``Back to Search``, ``< Prev`` (to the results page it came from), each option name
  followed by its values, the title, ``Price: …``, ``Rating: …``, ``Description``, ``Features``,
  ``Reviews``, ``Buy Now``. Clicking an option value selects it (one per option name; the last option
  with that value when two share it, as the original's clickable map).
- **description / features / reviews**: ``Back to Search``, ``< Prev`` (to the item), then the text.
- ``click[buy now]`` ends the episode with the reward of the item, its price and the chosen options.

Observations are the original's simple text mode: the page's visible texts joined by `` [SEP] ``.
Actions are ``search[query]`` and ``click[button]``; a click's argument is lower-cased and must be one
of the page's clickables (listed by :meth:`Session.available_actions`, lower-cased as the original's
``get_available_actions``). An action that is not available -- an unknown button, an empty query,
text that is no action, or a search away from the search page -- leaves the page as it was and
answers with an error message. Every step counts towards the step limit (15 by default, as ReAct's
WebShop runs); an episode that reaches it without buying ends with reward 0.

Departures: a search from a page without a search bar is invalid here (the original text
environment ran it; ReAct's wrapper and the listed actions do not allow it); the done page shows the
reward only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from evobench.tasks.webshop.reward import Reward, reward
from evobench.tasks.webshop.schema import Catalogue, Goal, Product
from evobench.tasks.webshop.search import SearchEngine

PRODUCT_WINDOW = 10  # products per results page
STEP_LIMIT = 15
SEARCH_CACHE = 10_000  # queries whose results a shop keeps
SEP = " [SEP] "
BACK_TO_SEARCH, NEXT_PAGE, PREV_PAGE, BUY_NOW = "back to search", "next >", "< prev", "buy now"
SUB_PAGES = {"description": "Description", "features": "Features", "reviews": "Reviews"}
_ACTION = re.compile(r"^(search|click)\[(.*)\]$", re.DOTALL)


def parse_action(text: str) -> tuple[str, str] | None:
    """``("search", query)`` or ``("click", button)`` from ``search[...]``/``click[...]``, else None."""
    m = _ACTION.match(text.strip())
    return (m.group(1), m.group(2)) if m else None


class WebShop:
    """A shop: a catalogue, its BM25 index (built here unless given), and the step limit of its episodes."""

    def __init__(self, catalogue: Catalogue, step_limit: int = STEP_LIMIT, engine: SearchEngine | None = None) -> None:
        if isinstance(step_limit, bool) or not isinstance(step_limit, int) or step_limit < 1:
            raise ValueError(f"step_limit must be a positive integer, got {step_limit!r}")
        self.catalogue = catalogue
        self.products = catalogue.products
        self.step_limit = step_limit
        self.engine = SearchEngine(catalogue.products) if engine is None else engine
        self._searches: dict[str, list[int]] = {}

    def search(self, query: str) -> list[Product]:
        """The products a query finds (at most 50, best first); the last SEARCH_CACHE queries are cached."""
        hits = self._searches.get(query)
        if hits is None:
            hits = self.engine.search(query)
            if len(self._searches) >= SEARCH_CACHE:
                del self._searches[next(iter(self._searches))]  # the oldest query
            self._searches[query] = hits
        return [self.products[i] for i in hits]

    def session(self, goal: Goal, index: int = 0) -> Session:
        """A new episode for ``goal`` on the search page (``index``: its place in a batch)."""
        return Session(self, goal, index)


@dataclass
class Step:
    """What one action did."""

    observation: str
    reward: float
    done: bool
    valid: bool
    error: str | None = None


@dataclass
class Session:
    """One episode: the page the agent is on, its actions, and the purchase when it ends."""

    shop: WebShop
    goal: Goal
    index: int = 0
    page: str = "search"  # search | results | item | description | features | reviews | done
    keywords: str | None = None
    results: list[Product] = field(default_factory=list)
    page_number: int = 1
    asin: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    trace: list[tuple[str, str, str | None]] = field(default_factory=list)  # (action, page after it, error)
    n_invalid: int = 0
    memo: dict = field(default_factory=dict)  # a policy's own per-episode state
    done: bool = False
    ended: str | None = None  # "buy" or "step limit"
    outcome: Reward | None = None

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def reward(self) -> float:
        return self.outcome.reward if self.outcome is not None else 0.0

    @property
    def product(self) -> Product | None:
        return self.shop.catalogue.by_asin[self.asin] if self.asin is not None else None

    # ---- what the agent sees ---------------------------------------------------------------------
    @property
    def first_observation(self) -> str:
        """The search page an episode starts on."""
        return SEP.join(["WebShop", "Instruction:", self.goal.instruction_text.strip(), "Search"])

    @property
    def observation(self) -> str:
        """The current page in the original's simple text mode."""
        instruction = ["Instruction:", self.goal.instruction_text]
        if self.page == "search":
            return self.first_observation
        if self.page == "done":
            texts = ["Thank you for shopping with us!", "Your score (min 0.0, max 1.0)", f"{self.reward}"]
        elif self.page == "results":
            texts = [*instruction, "Back to Search",
                     f"Page {self.page_number} (Total results: {len(self.results)})"]
            texts += ["< Prev"] if self.page_number > 1 else []
            texts.append("Next >")
            for p in self._page_products():
                texts += [p.asin, p.title, p.price_tag]
        else:
            p = self.product
            texts = [*instruction, "Back to Search", "< Prev"]
            if self.page == "item":
                for name, values in p.options.items():
                    texts += [name, *values]
                texts += [p.title, f"Price: {p.price_tag}", f"Rating: {p.rating}", "Description", "Features",
                          "Reviews", "Buy Now"]
            elif self.page == "description":
                texts.append(p.description)
            elif self.page == "features":
                texts += list(p.bullet_points)
        return SEP.join(t.strip() for t in texts if t.strip())

    def _page_products(self) -> list[Product]:
        start = (self.page_number - 1) * PRODUCT_WINDOW
        return self.results[start:start + PRODUCT_WINDOW]

    def clickables(self) -> dict[str, tuple[str, str | None]]:
        """Lower-cased button text -> (kind, option name) for the current page."""
        out: dict[str, tuple[str, str | None]] = {}
        if self.page == "results":
            out[BACK_TO_SEARCH] = ("back", None)
            if self.page_number > 1:
                out[PREV_PAGE] = ("prev", None)
            out[NEXT_PAGE] = ("next", None)
            for p in self._page_products():
                out[p.asin.lower()] = ("item", None)
        elif self.page == "item":
            out[BACK_TO_SEARCH] = ("back", None)
            out[PREV_PAGE] = ("prev", None)
            for name, values in self.product.options.items():
                for v in values:
                    out[v] = ("option", name)
            for key in SUB_PAGES:
                out[key] = ("sub", None)
            out[BUY_NOW] = ("buy", None)
        elif self.page in SUB_PAGES:
            out[BACK_TO_SEARCH] = ("back", None)
            out[PREV_PAGE] = ("prev", None)
        return out

    def available_actions(self) -> dict:
        """``has_search_bar`` and the lower-cased ``clickables``, as the original text environment."""
        return {"has_search_bar": self.page == "search", "clickables": list(self.clickables())}

    def action_list(self) -> list[str]:
        """The available actions as action strings (``search[<query>]`` where a search bar is)."""
        if self.page == "search":
            return ["search[<query>]"]
        return [f"click[{c}]" for c in self.clickables()]

    # ---- acting ----------------------------------------------------------------------------------
    def step(self, action: str) -> Step:
        """Take ``action``; an invalid one leaves the page as it was and says why."""
        if self.done:
            raise ValueError(f"webshop: episode of goal {self.goal.asin} is over; start a new session")
        self.actions.append(action)
        error = self._apply(action)
        if error is not None:
            self.n_invalid += 1
        self.trace.append((action, self.observation, error))
        if not self.done and self.steps >= self.shop.step_limit:
            self.done, self.ended = True, "step limit"
        return Step(self.observation, self.reward if self.page == "done" else 0.0, self.done, error is None, error)

    def _apply(self, action: str) -> str | None:
        parsed = parse_action(action) if isinstance(action, str) else None
        if parsed is None:
            return f"invalid action {action!r}: write search[query] or click[button]"
        kind, arg = parsed
        if kind == "search":
            query = arg.strip().lower()
            if self.page != "search":
                return "search is only available on the search page: click[back to search] first"
            if not query:
                return "search needs a query: search[words]"
            self.keywords, self.results, self.page_number = query, self.shop.search(query), 1
            self.page, self.asin, self.options = "results", None, {}
            return None
        button = arg.strip().lower()
        clickables = self.clickables()
        if button not in clickables:
            return f"no button {button!r} on this page"
        what, option = clickables[button]
        if what == "back":
            self.page, self.keywords, self.results, self.asin, self.options = "search", None, [], None, {}
        elif what == "next":
            self.page_number += 1
        elif what == "prev" and self.page == "results":
            self.page_number -= 1
        elif what == "prev" and self.page == "item":
            self.page, self.asin, self.options = "results", None, {}
        elif what == "prev":
            self.page = "item"
        elif what == "item":
            self.page, self.asin = "item", button.upper()
        elif what == "option":
            self.options[option] = button
        elif what == "sub":
            self.page = button
        elif what == "buy":
            self._buy()
        return None

    def _buy(self) -> None:
        product, catalogue = self.product, self.shop.catalogue
        self.outcome = reward(product, self.goal, product.price, self.options, catalogue.nouns)
        self.page, self.done, self.ended = "done", True, "buy"


def run_episodes(shop: WebShop, goals: Sequence[Goal], policy) -> list[Session]:
    """Play one episode per goal, all in step: each round asks ``policy.actions(sessions)`` for the
    next action of every episode still running (one batched call), then steps them."""
    sessions = [shop.session(g, i) for i, g in enumerate(goals)]
    while True:
        active = [s for s in sessions if not s.done]
        if not active:
            return sessions
        actions = policy.actions(active)
        if len(actions) != len(active):
            raise ValueError(f"policy returned {len(actions)} actions for {len(active)} episodes")
        for s, a in zip(active, actions, strict=True):
            s.step(a)
