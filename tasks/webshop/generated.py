"""webshop-mini: a small generated catalogue with human-style goals, in the raw schema of the release.

Twenty product types in the release's five categories (beauty, electronics, fashion, food,
furniture), five products each from ``random.Random(seed)``: a brand, three of the type's five
attributes, option values, a price (one in five a range ``$a - $b``), a title built from them
(``Brand Attribute Type, Attribute, Attribute``), a description and bullet points. Each product gets
two human-style instructions naming its query, one or two of its attributes and up to two of its
option values. The raw files (:func:`raw_files`) go through the same processing as the released
ones (:func:`evobench.tasks.webshop.data.build_catalogue`), so goals get their price bounds and the
original's shuffle the same way; :func:`write_files` writes them under the release's file names.

The type reward reads nouns from :data:`NOUNS`, the catalogue's own lexicon: brands, the product
types' head words and units (the words the generator uses as nouns).
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

from evobench.jsonio import write_json
from evobench.tasks.webshop.data import build_catalogue
from evobench.tasks.webshop.reward import LexiconNouns
from evobench.tasks.webshop.schema import Catalogue

# (category, breadcrumb, query, attributes, options, price range)
TYPES = (
    ("food", "Grocery & Gourmet Food › Snacks & Sweets › Chips & Crisps", "potato chips",
     ("gluten free", "non gmo", "kettle cooked", "low sodium", "vegan"),
     {"flavor name": ("sea salt", "barbecue", "sour cream and onion", "salt and vinegar"),
      "size": ("1 ounce (pack of 24)", "5 ounce (pack of 6)", "8 ounce (pack of 1)")}, (3, 35)),
    ("food", "Grocery & Gourmet Food › Snacks & Sweets › Bars › Protein Bars", "protein bars",
     ("gluten free", "high protein", "low sugar", "keto friendly", "plant based"),
     {"flavor name": ("chocolate peanut butter", "cookie dough", "almond crunch", "vanilla"),
      "size": ("12 count", "24 count")}, (12, 60)),
    ("food", "Grocery & Gourmet Food › Beverages › Tea › Green Tea", "green tea bags",
     ("organic", "decaffeinated", "individually wrapped", "non gmo", "sugar free"),
     {"flavor name": ("jasmine", "peppermint", "ginger lemon", "original"), "size": ("20 count", "100 count")}, (4, 30)),
    ("food", "Grocery & Gourmet Food › Beverages › Coffee › Whole Coffee Beans", "whole bean coffee",
     ("dark roast", "fair trade", "organic", "low acid", "single origin"),
     {"flavor name": ("french roast", "colombian", "hazelnut", "breakfast blend"),
      "size": ("12 ounce", "2 pound")}, (9, 45)),
    ("beauty", "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos", "sulfate free shampoo",
     ("sulfate free", "paraben free", "cruelty free", "dry hair", "color safe"),
     {"scent": ("coconut", "argan oil", "tea tree", "unscented"), "size": ("8 fl oz", "16 fl oz")}, (6, 40)),
    ("beauty", "Beauty & Personal Care › Personal Care › Deodorants & Antiperspirants › Deodorants",
     "natural deodorant",
     ("aluminum free", "sensitive skin", "long lasting", "natural ingredients", "baking soda free"),
     {"scent": ("bright citrus", "calming lavender", "cedar", "unscented"),
      "size": ("3 ounce (pack of 1)", "3 ounce (pack of 2)")}, (5, 25)),
    ("beauty", "Beauty & Personal Care › Makeup › Lips › Lipstick", "matte lipstick",
     ("long lasting", "cruelty free", "matte finish", "hydrating", "paraben free"),
     {"color": ("ruby red", "nude pink", "coral", "plum")}, (5, 30)),
    ("beauty", "Beauty & Personal Care › Skin Care › Face › Creams & Moisturizers", "face moisturizer",
     ("fragrance free", "hyaluronic acid", "dry skin", "oil free", "spf 30"),
     {"size": ("1.7 fl oz", "3.4 fl oz")}, (8, 55)),
    ("fashion", "Clothing, Shoes & Jewelry › Men › Shoes › Athletic › Running", "mens running shoes",
     ("rubber sole", "arch support", "breathable mesh", "lightweight", "non slip"),
     {"color": ("black", "navy blue", "grey", "white"), "size": ("8", "9", "10", "11")}, (30, 120)),
    ("fashion", "Clothing, Shoes & Jewelry › Women › Clothing › Active › Active Pants", "womens sweatpants",
     ("relaxed fit", "elastic waistband", "machine wash", "drawstring closure", "high waist"),
     {"color": ("black", "heather grey", "olive green", "burgundy"), "size": ("small", "medium", "large", "x-large")},
     (15, 50)),
    ("fashion", "Clothing, Shoes & Jewelry › Men › Clothing › Shirts › Polos", "mens polo shirt",
     ("short sleeve", "moisture wicking", "regular fit", "button closure", "cotton blend"),
     {"color": ("white", "navy", "red", "forest green"), "size": ("medium", "large", "x-large")}, (12, 45)),
    ("fashion", "Clothing, Shoes & Jewelry › Men › Accessories › Sunglasses & Eyewear Accessories › Sunglasses",
     "polarized sunglasses",
     ("polarized lenses", "uv protection", "lightweight frame", "scratch resistant", "spring hinges"),
     {"color": ("black frame grey lens", "tortoise frame brown lens", "gold frame green lens")}, (10, 90)),
    ("electronics", "Electronics › Headphones, Earbuds & Accessories › Headphones › Over-Ear Headphones",
     "bluetooth headphones",
     ("noise cancelling", "wireless bluetooth", "long battery life", "hands free", "fast charging"),
     {"color": ("black", "white", "midnight blue")}, (25, 180)),
    ("electronics", "Electronics › Computers & Accessories › Cables & Accessories › Cables › USB Cables",
     "usb c cable",
     ("fast charging", "high speed", "braided nylon", "gold plated", "data sync"),
     {"color": ("black", "white", "red"), "size": ("3 feet", "6 feet", "10 feet")}, (6, 25)),
    ("electronics", "Cell Phones & Accessories › Cases, Holsters & Sleeves › Basic Cases", "phone case",
     ("shock absorbing", "wireless charging compatible", "slim fit", "raised edges", "easy install"),
     {"color": ("clear", "black", "pink", "dark green")}, (7, 30)),
    ("electronics", "Electronics › Computers & Accessories › Computer Accessories & Peripherals › Mice",
     "wireless mouse",
     ("ergonomic design", "rechargeable battery", "silent click", "usb receiver", "adjustable dpi"),
     {"color": ("black", "grey", "rose gold")}, (9, 60)),
    ("furniture", "Home & Kitchen › Furniture › Living Room Furniture › Bookcases", "wood bookshelf",
     ("easy assembly", "solid wood", "living room", "space saving", "storage space"),
     {"color": ("walnut", "white", "espresso"), "size": ("3 tier", "5 tier")}, (40, 200)),
    ("furniture", "Home & Kitchen › Furniture › Home Office Furniture › Home Office Chairs", "office chair",
     ("lumbar support", "adjustable height", "high back", "mesh back", "easy assembly"),
     {"color": ("black", "grey", "white")}, (60, 300)),
    ("furniture", "Home & Kitchen › Furniture › Living Room Furniture › Ottomans", "storage ottoman",
     ("storage space", "faux leather", "living room", "button tufted", "foldable"),
     {"color": ("beige", "brown", "dark grey"), "size": ("small", "large")}, (25, 110)),
    ("furniture", "Home & Kitchen › Furniture › Bedroom Furniture › Nightstands", "wood nightstand",
     ("solid wood", "easy assembly", "storage drawer", "bedroom", "mid century"),
     {"color": ("natural", "white", "black")}, (35, 160)),
)
BRANDS = {
    "food": ("Crunchwell", "Harvestry", "Kettlebrook", "Nutrabloom", "Morrowfield", "Greenmere", "Brewhaven"),
    "beauty": ("Aurelle", "Lunaria", "Velmora", "Puresse", "Calendra", "Sorelle", "Bloomwick"),
    "fashion": ("Stridewell", "Northpeak", "Tidewell", "Corvane", "Ashfield", "Marlowe", "Kestrel"),
    "electronics": ("Voltaro", "Pixwell", "Corelink", "Sonique", "Ampire", "Zentrix", "Lumacore"),
    "furniture": ("Oakhaven", "Linwood", "Brightnest", "Hearthly", "Timberly", "Nestora", "Woodlark"),
}
# the head nouns of the product types and the units the titles and options use
TYPE_NOUNS = ("potato", "chips", "protein", "bars", "tea", "bags", "coffee", "beans", "bean", "shampoo",
              "deodorant", "lipstick", "face", "moisturizer", "shoes", "sweatpants", "polo", "shirt", "sunglasses",
              "headphones", "cable", "phone", "case", "mouse", "bookshelf", "office", "chair", "ottoman",
              "nightstand", "pack", "ounce", "count", "pound", "oz", "feet", "tier")
NOUNS = LexiconNouns([b.lower() for bs in BRANDS.values() for b in bs] + list(TYPE_NOUNS))
HEADS = {"potato chips": "Potato Chips", "protein bars": "Protein Bars", "green tea bags": "Green Tea Bags",
         "whole bean coffee": "Whole Bean Coffee", "sulfate free shampoo": "Shampoo",
         "natural deodorant": "Deodorant", "matte lipstick": "Lipstick", "face moisturizer": "Face Moisturizer",
         "mens running shoes": "Running Shoes", "womens sweatpants": "Sweatpants",
         "mens polo shirt": "Polo Shirt", "polarized sunglasses": "Sunglasses",
         "bluetooth headphones": "Headphones", "usb c cable": "USB C Cable", "phone case": "Phone Case",
         "wireless mouse": "Mouse", "wood bookshelf": "Bookshelf", "office chair": "Office Chair",
         "storage ottoman": "Ottoman", "wood nightstand": "Nightstand"}
PRODUCTS_PER_TYPE = 5
INSTRUCTION_FORMS = ("i need {attrs} {query}{opts}", "i am looking for {query} that is {attrs}{opts}",
                     "im looking for {attrs} {query}{opts}", "find me {query}, {attrs}{opts}")


def _asin(rng: random.Random, taken: set[str]) -> str:
    while True:
        asin = "B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))
        if asin not in taken:
            taken.add(asin)
            return asin


def _instruction(rng: random.Random, query: str, attrs: list[str], opts: list[str]) -> str:
    form = rng.choice(INSTRUCTION_FORMS)
    opt_text = f" in {' and '.join(opts)}" if opts else ""
    return form.format(attrs=" and ".join(attrs), query=query, opts=opt_text)


def raw_files(seed: int = 0) -> tuple[list[dict], dict, dict]:
    """The generated products, attributes and human instructions in the release's raw schema."""
    rng = random.Random(seed)
    products, attributes, instructions, taken, texts = [], {}, {}, set(), set()
    for category, breadcrumb, query, attr_pool, options, (lo, hi) in TYPES:
        brands = rng.sample(BRANDS[category], PRODUCTS_PER_TYPE)
        for brand in brands:
            asin = _asin(rng, taken)
            attrs = rng.sample(attr_pool, 3)
            price = round(rng.uniform(lo, hi), 2)
            pricing = f"${price:.2f}" if rng.random() < 0.8 else f"${price:.2f} - ${price * 1.25:.2f}"
            values = {name: rng.sample(vals, min(len(vals), rng.randint(2, len(vals)))) for name, vals in options.items()}
            title = (f"{brand} {attrs[0].title()} {HEADS[query]}, {attrs[1].title()}, {attrs[2].title()}")
            products.append({
                "asin": asin, "name": title, "category": category, "query": query, "product_category": breadcrumb,
                "full_description": f"{brand} makes this {query} for everyday use. It is {attrs[0]} and "
                                    f"{attrs[1]}, and it ships in recyclable packaging.",
                "small_description": [f"{a.upper()}: {brand} {query} made to be {a}." for a in attrs],
                "pricing": pricing, "images": [],
                "customization_options": {name.title(): [{"value": v, "image": None} for v in vals]
                                          for name, vals in values.items()},
            })
            attributes[asin] = {"attributes": attrs}
            ins = []
            for _ in range(2):
                goal_attrs = rng.sample(attrs, rng.randint(1, 2))
                goal_opts = [rng.choice(vals) for vals in values.values()][:rng.randint(0, 2)]
                text = _instruction(rng, query, goal_attrs, goal_opts)
                if text not in texts:
                    texts.add(text)
                    ins.append({"asin": asin, "instruction": text, "instruction_attributes": goal_attrs,
                                "instruction_options": goal_opts})
            instructions[asin] = ins
    return products, attributes, instructions


@lru_cache(maxsize=4)
def generated_catalogue(seed: int = 0) -> Catalogue:
    """The webshop-mini catalogue and its goals (deterministic; cached per seed)."""
    products, attributes, instructions = raw_files(seed)
    return build_catalogue(products, attributes, instructions, NOUNS, f"webshop-mini (seed {seed})", seed)


def write_files(folder: str | Path, seed: int = 0) -> Path:
    """Write the generated data as ``items_shuffle.json``, ``items_ins_v2.json`` and
    ``items_human_ins.json`` in ``folder`` (created), the release's names and schema."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    products, attributes, instructions = raw_files(seed)
    write_json(folder / "items_shuffle.json", products)
    write_json(folder / "items_ins_v2.json", attributes)
    write_json(folder / "items_human_ins.json", instructions)
    return folder
