"""DummyJSON-shaped catalogues: the snapshot loader and a seeded generator of any size.

``load_snapshot(folder)`` reads DummyJSON's own data files (users.json, products.json, carts.json; plain
JSON arrays, MIT-licensed, kept outside the repository) into a :class:`Catalog`.

``generate_catalog(users, products, carts, seed)`` builds a synthetic catalogue with the snapshot's field
names, key order and types (see CONTRACT.md section 6): birthDate ``YYYY-M-D``, string-typed numerics
(postalCode, cardNumber, barcode, phone, ein, ssn), the PII-shaped fields (password, ssn, ein,
bank.cardNumber/iban, ip, macAddress, crypto.wallet), ``brand`` absent on about half of the products,
three reviews per product, cart lines copied from the products with raw float ``total`` noise, carts
referencing real users and products and some carts holding the same product twice. The output depends
only on (seed, sizes): the same arguments give byte-identical JSON in any process. No value is taken from
the snapshot; the word lists below are generic.
"""

from __future__ import annotations

import gc
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESOURCES = ("users", "products", "carts")
SNAPSHOT_FILES = {r: f"{r}.json" for r in RESOURCES}
#: Sizes of DummyJSON's own data set (the snapshot).
SNAPSHOT_SIZES = {"users": 208, "products": 194, "carts": 208}
DEFAULT_SEED = 42

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Catalog:
    users: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    carts: list[dict[str, Any]] = field(default_factory=list)
    source: str = "generated"

    def __getitem__(self, resource: str) -> list[dict[str, Any]]:
        if resource not in RESOURCES:
            raise KeyError(resource)
        return getattr(self, resource)

    @property
    def sizes(self) -> dict[str, int]:
        return {r: len(self[r]) for r in RESOURCES}

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {r: self[r] for r in RESOURCES}


# ------------------------------------------------------------------------------------------ snapshot
def snapshot_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The snapshot folder: $SHOPSTREAM_DUMMYJSON_DATA (relative paths resolve against the repo root),
    else ``../shared/dummyjson`` next to the repo. The folder may not exist; check with
    :func:`has_snapshot`."""
    base = Path(root or os.environ.get("SHOPSTREAM_ROOT") or REPO_ROOT)
    raw = os.environ.get("SHOPSTREAM_DUMMYJSON_DATA") or "../shared/dummyjson"
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = base / path
    return path.resolve()


def has_snapshot(folder: str | os.PathLike[str]) -> bool:
    folder = Path(folder)
    return all((folder / name).is_file() for name in SNAPSHOT_FILES.values())


def load_snapshot(folder: str | os.PathLike[str]) -> Catalog:
    """Load users.json, products.json and carts.json (top-level JSON arrays of objects)."""
    folder = Path(folder)
    data: dict[str, list[dict[str, Any]]] = {}
    for resource, name in SNAPSHOT_FILES.items():
        path = folder / name
        try:
            with path.open("rb") as fh:
                records = json.load(fh)
        except FileNotFoundError:
            raise FileNotFoundError(f"DummyJSON snapshot file missing: {path}") from None
        except ValueError as exc:
            raise ValueError(f"DummyJSON snapshot file {path} is not valid JSON: {exc}") from None
        if not isinstance(records, list) or not all(
            isinstance(r, dict) and isinstance(r.get("id"), int) for r in records
        ):
            raise ValueError(f"{path}: expected a JSON array of objects with an int 'id'")
        data[resource] = records
    return Catalog(source=str(folder), **data)


def parse_sizes(spec: str) -> dict[str, int]:
    """``"users=200,products=200,carts=200"`` -> dict; missing resources get the snapshot's size."""
    sizes = dict(SNAPSHOT_SIZES)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in RESOURCES:
            raise ValueError(f"bad size {part!r}; expected e.g. users=200,products=200,carts=200")
        try:
            sizes[key] = int(value)
        except ValueError:
            raise ValueError(f"bad size {part!r}: {value!r} is not an integer") from None
        if sizes[key] < 0:
            raise ValueError(f"bad size {part!r}: must be >= 0")
    return sizes


