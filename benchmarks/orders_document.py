"""A synthetic GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL flat file for the landing benchmark.

32 columns as Amazon writes them (tab-separated, unquoted, gzip), EU marketplaces, one row per order
item, realistic values (order ids, ISO timestamps, prices with tax, promotions, addresses), purchase
dates over 31 days: in date order like Amazon's, or (``date_order=False``) in random order, so that
every block of the document touches every daily partition (the worst case for landing by partition).

Generated vectorised (numpy + pyarrow's CSV writer), streaming: any size, constant memory.
"""

from __future__ import annotations

import gzip
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
HEADER = (
    "amazon-order-id merchant-order-id purchase-date last-updated-date order-status fulfillment-channel "
    "sales-channel order-channel url ship-service-level product-name sku asin item-status quantity currency "
    "item-price item-tax shipping-price shipping-tax gift-wrap-price gift-wrap-tax item-promotion-discount "
    "ship-promotion-discount ship-city ship-state ship-postal-code ship-country promotion-ids "
    "is-business-order purchase-order-number price-designation"
).split()
# One report for the seller's EU marketplaces: the report's marketplace_id is their joined ids.
MARKETPLACES = {
    "A1PA6795UKMFR9": ("Amazon.de", "DE", 0.19),
    "A13V1IB3VIYZZH": ("Amazon.fr", "FR", 0.20),
    "APJ6JRA9NG5V4": ("Amazon.it", "IT", 0.22),
    "A1RKKUPIHCS9HS": ("Amazon.es", "ES", 0.21),
}
MARKETPLACE_ID = ",".join(MARKETPLACES)
START = datetime(2026, 10, 21, tzinfo=timezone.utc)
DAYS = 31
BLOCK_ROWS = 50_000

_PRODUCTS = [
    "Bamboo Cutting Board Set, 3 Pieces with Juice Groove",
    "Stainless Steel Water Bottle 750 ml, Vacuum Insulated",
    "Wireless Bluetooth Earbuds with Charging Case",
    "USB-C Charging Cable 2 m, Braided Nylon (2-Pack)",
    "LED Desk Lamp with Wireless Charger, Dimmable",
    "Yoga Mat Non-Slip 183 x 61 cm, 6 mm",
    "Cast Iron Skillet 26 cm, Pre-Seasoned",
    "Kinder Regenjacke wasserdicht, Gr. 116",
    "Housse de couette 240x220 cm en coton",
    "Set di pennelli da trucco professionali, 12 pezzi",
    "Auriculares inalambricos con cancelacion de ruido",
    "Coffee Grinder Electric, Conical Burr",
    "Phone Case for Galaxy S24, Shockproof Clear",
    "Garden Hose 30 m Expandable with Spray Nozzle",
    "Notebook A5 Dotted, 160 Pages, Hardcover",
    "Resistance Bands Set of 5 with Door Anchor",
    "Mechanical Keyboard 75% Hot-Swappable, RGB",
    "Silicone Baking Mats, Set of 2",
    "Dog Harness No Pull, Reflective, Size M",
    "Electric Toothbrush Heads, 8 Pack",
]
_PLACES = {
    "DE": [("Berlin", "Berlin", "10#5#"), ("Muenchen", "Bayern", "80##1"), ("Hamburg", "Hamburg", "20##9"),
           ("Koeln", "Nordrhein-Westfalen", "50##7")],
    "FR": [("Paris", "Ile-de-France", "750##"), ("Lyon", "Auvergne-Rhone-Alpes", "6900#"), ("Marseille", "PACA", "130##")],
    "IT": [("Milano", "MI", "201##"), ("Roma", "RM", "001##"), ("Torino", "TO", "101##")],
    "ES": [("Madrid", "Madrid", "280##"), ("Barcelona", "Barcelona", "080##"), ("Valencia", "Valencia", "460##")],
}
_STATUS = (["Shipped", "Pending", "Cancelled", "Shipping"], [0.80, 0.10, 0.05, 0.05])
CATALOG = 5000


def _choice(rng, options, n, p=None) -> pa.Array:
    return pa.array(options, pa.string()).take(pa.array(rng.choice(len(options), n, p=p)))


def _digits(rng, n, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(rng.integers(0, 10**width, n)), pa.string()), width, "0")


