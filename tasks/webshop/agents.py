"""Scripted reference agents: an oracle (the upper reference) and a random agent (the lower one).

A policy answers ``actions(sessions)`` with one action string per running episode;
:func:`evobench.tasks.webshop.env.run_episodes` steps all episodes together.

- :class:`OracleAgent` knows the goal: it searches the target product's title, pages to the target
  (on the released data, when the search does not find it, it opens the first result instead), picks
  for every goal option the product's closest option value (equal, else the highest token-set
  ratio) and buys.
- :class:`RandomAgent` acts uniformly at random among the page's available actions; on the search page
  it searches the scraping query of a random catalogue product. Each episode draws from its own
  generator, seeded by the agent's seed and the episode's position in the batch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from evobench.tasks.webshop.env import BUY_NOW, NEXT_PAGE, PREV_PAGE, PRODUCT_WINDOW, Session
from evobench.tasks.webshop.reward import token_set_ratio


class OracleAgent:
    """Buys the goal's product with the goal's options (see the module docstring)."""

    def actions(self, sessions: Sequence[Session]) -> list[str]:
        return [self.act(s) for s in sessions]

    def act(self, s: Session) -> str:
        goal = s.goal
        if s.page == "search":
            target = s.shop.catalogue.by_asin[goal.asin]
            return f"search[{target.title.lower()}]"
        if s.page == "results":
            asins = [p.asin for p in s.results]
            if goal.asin not in asins:
                shown = s.results[(s.page_number - 1) * PRODUCT_WINDOW:s.page_number * PRODUCT_WINDOW]
                return f"click[{shown[0].asin.lower()}]" if shown else "click[back to search]"
            page = asins.index(goal.asin) // PRODUCT_WINDOW + 1
            if page > s.page_number:
                return f"click[{NEXT_PAGE}]"
            if page < s.page_number:
                return f"click[{PREV_PAGE}]"
            return f"click[{goal.asin.lower()}]"
        if s.page == "item":
            for wanted in goal.goal_options:
                pick = self._closest(s.product.options, wanted)
                if pick is not None and pick[1] not in s.options.values():
                    return f"click[{pick[1]}]"
            return f"click[{BUY_NOW}]"
        return f"click[{PREV_PAGE}]"  # a description, features or reviews page: back to the item

    @staticmethod
    def _closest(options, wanted: str) -> tuple[str, str] | None:
        pairs = [(name, v) for name, values in options.items() for v in values]
        if not pairs:
            return None
        exact = [p for p in pairs if p[1] == wanted.lower()]
        return exact[0] if exact else max(pairs, key=lambda p: token_set_ratio(p[1], wanted))


class RandomAgent:
    """Uniformly random available actions (see the module docstring)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def actions(self, sessions: Sequence[Session]) -> list[str]:
        return [self.act(s) for s in sessions]

    def act(self, s: Session) -> str:
        rng = s.memo.setdefault("rng", random.Random(self.seed * 1_000_003 + s.index))
        if s.page == "search":
            return f"search[{rng.choice(s.shop.products).query}]"
        return f"click[{rng.choice(list(s.clickables()))}]"