# ----------------------------------------------------------------------------------------- generator
FIRST_F = ("Ava", "Mia", "Zoe", "Lily", "Emma", "Nora", "Ruby", "Iris", "Cora", "Maya", "Leah", "Anna",
           "Ella", "Lucy", "Hana", "Rosa", "Vera", "Jade", "Tess", "Nina", "Ivy", "Luna", "Sara", "Kate")
FIRST_M = ("Liam", "Noah", "Owen", "Leo", "Ezra", "Eli", "Finn", "Jack", "Luke", "Omar", "Ravi", "Sam",
           "Theo", "Adam", "Ben", "Carl", "Dev", "Hugo", "Ivan", "Jon", "Kai", "Max", "Nico", "Paul")
LAST = ("Adams", "Baker", "Clark", "Diaz", "Evans", "Fox", "Garcia", "Hill", "Ito", "Jones", "Khan",
        "Lopez", "Moore", "Nash", "Ortiz", "Patel", "Quinn", "Reed", "Silva", "Tran", "Usman", "Vance",
        "Wong", "Young", "Zhang", "Brooks", "Cole", "Grant", "Hayes", "Lane", "Mills", "Price")
PHONE_CC = ("+1", "+1", "+1", "+44", "+49", "+61", "+81", "+91", "+92")
BLOOD = ("A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-")
EYES = ("Amber", "Blue", "Brown", "Gray", "Green", "Hazel", "Red", "Violet")
HAIR_COLOR = ("Black", "Blonde", "Blue", "Brown", "Gray", "Green", "Purple", "Red", "White")
HAIR_TYPE = ("Curly", "Kinky", "Straight", "Wavy")
STREETS = ("Main Street", "Oak Avenue", "Pine Road", "Maple Lane", "Cedar Drive", "Elm Street",
           "Lake Road", "Hill Street", "Park Avenue", "River Road", "Second Street", "Tenth Street")
CITIES = ("Springfield", "Riverton", "Fairview", "Georgetown", "Madison", "Franklin", "Clinton",
          "Salem", "Arlington", "Ashland", "Dover", "Milton", "Newport", "Oxford", "Burlington")
STATES = (("Alabama", "AL"), ("Alaska", "AK"), ("Arizona", "AZ"), ("California", "CA"),
          ("Colorado", "CO"), ("Florida", "FL"), ("Georgia", "GA"), ("Illinois", "IL"), ("Iowa", "IA"),
          ("Kansas", "KS"), ("Maine", "ME"), ("Michigan", "MI"), ("Nevada", "NV"), ("New York", "NY"),
          ("Ohio", "OH"), ("Oregon", "OR"), ("Texas", "TX"), ("Utah", "UT"), ("Vermont", "VT"),
          ("Washington", "WA"), ("Wisconsin", "WI"))
UNIVERSITIES = ("State University", "Institute of Technology", "City College", "Polytechnic University",
                "University of the Lakes", "Northern University", "Coastal University", "Valley College")
CARD_TYPES = (("Visa", "4", 16), ("Mastercard", "5", 16), ("American Express", "37", 15),
              ("Discover", "6011", 16), ("JCB", "35", 16), ("Diners Club International", "36", 16),
              ("UnionPay", "62", 16))
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "AUD", "INR", "CNY", "NZD", "PKR")
IBAN_CC = ("DE", "FR", "GB", "NL", "ES", "IT")
DEPARTMENTS = ("Accounting", "Business Development", "Engineering", "Human Resources", "Legal",
               "Marketing", "Product Management", "Research and Development", "Sales", "Services",
               "Support", "Training")
TITLES = ("Accountant", "Analyst", "Engineer", "Manager", "Designer", "Consultant", "Director",
          "Specialist", "Coordinator", "Administrator", "Developer", "Officer")
COMPANY_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay",
                 "Wonka", "Tyrell", "Cyberdyne", "Soylent", "Aperture", "Massive", "Oscorp")
COMPANY_SUFFIX = ("Inc", "LLC", "Group", "and Sons", "Partners", "Labs")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
)