def _money(cents: np.ndarray, keep: np.ndarray) -> pa.Array:
    """cents -> "12.34" ("" where not keep)."""
    sign = np.where(cents < 0, "-", "")
    cents = np.abs(cents)
    text = pc.binary_join_element_wise(
        pa.array(sign), pc.cast(pa.array(cents // 100), pa.string()), ".",
        pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0"), "",
    )
    return pc.if_else(pa.array(keep), text, "")


_TWO_DIGITS = pa.array([f"{i:02d}" for i in range(100)])


def _timestamps(seconds: np.ndarray) -> pa.Array:
    """epoch seconds -> "2026-11-20T14:03:12+00:00" (pc.strftime is ~10x slower)."""
    first_day = int(START.timestamp()) // 86400
    days = pa.array([datetime.fromtimestamp((first_day + d) * 86400, timezone.utc).strftime("%Y-%m-%d")
                     for d in range(DAYS + 4)])
    day = seconds // 86400
    sec = seconds % 86400
    two = lambda v: _TWO_DIGITS.take(pa.array(v))
    return pc.binary_join_element_wise(
        days.take(pa.array(day - first_day)), "T", two(sec // 3600), ":", two(sec // 60 % 60), ":", two(sec % 60),
        "+00:00", "",
    )


def _catalog(seed: int):
    rng = np.random.default_rng(seed + 1)
    letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))
    codes = ["".join(rng.choice(letters, 4)) for _ in range(CATALOG)]
    skus = [f"{c[:2]}-{i:04d}-{c[2:]}" for i, c in enumerate(codes)]
    asins = ["B0" + "".join(rng.choice(letters, 8)) for _ in range(CATALOG)]
    names = [_PRODUCTS[i % len(_PRODUCTS)] for i in range(CATALOG)]
    prices = rng.integers(499, 24999, CATALOG)
    return pa.array(skus), pa.array(asins), pa.array(names), prices


def _block(rng, n: int, catalog, window: tuple[float, float] | None) -> pa.Table:
    """``n`` rows; purchase dates in ``window`` (fractions of the month), sorted, or anywhere in the month
    in random order when ``window`` is None."""
    skus, asins, names, prices = catalog
    mkt = rng.choice(len(MARKETPLACES), n, p=[0.5, 0.2, 0.15, 0.15])
    domains = [v[0] for v in MARKETPLACES.values()]
    countries = [v[1] for v in MARKETPLACES.values()]
    tax_rate = np.array([v[2] for v in MARKETPLACES.values()])[mkt]
    span = DAYS * 86400
    if window is None:
        purchased = int(START.timestamp()) + rng.integers(0, span, n)
    else:
        low, high = (min(int(f * span), span - 1) for f in window)
        purchased = int(START.timestamp()) + np.sort(rng.integers(low, max(high, low + 1), n))
    updated = purchased + rng.integers(600, 3 * 86400, n)
    status_i = rng.choice(4, n, p=_STATUS[1])
    status = pa.array(_STATUS[0]).take(pa.array(status_i))
    priced = (status_i != 1) & (status_i != 2)  # Amazon leaves the money empty while Pending / Cancelled
    product = rng.integers(0, CATALOG, n)
    quantity = np.where(status_i == 2, 0, rng.choice([1, 2, 3], n, p=[0.8, 0.15, 0.05]))
    price = prices[product] * np.maximum(quantity, 1)
    shipping = np.where(rng.random(n) < 0.6, 0, rng.integers(199, 899, n))
    promo = rng.random(n) < 0.15
    business = rng.random(n) < 0.1
    place_i = rng.integers(0, 3, n)
    cities, states, postals = [], [], []
    for c in countries:
        cities.append([p[0] for p in _PLACES[c]][:3])
        states.append([p[1] for p in _PLACES[c]][:3])
        postals.append([p[2] for p in _PLACES[c]][:3])
    flat = mkt * 3 + place_i
    city = pa.array([x for c in cities for x in c]).take(pa.array(flat))
    state = pa.array([x for c in states for x in c]).take(pa.array(flat))
    postal_pattern = pa.array([x for c in postals for x in c]).take(pa.array(flat))
    postal = pc.replace_substring(postal_pattern, "#", "0")  # cheap: digits vary through the pattern choice
    prefix = pc.cast(pa.array(rng.integers(1, 10, n)), pa.string())
    order_id = pc.binary_join_element_wise("30", prefix, "-", _digits(rng, n, 7), "-", _digits(rng, n, 7), "")
    columns = {
        "amazon-order-id": order_id,
        "merchant-order-id": pa.array([""] * n),
        "purchase-date": _timestamps(purchased),
        "last-updated-date": _timestamps(updated),
        "order-status": status,
        "fulfillment-channel": _choice(rng, ["Amazon", "Merchant"], n, [0.7, 0.3]),
        "sales-channel": pa.array(domains).take(pa.array(mkt)),
        "order-channel": pa.array([""] * n),
        "url": pa.array([""] * n),
        "ship-service-level": _choice(rng, ["Standard", "Expedited", "SecondDay"], n, [0.7, 0.2, 0.1]),
        "product-name": names.take(pa.array(product)),
        "sku": skus.take(pa.array(product)),
        "asin": asins.take(pa.array(product)),
        "item-status": pc.if_else(pa.array(status_i == 0), "Shipped",
                                  pc.if_else(pa.array(status_i == 2), "Cancelled", "Unshipped")),
        "quantity": pc.cast(pa.array(quantity), pa.string()),
        "currency": pa.array(["EUR"] * n),
        "item-price": _money(price, priced),
        "item-tax": _money(np.round(price * tax_rate).astype(np.int64), priced),
        "shipping-price": _money(shipping, priced),
        "shipping-tax": _money(np.round(shipping * tax_rate).astype(np.int64), priced),
        "gift-wrap-price": pa.array([""] * n),
        "gift-wrap-tax": pa.array([""] * n),
        "item-promotion-discount": _money(-(price // 10), priced & promo),
        "ship-promotion-discount": _money(-shipping, priced & promo & (shipping > 0)),
        "ship-city": city,
        "ship-state": state,
        "ship-postal-code": postal,
        "ship-country": pa.array(countries).take(pa.array(mkt)),
        "promotion-ids": pc.if_else(pa.array(priced & promo),
                                    pc.binary_join_element_wise("Core Free Shipping ", _digits(rng, n, 8), ""), ""),
        "is-business-order": pc.if_else(pa.array(business), "true", "false"),
        "purchase-order-number": pc.if_else(
            pa.array(business & (rng.random(n) < 0.5)), pc.binary_join_element_wise("PO-", _digits(rng, n, 6), ""), ""
        ),
        "price-designation": pc.if_else(pa.array(business), "BusinessPrice", ""),
    }
    return pa.table(columns)


class _Counting:
    def __init__(self, f):
        self.f, self.n = f, 0

    def write(self, data) -> int:
        n = len(memoryview(data).cast("B"))
        self.n += n
        self.f.write(data)
        return n

    @property
    def closed(self) -> bool:
        return False

    def flush(self) -> None:
        pass


ROW_BYTES = 253  # average row length of this generator, to spread the dates over the document


def write_document(path: str, target_bytes: int, *, seed: int = 7, compresslevel: int = 1,
                   date_order: bool = True) -> tuple[int, int]:
    """Write a gzip orders flat file of ~target_bytes uncompressed bytes; returns (uncompressed bytes, rows).

    ``date_order``: rows sorted by purchase date, as Amazon lists orders; otherwise in random date order
    (every block of rows touches every day: the worst case for landing by partition)."""
    expected_rows = max(BLOCK_ROWS, target_bytes // ROW_BYTES)
    rng = np.random.default_rng(seed)
    catalog = _catalog(seed)
    rows = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
        counting = _Counting(gz)
        sink = pa.PythonFile(counting, mode="w")
        options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
        counting.write(("\t".join(HEADER) + "\n").encode())
        schema = pa.schema([(h, pa.string()) for h in HEADER])
        with pacsv.CSVWriter(sink, schema, write_options=options) as writer:
            while counting.n < target_bytes:
                window = (rows / expected_rows, (rows + BLOCK_ROWS) / expected_rows) if date_order else None
                block = _block(rng, BLOCK_ROWS, catalog, window)
                writer.write_table(block)
                rows += block.num_rows
    return counting.n, rows
