"""The reward of the original WebShop (``web_agent_site/engine/goal.py``), rule by rule.

R = r_type · (matched attributes + matched options + 1[price ≤ price_upper])
    / (|goal attributes| + |goal options| + 1)

- **Fuzzy match**: thefuzz's ``token_set_ratio`` as the original calls it -- both strings lose the
  characters 128–255, are lower-cased with every non-alphanumeric character a space
  (``rapidfuzz.utils.default_process``), scored by ``rapidfuzz.fuzz.token_set_ratio`` and rounded to an
  integer; a match is a score **above 85**.
- **Attributes**: a goal attribute matches when it fuzzily matches one of the product's attributes,
  or else when it is a substring of the product's lower-cased title, joined bullet points or
  description.
- **Options**: every chosen and goal option value is first reduced to the first colour of the
  original's colour list it contains (``"navy blue"`` → ``"blue"``; a value with none is kept); a
  goal option matches when it fuzzily matches one chosen option.
- **Price**: 1 when the price paid is at most the goal's ``price_upper``.
- **Type** (``r_type``): ``query_match`` = same scraping query; ``category_match`` = the two
  breadcrumbs share at least two distinct levels; ``title_score`` = the share of the goal title's
  nouns (NOUN/PROPN, lower-cased) that are also nouns of the bought product's title, 0.2 when the goal
  title has none. r_type = 1 if any of the three holds (title_score > 0.2), else 0.5; then 0.1 if
  title_score < 0.1, and 0 if title_score is 0.

Nouns come from a :data:`~evobench.tasks.webshop.schema.NounParser`: :class:`SpacyNouns` (the
original's spaCy ``en_core_web_sm`` tagger, for the released data) or :class:`LexiconNouns` (the words a
catalogue declares as nouns: the generated catalogue builds its titles from words whose part of
speech it knows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from evobench.tasks.webshop.schema import Goal, NounParser, Product

MATCH_THRESHOLD = 85  # a fuzzy match scores above this (integer scores, as thefuzz rounds them)

# The original's colour list, in its order: an option value is reduced to the first entry it contains.
COLOR_SET = (
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black", "blue", "blush",
    "bordeaux", "bronze", "brown", "burgundy", "camel", "camo", "caramel", "champagne", "charcoal", "cheetah",
    "chestnut", "chocolate", "christmas", "coffee", "cognac", "copper", "coral", "cranberry", "cream",
    "crystal", "dark", "denim", "eggplant", "elephant", "espresso", "fuchsia", "gold", "granite", "grape",
    "graphite", "grass", "gray", "green", "grey", "heather", "indigo", "ivory", "ivy", "khaki", "lavender",
    "lemon", "leopard", "light", "lilac", "lime", "magenta", "maroon", "mauve", "merlot", "midnight", "mint",
    "mocha", "multicolor", "mushroom", "mustard", "natural", "navy", "nude", "olive", "orange", "peach",
    "pewter", "pink", "plum", "purple", "rainbow", "red", "rose", "royal", "rust", "sand", "sapphire",
    "seashell", "silver", "skull", "slate", "steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal",
    "tiger", "turquoise", "violet", "walnut", "wheat", "white", "wine", "yellow",
)

_LATIN1 = {i: None for i in range(128, 256)}


def token_set_ratio(a: str, b: str) -> int:
    """thefuzz's ``token_set_ratio(a, b)``: 0–100, an integer (see the module docstring)."""
    from rapidfuzz import fuzz
    from rapidfuzz.utils import default_process

    a, b = default_process(str(a).translate(_LATIN1)), default_process(str(b).translate(_LATIN1))
    return int(round(fuzz.token_set_ratio(a, b)))


def fuzzy_match(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` match as the reward counts it (token-set ratio above 85)."""
    return token_set_ratio(a, b) > MATCH_THRESHOLD


def normalize_color(value: str) -> str:
    """The first colour of :data:`COLOR_SET` that is a substring of ``value``, else ``value``."""
    return next((c for c in COLOR_SET if c in value), value)


@dataclass(frozen=True)
class TypeReward:
    r_type: float
    query_match: bool
    category_match: bool
    title_score: float


def _levels(breadcrumb: str) -> set[str]:
    return {x.strip() for x in breadcrumb.split("›")}


def type_reward(product: Product, goal: Goal, nouns: NounParser) -> TypeReward:
    """r_type of buying ``product`` for ``goal`` (query, breadcrumb and title-noun rules)."""
    query_match = product.query == goal.query
    category_match = len(_levels(product.product_category) & _levels(goal.product_category)) >= 2
    bought, wanted = set(nouns(product.title)), nouns(goal.name)
    title_score = 0.2 if not wanted else len(bought & set(wanted)) / len(wanted)
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return TypeReward(r_type, query_match, category_match, title_score)


def attribute_matches(product: Product, goal_attributes: Sequence[str]) -> int:
    """How many goal attributes the product has (fuzzy on its attributes, else a substring of its
    title, bullet points or description)."""
    title = product.title.lower()
    bullets = " ".join(product.bullet_points).lower()
    description = product.description.lower()
    n = 0
    for g in goal_attributes:
        if any(fuzzy_match(p, g) for p in product.attributes) or g in title or g in bullets or g in description:
            n += 1
    return n


def option_matches(chosen: Iterable[str], goal_options: Sequence[str]) -> int:
    """How many goal options one of the chosen option values matches (colours normalised first)."""
    chosen = [normalize_color(o) for o in chosen]
    return sum(any(fuzzy_match(c, normalize_color(g)) for c in chosen) for g in goal_options)


@dataclass(frozen=True)
class Reward:
    """A purchase's reward and its parts."""

    reward: float
    r_type: float
    query_match: bool
    category_match: bool
    title_score: float
    attribute_matches: int
    option_matches: int
    price_ok: bool
    n_attributes: int
    n_options: int

    def as_dict(self) -> dict:
        return asdict(self)


def reward(product: Product, goal: Goal, price: float, options: dict[str, str], nouns: NounParser) -> Reward:
    """The reward of buying ``product`` at ``price`` with the chosen ``options`` (name → value) for ``goal``."""
    t = type_reward(product, goal, nouns)
    n_attr = attribute_matches(product, goal.attributes)
    n_opt = option_matches(list(options.values()), goal.goal_options)
    price_ok = price <= goal.price_upper
    total = (n_attr + n_opt + int(price_ok)) / (len(goal.attributes) + len(goal.goal_options) + 1)
    return Reward(total * t.r_type, t.r_type, t.query_match, t.category_match, t.title_score, n_attr, n_opt,
                  price_ok, len(goal.attributes), len(goal.goal_options))


# ---- noun parsers -----------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


class LexiconNouns:
    """Nouns by lexicon: the lower-cased words of a text that are in ``words``, in order."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(w.lower() for w in words)
        bad = sorted(w for w in self.words if not _WORD.fullmatch(w))
        if bad:
            raise ValueError(f"lexicon nouns must be single lower-case words, got {bad[0]!r}")

    def __call__(self, text: str) -> list[str]:
        return [w for w in _WORD.findall(text.lower()) if w in self.words]


class SpacyNouns:
    """The original's noun parse: spaCy ``en_core_web_sm`` tokens tagged NOUN or PROPN, lower-cased.

    Loaded on first use; without spaCy or the model, one line says how to install them. Parses are
    cached per text (titles repeat across goals and episodes).
    """

    MODEL = "en_core_web_sm"

    def __init__(self) -> None:
        self._nlp = None
        self._cache: dict[str, list[str]] = {}

    def check(self) -> None:
        """Load the tagger now (a one-line ``ValueError`` when it is not installed)."""
        if self._nlp is not None:
            return
        hint = f"pip install spacy && python -m spacy download {self.MODEL}"
        try:
            import spacy
        except ModuleNotFoundError:
            raise ValueError(f"webshop: the type reward on the released data parses titles with spaCy's "
                             f"{self.MODEL}, as the original: {hint}") from None
        try:
            self._nlp = spacy.load(self.MODEL, disable=["parser", "ner", "lemmatizer"])
        except OSError:
            raise ValueError(f"webshop: spaCy's {self.MODEL} is not installed ({hint})") from None

    def __call__(self, text: str) -> list[str]:
        if text not in self._cache:
            self.check()
            self._cache[text] = [t.text.lower() for t in self._nlp(text) if t.pos_ in ("NOUN", "PROPN")]
        return self._cache[text]
