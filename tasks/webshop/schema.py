"""Products, goals and catalogues in the schema of the original WebShop release.

The released files (``items_shuffle*.json``, ``items_ins_v2*.json``, ``items_human_ins.json``) are read
into these frozen records by :mod:`evobench.tasks.webshop.data`, which applies the original's product
processing; the generated catalogue (:mod:`evobench.tasks.webshop.generated`) is written in the same
raw schema and read the same way.

- :class:`Product`: ``asin``, ``title`` (the raw ``name``), ``category`` (e.g. ``beauty``), ``query``
  (the search query the product was scraped under, lower-cased), ``product_category`` (the
  breadcrumb ``a › b › c``), ``description``, ``bullet_points``, ``attributes`` (the annotated
  attributes of ``items_ins_v2``, ``["DUMMY_ATTR"]`` where none), ``options`` (option name → values,
  lower-cased, ``/`` written `` | ``), ``pricing`` (one price or a range), ``price_tag`` (the text
  shown), ``price`` (what the reward compares: the one price, one seeded draw in a range, 100 when
  none), ``rating`` (``N.A.``, as the release loads no reviews).
- :class:`Goal`: the target ``asin`` and its ``category``/``query``/``name``/``product_category``
  (for the type reward), ``instruction_text``, target ``attributes``, ``goal_options`` (option
  values) and ``price_upper``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

NounParser = Callable[[str], list[str]]  # text -> its nouns and proper nouns, lower-cased, in order


@dataclass(frozen=True)
class Product:
    asin: str
    title: str
    category: str
    query: str
    product_category: str
    description: str
    bullet_points: tuple[str, ...]
    attributes: tuple[str, ...]
    options: Mapping[str, tuple[str, ...]]
    pricing: tuple[float, ...]
    price_tag: str
    price: float
    rating: str = "N.A."


@dataclass(frozen=True)
class Goal:
    asin: str
    category: str
    query: str
    name: str
    product_category: str
    instruction_text: str
    attributes: tuple[str, ...]
    goal_options: tuple[str, ...]
    price_upper: float

    def as_dict(self) -> dict:
        """The goal as plain JSON-ready data (for records and hashes)."""
        return {"asin": self.asin, "category": self.category, "query": self.query, "name": self.name,
                "product_category": self.product_category, "instruction_text": self.instruction_text,
                "attributes": list(self.attributes), "goal_options": list(self.goal_options),
                "price_upper": self.price_upper}


@dataclass
class Catalogue:
    """The products of a shop, its goals in the original order (shuffled with seed 233) and the noun
    parser the type reward reads titles with."""

    products: list[Product]
    goals: list[Goal]
    nouns: NounParser
    source: str  # where the data came from, for messages and provenance
    by_asin: dict[str, Product] = field(init=False)

    def __post_init__(self) -> None:
        self.by_asin = {p.asin: p for p in self.products}
        missing = [g.asin for g in self.goals if g.asin not in self.by_asin]
        if missing:
            raise ValueError(f"webshop: {len(missing)} goal(s) of {self.source} target products that are not in "
                             f"the catalogue, e.g. {missing[0]}")

    def fingerprint(self) -> str:
        """A short hash of the products and goals (provenance; computed once)."""
        if getattr(self, "_fingerprint", None) is None:
            h = hashlib.sha256()
            for p in self.products:
                h.update(json.dumps([p.asin, p.title, p.category, p.query, p.product_category, p.description,
                                     p.bullet_points, p.attributes, dict(p.options), p.pricing, p.price],
                                    ensure_ascii=False).encode("utf-8"))
            for g in self.goals:
                h.update(json.dumps(g.as_dict(), ensure_ascii=False, sort_keys=True).encode("utf-8"))
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint
