"""Small hand-made WebShop products, goals and catalogues for the tests."""

from __future__ import annotations

from evobench.tasks.webshop.reward import LexiconNouns
from evobench.tasks.webshop.schema import Catalogue, Goal, Product

NOUNS = LexiconNouns(["chips", "potato", "bar", "bars", "shampoo", "crunchwell", "widget", "ounce", "pack",
                      "snack", "box", "bag", "tin", "jar", "cup", "lid", "tray"])


def product(asin="B000000001", title="Crunchwell Potato Chips", query="potato chips",
            product_category="Food › Snacks › Chips", attributes=("gluten free",), options=None, price=10.0,
            description="", bullet_points=(), category="food", pricing=None) -> Product:
    pricing = (price,) if pricing is None else tuple(pricing)
    tag = f"${pricing[0]}" if len(pricing) == 1 else f"${pricing[0]} to ${pricing[1]}"
    return Product(asin=asin, title=title, category=category, query=query, product_category=product_category,
                   description=description, bullet_points=tuple(bullet_points), attributes=tuple(attributes),
                   options={} if options is None else {k: tuple(v) for k, v in options.items()},
                   pricing=pricing, price_tag=tag, price=price)


def goal(asin="B000000001", name="Crunchwell Potato Chips", query="potato chips",
         product_category="Food › Snacks › Chips", attributes=("gluten free",), goal_options=(), price_upper=20.0,
         instruction_text="i need gluten free potato chips, and price lower than 20.00 dollars",
         category="food") -> Goal:
    return Goal(asin=asin, category=category, query=query, name=name, product_category=product_category,
                instruction_text=instruction_text, attributes=tuple(attributes), goal_options=tuple(goal_options),
                price_upper=price_upper)


def catalogue(products, goals=None) -> Catalogue:
    return Catalogue(list(products), list(goals or []), NOUNS, "test catalogue")