CATEGORIES = (
    # slug, price range, nouns, brands
    ("beauty", (2.0, 60.0), ("Mascara", "Lipstick", "Powder", "Eyeliner", "Blush"), ("Lumiere", "Glowa")),
    ("fragrances", (20.0, 150.0), ("Eau de Parfum", "Cologne", "Body Mist"), ("Aroma", "Scentra")),
    ("furniture", (80.0, 3000.0), ("Sofa", "Bed", "Table", "Chair", "Wardrobe"), ("Woodly", "Casa")),
    ("groceries", (0.79, 25.0), ("Apples", "Rice", "Milk", "Eggs", "Honey", "Coffee"), ()),
    ("home-decoration", (10.0, 120.0), ("Vase", "Lamp", "Clock", "Mirror"), ("Decora",)),
    ("kitchen-accessories", (3.0, 90.0), ("Spatula", "Whisk", "Pan", "Kettle", "Grater"), ()),
    ("laptops", (600.0, 2500.0), ("Laptop 14", "Notebook Pro", "Ultrabook"), ("Compu", "Nimbus")),
    ("mens-shirts", (15.0, 60.0), ("Oxford Shirt", "Polo", "Flannel Shirt"), ("Tailor", "Urbano")),
    ("mens-shoes", (40.0, 200.0), ("Sneakers", "Loafers", "Boots"), ("Stride", "Kicks")),
    ("mens-watches", (90.0, 12000.0), ("Chronograph", "Diver Watch", "Dress Watch"), ("Horo", "Tempo")),
    ("mobile-accessories", (5.0, 250.0), ("Charger", "Case", "Earbuds", "Cable"), ("Volt", "Plugo")),
    ("motorcycle", (3000.0, 30000.0), ("Roadster", "Cruiser", "Scrambler"), ("Moto", "Rider")),
    ("skin-care", (5.0, 60.0), ("Lotion", "Serum", "Cleanser"), ("Dermo",)),
    ("smartphones", (150.0, 1500.0), ("Phone X", "Phone Lite", "Phone Max"), ("Pixelo", "Fonix")),
    ("sports-accessories", (5.0, 300.0), ("Ball", "Racket", "Helmet", "Gloves", "Bat"), ()),
    ("sunglasses", (15.0, 200.0), ("Aviators", "Wayfarers", "Sport Shades"), ("Solaro",)),
    ("tablets", (200.0, 1200.0), ("Tab 10", "Tab Mini"), ("Pixelo", "Fonix")),
    ("tops", (10.0, 60.0), ("Blouse", "Tank Top", "Crop Top"), ()),
    ("vehicle", (20000.0, 36999.99), ("Sedan", "SUV", "Coupe"), ("Autom", "Carro")),
    ("womens-bags", (30.0, 600.0), ("Tote", "Handbag", "Clutch"), ("Bolsa", "Carryall")),
    ("womens-dresses", (30.0, 250.0), ("Maxi Dress", "Sundress", "Gown"), ("Moda",)),
    ("womens-jewellery", (20.0, 900.0), ("Necklace", "Earrings", "Bracelet"), ("Gemma",)),
    ("womens-shoes", (30.0, 250.0), ("Heels", "Sandals", "Flats"), ("Stride",)),
    ("womens-watches", (60.0, 5000.0), ("Quartz Watch", "Bracelet Watch"), ("Horo", "Tempo")),
)
ADJECTIVES = ("Classic", "Premium", "Essential", "Deluxe", "Compact", "Vintage", "Modern", "Eco",
              "Ultra", "Smart", "Organic", "Pro", "Mini", "Royal", "Urban", "Everyday")
TAG_EXTRA = ("new", "sale", "bestseller", "eco", "gift", "limited")
WARRANTY = ("1 week warranty", "1 month warranty", "3 months warranty", "6 months warranty",
            "1 year warranty", "2 year warranty", "3 year warranty", "5 year warranty",
            "Lifetime warranty", "No warranty")
SHIPPING = ("Ships overnight", "Ships in 1-2 business days", "Ships in 3-5 business days",
            "Ships in 1 week", "Ships in 2 weeks", "Ships in 1 month")
RETURNS = ("7 days return policy", "30 days return policy", "60 days return policy",
           "90 days return policy", "No return policy")
COMMENTS = ("Great product!", "Very satisfied!", "Would buy again!", "Highly recommended!",
            "Excellent quality!", "Fast shipping!", "Not as described!", "Poor quality!",
            "Very disappointed!", "Waste of money!", "Great value for money!", "Would not recommend!")
STAMPS = ("2025-04-30T09:41:02.053Z", "2025-04-30T09:41:02.054Z")
QR_CODE = "https://cdn.dummyjson.com/public/qr-code.png"
N_STATES, N_STREETS, N_CITIES = len(STATES), len(STREETS), len(CITIES)


def _num(x: float) -> float | int:
    """Round-tripped like JSON from JavaScript: an integral value is written without a fraction."""
    return int(x) if x == int(x) else x


def _slug(text: str) -> str:
    return "-".join(text.lower().replace("&", "and").split())


def generate_catalog(
    users: int = SNAPSHOT_SIZES["users"],
    products: int = SNAPSHOT_SIZES["products"],
    carts: int = SNAPSHOT_SIZES["carts"],
    seed: int = DEFAULT_SEED,
) -> Catalog:
    """A deterministic DummyJSON-shaped catalogue with ids 1..n per collection."""
    for name, n in (("users", users), ("products", products), ("carts", carts)):
        if n < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
    if carts and (not users or not products):
        raise ValueError("carts need at least one user and one product")
    # Millions of small acyclic dicts: the cyclic GC would rescan the growing heap again and again (about
    # half the run time); pause it while building.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        u = _gen_users(users, random.Random(f"shopstream-dummyjson:{seed}:users"))
        p = _gen_products(products, random.Random(f"shopstream-dummyjson:{seed}:products"))
        c = _gen_carts(carts, users, p, random.Random(f"shopstream-dummyjson:{seed}:carts"))
    finally:
        if gc_was_enabled:
            gc.enable()
    return Catalog(users=u, products=p, carts=c, source=f"generated(seed={seed})")


def _cents(n: int) -> float | int:
    """n/100 with at most 2 decimals (exact shortest repr); integral values as int, like JavaScript."""
    return n // 100 if n % 100 == 0 else n / 100


def _address(r, getbits) -> dict[str, Any]:
    state, code = STATES[int(r() * N_STATES)]
    return {
        "address": f"{1 + int(r() * 9999)} {STREETS[int(r() * N_STREETS)]}",
        "city": CITIES[int(r() * N_CITIES)],
        "state": state,
        "stateCode": code,
        "postalCode": str(getbits(17) % 90000 + 10000),
        # Integer micro-degrees / 1e6: six decimals at most, no round() needed.
        "coordinates": {"lat": (getbits(28) % 180_000_001 - 90_000_000) / 1e6,
                        "lng": (getbits(29) % 360_000_001 - 180_000_000) / 1e6},
        "country": "United States",
    }


def _gen_users(n: int, rng: random.Random) -> list[dict[str, Any]]:
    r, getbits = rng.random, rng.getrandbits
    out = []
    for uid in range(1, n + 1):
        female = r() < 0.5
        first = FIRST_F[int(r() * len(FIRST_F))] if female else FIRST_M[int(r() * len(FIRST_M))]
        last = LAST[int(r() * len(LAST))]
        maiden = LAST[int(r() * len(LAST))] if r() < 0.29 else ""
        age = 23 + int(r() * 24)
        username = f"{first.lower()}{last[0].lower()}{uid}"
        card_type, prefix, digits = CARD_TYPES[int(r() * len(CARD_TYPES))]
        body = digits - len(prefix)
        ip = getbits(32)
        mac = f"{getbits(48):012x}"
        roll = r()
        # Phone groups start with 2-8, ein/ssn with 9 and never "0": a dropped PII value can then never
        # show up inside a kept field (a phone, a zero-padded order/event id), so substring leak checks
        # on generated data are exact.
        phone = getbits(40)
        ids = getbits(50)
        company_name = (f"{COMPANY_WORDS[int(r() * len(COMPANY_WORDS))]} "
                        f"{COMPANY_SUFFIX[int(r() * len(COMPANY_SUFFIX))]}")
        out.append({
            "id": uid,
            "firstName": first,
            "lastName": last,
            "maidenName": maiden,
            "age": age,
            "gender": "female" if female else "male",
            "email": f"{first.lower()}.{last.lower()}.{uid}@x.dummyjson.com",
            "phone": f"{PHONE_CC[int(r() * len(PHONE_CC))]} {200 + phone % 700}-{200 + (phone >> 10) % 700}-{1000 + (phone >> 20) % 9000}",
            "username": username,
            "password": f"{username}pass",
            "birthDate": f"{2025 - age}-{1 + int(r() * 12)}-{1 + int(r() * 28)}",
            "image": f"https://dummyjson.com/icon/{username}/128",
            "bloodGroup": BLOOD[int(r() * len(BLOOD))],
            "height": _cents(15000 + getbits(13) % 5000),
            "weight": _cents(4500 + getbits(13) % 6500),
            "eyeColor": EYES[int(r() * len(EYES))],
            "hair": {"color": HAIR_COLOR[int(r() * len(HAIR_COLOR))],
                     "type": HAIR_TYPE[int(r() * len(HAIR_TYPE))]},
            "ip": f"{1 + (ip >> 24) % 223}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}",
            "address": _address(r, getbits),
            "macAddress": f"{mac[0:2]}:{mac[2:4]}:{mac[4:6]}:{mac[6:8]}:{mac[8:10]}:{mac[10:12]}",
            "university": f"{CITIES[int(r() * len(CITIES))]} {UNIVERSITIES[int(r() * len(UNIVERSITIES))]}",
            "bank": {
                "cardExpire": f"{1 + int(r() * 12):02d}/{26 + int(r() * 6)}",
                "cardNumber": f"{prefix}{getbits(56) % 10 ** body:0{body}d}",
                "cardType": card_type,
                "currency": CURRENCIES[int(r() * len(CURRENCIES))],
                "iban": f"{IBAN_CC[int(r() * len(IBAN_CC))]}{getbits(7) % 90 + 10}{getbits(64) % 10 ** 18:018d}",
            },
            "company": {
                "department": DEPARTMENTS[int(r() * len(DEPARTMENTS))],
                "name": company_name,
                "title": TITLES[int(r() * len(TITLES))],
                "address": _address(r, getbits),
            },
            "ein": f"{900 + ids % 100}-{100 + (ids >> 7) % 900}",
            "ssn": f"{900 + (ids >> 17) % 100}-{100 + (ids >> 24) % 900}-{100 + (ids >> 34) % 900}",
            "userAgent": USER_AGENTS[int(r() * len(USER_AGENTS))],
            "crypto": {"coin": "Bitcoin", "wallet": f"0x{getbits(160):040x}", "network": "Ethereum (ERC20)"},
            "role": "admin" if roll < 0.025 else "moderator" if roll < 0.075 else "user",
        })
    return out


def _gen_products(n: int, rng: random.Random) -> list[dict[str, Any]]:
    r, getbits = rng.random, rng.getrandbits
    out = []
    for pid in range(1, n + 1):
        slug, (lo, hi), nouns, brands = CATEGORIES[int(r() * len(CATEGORIES))]
        noun = nouns[int(r() * len(nouns))]
        adjective = ADJECTIVES[int(r() * len(ADJECTIVES))]
        title = f"{adjective} {noun}"
        brand = brands[int(r() * len(brands))] if brands and r() < 0.6 else None
        stock_roll = r()
        stock = 0 if stock_roll < 0.02 else 1 + int(r() * 6) if stock_roll < 0.09 else 7 + int(r() * 94)
        tags = [slug.split("-")[0], noun.split()[-1].lower()][: 1 + int(r() * 2)]
        if r() < 0.05:
            tags.append(TAG_EXTRA[int(r() * len(TAG_EXTRA))])
        stamp = STAMPS[int(r() * 2)]
        path = f"https://cdn.dummyjson.com/product-images/{slug}/{_slug(title)}-{pid}"
        reviews = []
        for _ in range(3):
            rf = FIRST_F[int(r() * len(FIRST_F))] if r() < 0.5 else FIRST_M[int(r() * len(FIRST_M))]
            rl = LAST[int(r() * len(LAST))]
            reviews.append({
                "rating": 1 + int(r() * 5),
                "comment": COMMENTS[int(r() * len(COMMENTS))],
                "date": stamp,
                "reviewerName": f"{rf} {rl}",
                "reviewerEmail": f"{rf.lower()}.{rl.lower()}@x.dummyjson.com",
            })
        record: dict[str, Any] = {
            "id": pid,
            "title": title,
            "description": f"The {title.lower()} from our {slug.replace('-', ' ')} range: "
                           f"{'durable' if r() < 0.5 else 'lightweight'} and easy to use.",
            "category": slug,
            "price": _num(round(lo + r() * (hi - lo), 2)),
            "discountPercentage": _num(round(r() * 20, 2)),
            "rating": _num(round(2.5 + r() * 2.49, 2)),
            "stock": stock,
            "tags": tags,
        }
        if brand is not None:
            record["brand"] = brand
        record.update({
            "sku": f"{slug[:3].upper()}-{(brand or 'GEN')[:3].upper()}-{noun[:3].upper()}-{pid:03d}",
            "weight": 1 + int(r() * 10),
            "dimensions": {"width": _num(round(5 + r() * 25, 2)), "height": _num(round(5 + r() * 25, 2)),
                           "depth": _num(round(5 + r() * 25, 2))},
            "warrantyInformation": WARRANTY[int(r() * len(WARRANTY))],
            "shippingInformation": SHIPPING[int(r() * len(SHIPPING))],
            "availabilityStatus": "Out of Stock" if stock == 0 else "Low Stock" if stock < 7 else "In Stock",
            "reviews": reviews,
            "returnPolicy": RETURNS[int(r() * len(RETURNS))],
            "minimumOrderQuantity": 1 + int(r() * 50),
            "meta": {"createdAt": stamp, "updatedAt": stamp,
                     "barcode": f"{getbits(44) % 10 ** 13:013d}", "qrCode": QR_CODE},
            "images": [f"{path}/{i}.webp" for i in range(1, 2 + int(r() * 5))],
            "thumbnail": f"{path}/thumbnail.webp",
        })
        out.append(record)
    return out


def _gen_carts(n: int, n_users: int, products: list[dict[str, Any]], rng: random.Random) -> list[dict]:
    r = rng.random
    n_products = len(products)
    out = []
    for cid in range(1, n + 1):
        # Like the snapshot, cart i belongs to user i while there are users; beyond that, a random user.
        user_id = cid if cid <= n_users else 1 + int(r() * n_users)
        picks = [products[int(r() * n_products)] for _ in range(2 + int(r() * 5))]
        if r() < 0.06:  # the same product twice, as separate lines (12 of 208 carts in the snapshot)
            picks[-1] = picks[int(r() * (len(picks) - 1))]
        lines = []
        cart_total = cart_discounted = 0.0
        quantity_sum = 0
        for product in picks:
            quantity = 1 + int(r() * 5)
            price = product["price"]
            line_total = price * quantity  # raw float product, not rounded (like the snapshot)
            discounted = round(line_total * (1 - product["discountPercentage"] / 100), 2)
            lines.append({
                "id": product["id"],
                "title": product["title"],
                "price": price,
                "quantity": quantity,
                "total": _num(line_total),
                "discountPercentage": product["discountPercentage"],
                "discountedTotal": _num(discounted),
                "thumbnail": product["thumbnail"],
            })
            cart_total += line_total
            cart_discounted += discounted
            quantity_sum += quantity
        out.append({
            "id": cid,
            "products": lines,
            "total": _num(round(cart_total, 2)),
            "discountedTotal": _num(round(cart_discounted, 2)),
            "userId": user_id,
            "totalProducts": len(lines),
            "totalQuantity": quantity_sum,
        })
    return out


def catalog_digest(catalog: Catalog) -> str:
    """sha256 of the catalogue's canonical JSON (to compare runs)."""
    import hashlib

    h = hashlib.sha256()
    for resource in RESOURCES:
        h.update(json.dumps(catalog[resource], sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()
