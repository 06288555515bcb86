"""Report document contents: Amazon-style flat files, XML and JSON, localized per marketplace.

Content is a pure function of (seed, report), so a document downloads identically every time.
Flat files are unquoted, tab-separated, with a header row and `\\n` line ends, as Amazon serves them;
GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL is an AmazonEnvelope of Order messages and
GET_SALES_AND_TRAFFIC_REPORT is JSON following Amazon's sellerSalesAndTrafficReport schema (see
structured.py). The document quirks of EmulatorConfig (BOM, CRLF, trailing tabs, mislabelled charset
or compression, empty or header-only documents, column drift, undecodable bytes) are applied here.
"""

from __future__ import annotations

import gzip
import json
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .config import DocumentQuirks
from .locales import LOCALES, Locale
from .marketplaces import CHARSET_LABELS, MARKETPLACES, Marketplace
from .report_types import RESTRICTED_REPORT_TYPES
from .state import DAY, Report, iso

ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"
SHIPMENTS = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL"
INVOICING_SHIPMENTS = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING"
RETURNS = "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"
SETTLEMENT = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"
XML_ORDERS = "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
SALES_AND_TRAFFIC = "GET_SALES_AND_TRAFFIC_REPORT"

COLUMNS: dict[str, list[str]] = {
    ORDERS: [
        "amazon-order-id",
        "merchant-order-id",
        "purchase-date",
        "last-updated-date",
        "order-status",
        "fulfillment-channel",
        "sales-channel",
        "order-channel",
        "url",
        "ship-service-level",
        "product-name",
        "sku",
        "asin",
        "item-status",
        "quantity",
        "currency",
        "item-price",
        "item-tax",
        "shipping-price",
        "shipping-tax",
        "gift-wrap-price",
        "gift-wrap-tax",
        "item-promotion-discount",
        "ship-promotion-discount",
        "ship-city",
        "ship-state",
        "ship-postal-code",
        "ship-country",
        "promotion-ids",
        "is-business-order",
        "purchase-order-number",
        "price-designation",
    ],
    LISTINGS: [
        "item-name",
        "item-description",
        "listing-id",
        "seller-sku",
        "price",
        "quantity",
        "open-date",
        "image-url",
        "item-is-marketplace",
        "product-id-type",
        "zshop-shipping-fee",
        "item-note",
        "item-condition",
        "zshop-category1",
        "zshop-browse-path",
        "zshop-storefront-feature",
        "asin1",
        "asin2",
        "asin3",
        "will-ship-internationally",
        "expedited-shipping",
        "zshop-boldface",
        "product-id",
        "bid-for-featured-placement",
        "add-delete",
        "pending-quantity",
        "fulfillment-channel",
        "merchant-shipping-group",
        "status",
    ],
    INVENTORY: [
        "sku",
        "fnsku",
        "asin",
        "product-name",
        "condition",
        "your-price",
        "mfn-listing-exists",
        "mfn-fulfillable-quantity",
        "afn-listing-exists",
        "afn-warehouse-quantity",
        "afn-fulfillable-quantity",
        "afn-unsellable-quantity",
        "afn-reserved-quantity",
        "afn-total-quantity",
        "per-unit-volume",
        "afn-inbound-working-quantity",
        "afn-inbound-shipped-quantity",
        "afn-inbound-receiving-quantity",
        "afn-researching-quantity",
        "afn-reserved-future-supply",
        "afn-future-supply-buyable",
    ],
    INVOICING_SHIPMENTS: [
        "amazon-order-id",
        "merchant-order-id",
        "shipment-id",
        "shipment-item-id",
        "amazon-order-item-id",
        "merchant-order-item-id",
        "purchase-date",
        "payments-date",
        "shipment-date",
        "reporting-date",
        "buyer-email",
        "buyer-name",
        "buyer-phone-number",
        "sku",
        "product-name",
        "quantity-shipped",
        "currency",
        "item-price",
        "item-tax",
        "shipping-price",
        "shipping-tax",
        "gift-wrap-price",
        "gift-wrap-tax",
        "ship-service-level",
        "recipient-name",
        "ship-address-1",
        "ship-address-2",
        "ship-address-3",
        "ship-city",
        "ship-state",
        "ship-postal-code",
        "ship-country",
        "ship-phone-number",
        "bill-address-1",
        "bill-address-2",
        "bill-address-3",
        "bill-city",
        "bill-state",
        "bill-postal-code",
        "bill-country",
        "item-promotion-discount",
        "ship-promotion-discount",
        "carrier",
        "tracking-number",
        "estimated-arrival-date",
        "fulfillment-center-id",
        "fulfillment-channel",
        "sales-channel",
    ],
    RETURNS: [
        "return-date",
        "order-id",
        "sku",
        "asin",
        "fnsku",
        "product-name",
        "quantity",
        "fulfillment-center-id",
        "detailed-disposition",
        "reason",
        "status",
        "license-plate-number",
        "customer-comments",
    ],
    SETTLEMENT: [
        "settlement-id",
        "settlement-start-date",
        "settlement-end-date",
        "deposit-date",
        "total-amount",
        "currency",
        "transaction-type",
        "order-id",
        "merchant-order-id",
        "adjustment-id",
        "shipment-id",
        "marketplace-name",
        "amount-type",
        "amount-description",
        "amount",
        "fulfillment-id",
        "posted-date",
        "posted-date-time",
        "order-item-code",
        "merchant-order-item-id",
        "merchant-adjustment-item-id",
        "sku",
        "quantity-purchased",
        "promotion-id",
    ],
}
GENERIC_COLUMNS = ["date", "marketplace-id", "sku", "asin", "product-name", "quantity", "amount", "currency"]

# The buyer's personal data (PII). Only restricted report types, whose documents need a Restricted Data Token,
# carry these columns: the unrestricted shipments report is the invoicing one without them.
RESTRICTED_COLUMNS = (
    "buyer-email", "buyer-name", "buyer-phone-number", "recipient-name", "ship-address-1", "ship-address-2",
    "ship-address-3", "ship-phone-number", "bill-address-1", "bill-address-2", "bill-address-3", "bill-city",
    "bill-state", "bill-postal-code", "bill-country",
)  # fmt: skip
COLUMNS[SHIPMENTS] = [column for column in COLUMNS[INVOICING_SHIPMENTS] if column not in RESTRICTED_COLUMNS]
# Restricted types without a layout of their own: the generic columns, then the buyer's.
BUYER_COLUMNS = [
    "buyer-email", "buyer-name", "recipient-name", "ship-address-1", "ship-city", "ship-state", "ship-postal-code",
    "ship-country", "bill-address-1", "bill-city", "bill-state", "bill-postal-code", "bill-country",
]  # fmt: skip
ADDRESS_FIELDS = ("address-1", "city", "state", "postal-code", "country")

# Amazon.co.jp and Amazon.de write some headers in their own language (the others stay English);
# the project's report registry maps them back (header_aliases).
LOCALIZED_HEADERS: dict[str, dict[str, dict[str, str]]] = {
    LISTINGS: {
        "JP": {
            "item-name": "商品名", "item-description": "商品の説明", "listing-id": "出品ID", "seller-sku": "出品者SKU",
            "price": "価格", "quantity": "数量", "open-date": "出品日", "image-url": "画像URL",
            "product-id-type": "商品IDタイプ", "item-note": "コンディション説明", "item-condition": "コンディション",
            "product-id": "商品ID", "fulfillment-channel": "フルフィルメント・チャネル", "status": "ステータス",
        },
        "DE": {
            "item-name": "Artikelbezeichnung", "item-description": "Artikelbeschreibung", "listing-id": "Angebotsnummer",
            "seller-sku": "Händler-SKU", "price": "Preis", "quantity": "Menge", "open-date": "Erstellungsdatum",
            "product-id-type": "Produkt-ID-Typ", "item-note": "Anmerkung zum Artikel", "item-condition": "Zustand",
            "product-id": "Produkt-ID", "merchant-shipping-group": "Versender-Gruppe",
        },
    },
}  # fmt: skip

# column_drift="add": a column Amazon added without notice (the value is the same in every format).
DRIFT_COLUMN = "deemed-reseller-category"
DRIFT_VALUE = "AU_VOEC"
# Inserted into a line by bad_bytes_rate: 0x81 is undefined in cp1252, a bare continuation byte in
# UTF-8, and a cp932 lead byte that a space cannot follow, so no candidate charset decodes the line.
BAD_BYTES = b"\x81 "
UTF8_BOM = b"\xef\xbb\xbf"

TAX_RATES = {"USD": 0.08, "CAD": 0.13, "MXN": 0.16, "JPY": 0.10, "GBP": 0.20, "EUR": 0.19}
ALNUM = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class DocumentContent:
    data: bytes  # encoded text, not compressed
    content_type: str


@dataclass
class Lines:
    """A document before encoding: its lines, and where each line may take corrupted bytes."""

    lines: list[str]
    # Character offset in the line where bad bytes may be inserted; None = never (headers, markup).
    corruptible: Callable[[int, str], int | None]


def document_format(report_type: str) -> str:
    if report_type == SALES_AND_TRAFFIC:
        return "json"
    if report_type == XML_ORDERS:
        return "xml"
    return "tsv"


def charset_label(report_type: str, marketplace: Marketplace) -> str:
    if document_format(report_type) == "json":
        return "UTF-8"  # JSON is UTF-8 (RFC 8259) in every marketplace
    if marketplace.codec == "cp932":
        # Amazon labels some JP flat files Shift_JIS and others windows-31j; the bytes are cp932 in both.
        return "Shift_JIS" if report_type.startswith(("GET_FLAT_FILE", "GET_MERCHANT_LISTINGS")) else "windows-31j"
    return CHARSET_LABELS[marketplace.codec]


def report_marketplace(report: Report) -> Marketplace:
    # Flat files cover the first requested marketplace; that also fixes the document's encoding.
    return MARKETPLACES.get(report.marketplace_ids[0], MARKETPLACES["ATVPDKIKX0DER"])


def render(report: Report) -> DocumentContent:
    if report.outcome == "FATAL":
        body = json.dumps({"errorDetails": report.error_details or "Report processing failed."})
        return DocumentContent(body.encode("utf-8"), "application/json;charset=UTF-8")
    from .structured import sales_and_traffic_document, xml_orders_document

    marketplace = report_marketplace(report)
    quirks = report.quirks
    fmt = document_format(report.report_type)
    codec = "utf-8" if fmt == "json" else marketplace.codec
    label = quirks.mislabel_charset or charset_label(report.report_type, marketplace)
    media = {"tsv": "text/plain", "xml": "text/xml", "json": "application/json"}[fmt]
    content_type = f"{media};charset={label}"
    if quirks.empty_document:
        return DocumentContent(b"", content_type)
    if fmt == "xml":
        document = xml_orders_document(Generator(report, marketplace), quirks)
    elif fmt == "json":
        document = sales_and_traffic_document(Generator(report, marketplace), quirks)
    else:
        document = flat_file(report, marketplace)
    return DocumentContent(encode(document, codec, quirks, report), content_type)


def served_bytes(report: Report) -> tuple[bytes, str]:
    """The bytes exactly as the download URL serves them, and their Content-Type."""
    content = render(report)
    data = gzip.compress(content.data, mtime=0) if report.gzip_served else content.data
    return data, content.content_type


def encode(document: Lines, codec: str, quirks: DocumentQuirks, report: Report) -> bytes:
    """Encode line by line, corrupting some lines (bad_bytes_rate), with the quirks' line ends and BOM."""
    rng = random.Random(f"{report.seed}:{report.content_key}:bad-bytes")
    newline = b"\r\n" if quirks.crlf else b"\n"
    out = bytearray(UTF8_BOM if quirks.bom and codec == "utf-8" else b"")
    for number, line in enumerate(document.lines):
        at = document.corruptible(number, line) if quirks.bad_bytes_rate else None
        if at is not None and rng.random() < quirks.bad_bytes_rate:
            out += line[:at].encode(codec) + BAD_BYTES + line[at:].encode(codec)
        else:
            out += line.encode(codec)
        out += newline
    return bytes(out)


def flat_file(report: Report, marketplace: Marketplace) -> Lines:
    gen = Generator(report, marketplace)
    quirks = report.quirks
    columns, build = layout(report.report_type)
    if quirks.column_drift == "add":
        columns.insert(len(columns) // 2, DRIFT_COLUMN)
    elif quirks.column_drift == "drop":
        columns.pop()  # the last column: never a key or a date column in Amazon's layouts
    localized = LOCALIZED_HEADERS.get(report.report_type, {}).get(marketplace.country, {})
    lines = ["\t".join(localized.get(column, column) for column in columns)]
    if not quirks.header_only:
        end = "\t" if quirks.trailing_tabs else ""
        for row in build(gen, report.rows):
            row = {**row, DRIFT_COLUMN: DRIFT_VALUE}
            lines.append("\t".join(_clean(row.get(column, "")) for column in columns) + end)

    def corruptible(number: int, line: str) -> int | None:
        # Data lines only, right after the first tab (a character boundary in every codec).
        return line.index("\t") + 1 if number > 0 and "\t" in line else None

    return Lines(lines, corruptible)


def layout(report_type: str) -> tuple[list[str], RowBuilder]:
    """The columns of a flat file of ``report_type`` and what builds its rows."""
    if report_type in COLUMNS:
        return list(COLUMNS[report_type]), ROW_BUILDERS[report_type]
    if report_type in RESTRICTED_REPORT_TYPES:
        return GENERIC_COLUMNS + BUYER_COLUMNS, Generator.generic_buyer_rows
    return list(GENERIC_COLUMNS), Generator.generic_rows


def _clean(value: str) -> str:
    # A stray tab or newline would shift every following column in an unquoted flat file.
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


class Generator:
    """Deterministic row factory for one report."""

    def __init__(self, report: Report, marketplace: Marketplace) -> None:
        self.report = report
        self.mp = marketplace
        self.loc: Locale = LOCALES[marketplace.language]
        self.rng = random.Random(f"{report.seed}:{report.content_key}:content")
        start, end = report.data_start, report.data_end
        if end <= start:  # both default to "now"; give the rows a day to spread over
            start = end - DAY
        self.start, self.end = start, end
        self.tld = marketplace.domain.split("Amazon.", 1)[1]

    # --- small helpers -----------------------------------------------------------------------

    def code(self, length: int, alphabet: str = ALNUM) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def digits(self, length: int) -> str:
        return self.code(length, string.digits)

    def money(self, amount: float) -> str:
        if self.mp.currency == "JPY":
            return str(round(amount))
        return f"{amount:.2f}"

    def base_price(self) -> float:
        if self.mp.currency == "JPY":
            return float(self.rng.randrange(500, 20000, 10))
        return round(self.rng.uniform(4.99, 249.99), 2)

    def tax(self, amount: float) -> float:
        return amount * TAX_RATES.get(self.mp.currency, 0.10)

    def timestamps(self, n: int) -> list[float]:
        return sorted(self.rng.uniform(self.start, self.end) for _ in range(n))

    def local_time(self, ts: float) -> str:
        """Local time in the marketplace's layout: 2026-11-20 14:03:12 PST, 2026/11/20 ... JST, 20.11.2026 ... MEZ."""
        local = datetime.fromtimestamp(ts, UTC) + timedelta(hours=self.mp.utc_offset_hours)
        return self.mp.date_time(local, self.mp.zone_abbreviation)

    def utc_time(self, ts: float) -> str:
        """UTC in the marketplace's layout (settlements): 2026-11-20 14:03:12 UTC, 20.11.2026 14:03:12 UTC."""
        return self.mp.date_time(datetime.fromtimestamp(ts, UTC), "UTC")

    def local_amount(self, amount: float) -> str:
        """An amount as localised flat files write it (decimal comma in DE)."""
        return self.mp.amount(self.money(amount))

    def order_id(self) -> str:
        prefix = {"na": "11", "eu": "30", "fe": "25"}[self.mp.region]
        return f"{prefix}{self.rng.randint(1, 9)}-{self.digits(7)}-{self.digits(7)}"

    def person(self) -> str:
        given, family = self.rng.choice(self.loc.given_names), self.rng.choice(self.loc.family_names)
        return f"{family} {given}" if self.loc.family_name_first else f"{given} {family}"

    def place(self) -> dict[str, str]:
        city, state, postal = self.rng.choice(self.loc.places)
        postal = "".join(str(self.rng.randint(0, 9)) if ch == "#" else ch for ch in postal)
        return {"city": city, "state": state, "postal": postal, "country": self.mp.country}

    def buyer(self) -> dict[str, str]:
        """A buyer's PII as restricted documents carry it, billed where the goods were shipped."""
        place, name = self.place(), self.person()
        ship = {
            "ship-address-1": self.rng.choice(self.loc.streets),
            "ship-city": place["city"],
            "ship-state": place["state"],
            "ship-postal-code": place["postal"],
            "ship-country": place["country"],
        }
        email = f"{self.code(14).lower()}@marketplace.amazon.{self.tld.lower()}"
        return {"buyer-email": email, "buyer-name": name, "recipient-name": name, **ship, **billed_to(ship)}

    def product(self, index: int) -> dict[str, str | float]:
        """Catalog item `index` of this seller in this marketplace, identical across reports."""
        rng = random.Random(f"{self.report.seed}:{self.mp.id}:product:{index}")
        names = self.loc.products
        code = "".join(rng.choice(ALNUM) for _ in range(4))
        price = (
            float(rng.randrange(500, 20000, 10)) if self.mp.currency == "JPY" else round(rng.uniform(4.99, 249.99), 2)
        )
        return {
            "name": names[index % len(names)],
            "sku": f"{code[:2]}-{index:04d}-{code[2:]}",
            "asin": "B0" + "".join(rng.choice(ALNUM) for _ in range(8)),
            "fnsku": "X00" + "".join(rng.choice(ALNUM) for _ in range(7)),
            "price": price,
        }

    # --- report types ------------------------------------------------------------------------

    def order_rows(self, n: int):
        catalog = max(10, n)
        seen_orders: set[str] = set()
        order: dict[str, str] = {}
        items_in_order: set[int] = set()
        for ts in self.timestamps(n):
            # One row per order item; a quarter of the rows add an item to the previous order.
            if not order or len(items_in_order) >= 3 or self.rng.random() < 0.75:
                order_id = self.order_id()
                while order_id in seen_orders:
                    order_id = self.order_id()
                seen_orders.add(order_id)
                status = self.rng.choices(["Shipped", "Pending", "Cancelled", "Shipping"], [80, 10, 5, 5])[0]
                place = self.place()
                business = self.rng.random() < 0.1
                order = {
                    "amazon-order-id": order_id,
                    "purchase-date": iso(ts),
                    "last-updated-date": iso(min(ts + self.rng.uniform(600, 3 * DAY), self.report.created)),
                    "order-status": status,
                    "fulfillment-channel": self.rng.choice(["Amazon", "Amazon", "Merchant"]),
                    "sales-channel": self.mp.domain,
                    "ship-service-level": self.rng.choice(["Standard", "Expedited", "SecondDay"]),
                    "ship-city": place["city"],
                    "ship-state": place["state"],
                    "ship-postal-code": place["postal"],
                    "ship-country": place["country"],
                    "is-business-order": "true" if business else "false",
                    "purchase-order-number": f"PO-{self.digits(6)}" if business and self.rng.random() < 0.5 else "",
                    "price-designation": "BusinessPrice" if business else "",
                }
                items_in_order = set()
            index = self.rng.randrange(catalog)
            while index in items_in_order:
                index = self.rng.randrange(catalog)
            items_in_order.add(index)
            product = self.product(index)
            quantity = self.rng.choices([1, 2, 3], [80, 15, 5])[0]
            row = dict(order)
            status = order["order-status"]
            row.update(
                {
                    "product-name": str(product["name"]),
                    "sku": str(product["sku"]),
                    "asin": str(product["asin"]),
                    "item-status": {"Shipped": "Shipped", "Cancelled": "Cancelled"}.get(status, "Unshipped"),
                    "quantity": str(0 if status == "Cancelled" else quantity),
                    "currency": self.mp.currency,
                }
            )
            # Amazon leaves the money columns empty until an order is confirmed.
            if status not in ("Pending", "Cancelled"):
                price = float(product["price"]) * quantity
                shipping = 0.0 if self.rng.random() < 0.6 else self.base_price() / 10
                promo = self.rng.random() < 0.15
                row.update(
                    {
                        "item-price": self.money(price),
                        "item-tax": self.money(self.tax(price)),
                        "shipping-price": self.money(shipping),
                        "shipping-tax": self.money(self.tax(shipping)),
                        "gift-wrap-price": "",
                        "gift-wrap-tax": "",
                        "item-promotion-discount": self.money(-price * 0.1) if promo else "",
                        "ship-promotion-discount": self.money(-shipping) if promo and shipping else "",
                        "promotion-ids": f"Core Free Shipping {self.code(8)}" if promo else "",
                    }
                )
            yield row

    def listing_rows(self, n: int):
        channel = {"na": "AMAZON_NA", "eu": "AMAZON_EU", "fe": "AMAZON_FE"}[self.mp.region]
        for index in range(n):
            product = self.product(index)
            fba = self.rng.random() < 0.5
            quantity = self.rng.choice([0, 0, 3, 12, 40, 150])
            opened = self.report.created - self.rng.uniform(DAY, 900 * DAY)
            status = "Active" if fba or quantity else "Inactive"
            if self.rng.random() < 0.03:
                status = "Incomplete"
            yield {
                "item-name": str(product["name"]),
                "item-description": self.rng.choice(self.loc.descriptions),
                "listing-id": f"{datetime.fromtimestamp(opened, UTC):%m%d}{self.code(7)}",
                "seller-sku": str(product["sku"]),
                "price": self.local_amount(float(product["price"])),
                "quantity": "" if fba else str(quantity),
                "open-date": self.local_time(opened),
                "image-url": "",
                "item-is-marketplace": "y",
                "product-id-type": "1",
                "item-note": "",
                "item-condition": "11",
                "asin1": str(product["asin"]),
                "will-ship-internationally": "" if fba else self.rng.choice(["", "1"]),
                "expedited-shipping": "" if fba else self.rng.choice(["", "N"]),
                "product-id": str(product["asin"]),
                "pending-quantity": "0",
                "fulfillment-channel": channel if fba else "DEFAULT",
                "merchant-shipping-group": "" if fba else self.loc.shipping_group,
                "status": status,
            }

    def inventory_rows(self, n: int):
        for index in range(n):
            product = self.product(index)
            fulfillable = self.rng.choice([0, 0, 5, 24, 80, 310])
            unsellable = self.rng.choice([0, 0, 0, 1, 2])
            reserved = self.rng.choice([0, 0, 1, 3, 8])
            working, shipped, receiving = (self.rng.choice([0, 0, 0, 10, 50]) for _ in range(3))
            warehouse = fulfillable + unsellable + reserved
            mfn = self.rng.random() < 0.2
            yield {
                "sku": str(product["sku"]),
                "fnsku": str(product["fnsku"]),
                "asin": str(product["asin"]),
                "product-name": str(product["name"]),
                "condition": "New",
                "your-price": self.money(float(product["price"])),
                "mfn-listing-exists": "Yes" if mfn else "No",
                "mfn-fulfillable-quantity": str(self.rng.randint(0, 20)) if mfn else "",
                "afn-listing-exists": "Yes",
                "afn-warehouse-quantity": str(warehouse),
                "afn-fulfillable-quantity": str(fulfillable),
                "afn-unsellable-quantity": str(unsellable),
                "afn-reserved-quantity": str(reserved),
                "afn-total-quantity": str(warehouse + working + shipped + receiving),
                "per-unit-volume": f"{self.rng.uniform(0.01, 2.5):.2f}",
                "afn-inbound-working-quantity": str(working),
                "afn-inbound-shipped-quantity": str(shipped),
                "afn-inbound-receiving-quantity": str(receiving),
                "afn-researching-quantity": str(self.rng.choice([0, 0, 0, 1])),
                "afn-reserved-future-supply": "0",
                "afn-future-supply-buyable": "0",
            }

    def shipment_rows(self, n: int):
        catalog = max(10, n)
        for row_number, shipped in enumerate(self.timestamps(n)):
            product = self.product(self.rng.randrange(catalog))
            purchased = shipped - self.rng.uniform(2 * 3600, 2 * DAY)
            quantity = self.rng.choices([1, 2, 3], [85, 10, 5])[0]
            price = float(product["price"]) * quantity
            shipping = 0.0 if self.rng.random() < 0.7 else self.base_price() / 10
            place = self.place()
            carrier = self.rng.choice(self.loc.carriers)
            recipient = self.person()
            yield {
                "amazon-order-id": self.order_id(),
                "shipment-id": "D" + self.code(8),
                # The index keeps this natural key unique within the document.
                "shipment-item-id": f"D{self.code(7)}{row_number:05d}",
                "amazon-order-item-id": self.digits(14),
                "purchase-date": iso(purchased),
                "payments-date": iso(purchased + self.rng.uniform(30, 3600)),
                "shipment-date": iso(shipped),
                "reporting-date": iso(shipped + self.rng.uniform(600, 3 * 3600)),
                "buyer-email": f"{self.code(14).lower()}@marketplace.amazon.{self.tld.lower()}",
                "buyer-name": self.person(),
                "sku": str(product["sku"]),
                "product-name": str(product["name"]),
                "quantity-shipped": str(quantity),
                "currency": self.mp.currency,
                "item-price": self.money(price),
                "item-tax": self.money(self.tax(price)),
                "shipping-price": self.money(shipping),
                "shipping-tax": self.money(self.tax(shipping)),
                "gift-wrap-price": self.money(0),
                "gift-wrap-tax": self.money(0),
                "ship-service-level": self.rng.choice(["Standard", "Expedited"]),
                "recipient-name": recipient,
                "ship-address-1": self.rng.choice(self.loc.streets),
                "ship-city": place["city"],
                "ship-state": place["state"],
                "ship-postal-code": place["postal"],
                "ship-country": place["country"],
                "item-promotion-discount": self.money(0),
                "ship-promotion-discount": self.money(0),
                "carrier": carrier,
                "tracking-number": ("TBA" + self.digits(12)) if carrier.startswith("AMZN") else self.digits(12),
                "estimated-arrival-date": iso(shipped + self.rng.uniform(1, 4) * DAY),
                "fulfillment-center-id": self.rng.choice(self.loc.fulfillment_centers),
                "fulfillment-channel": "AFN",
                "sales-channel": self.mp.domain,
            }

    def invoicing_shipment_rows(self, n: int):
        """Shipments with their billing addresses: most buyers are billed where the goods went, some elsewhere."""
        for row in self.shipment_rows(n):
            billing = row if self.rng.random() < 0.8 else self.buyer()
            yield {**row, **billed_to(billing)}

    def return_rows(self, n: int):
        catalog = max(10, n)
        for returned in self.timestamps(n):
            product = self.product(self.rng.randrange(catalog))
            disposition = self.rng.choices(
                ["SELLABLE", "CUSTOMER_DAMAGED", "DEFECTIVE", "CARRIER_DAMAGED"], [60, 20, 15, 5]
            )[0]
            yield {
                "return-date": iso(returned),
                "order-id": self.order_id(),
                "sku": str(product["sku"]),
                "asin": str(product["asin"]),
                "fnsku": str(product["fnsku"]),
                "product-name": str(product["name"]),
                "quantity": "1",
                "fulfillment-center-id": self.rng.choice(self.loc.fulfillment_centers),
                "detailed-disposition": disposition,
                "reason": self.rng.choice(
                    ["UNWANTED_ITEM", "DEFECTIVE", "NOT_AS_DESCRIBED", "ORDERED_WRONG_ITEM", "SWITCHEROO"]
                ),
                "status": "Unit returned to inventory"
                if disposition == "SELLABLE"
                else self.rng.choice(["Reimbursed", "Repackaged Successfully"]),
                "license-plate-number": "LPN" + self.code(10),
                "customer-comments": self.rng.choice(self.loc.comments),
            }

    def settlement_rows(self, n: int):
        """The summary row, then n transaction rows (orders, refunds, other transactions) of one settlement.

        The settlement period is the report's data range (14 days up to dataEndTime when shorter than a
        day); dates are UTC in the marketplace's layout, amounts are localised (12,34 in DE).
        """
        end = self.report.data_end
        start = self.report.data_start if end - self.report.data_start >= DAY else end - 14 * DAY
        deposit = end + self.rng.uniform(DAY, 3 * DAY)
        rows: list[dict[str, str]] = []
        catalog = max(10, n)
        while len(rows) < n:
            posted = self.rng.uniform(start, end)
            common = {
                "marketplace-name": self.mp.domain,
                "posted-date": self.mp.date(datetime.fromtimestamp(posted, UTC)),
                "posted-date-time": self.utc_time(posted),
            }
            kind = self.rng.choices(["Order", "Refund", "other-transaction"], [85, 10, 5])[0]
            if kind == "other-transaction":
                fee = self.rng.choice(["Subscription Fee", "Storage Fee", "FBA Inbound Transportation Fee"])
                amounts = [("other-transaction", fee, -self.base_price() / 2)]
                common = {**common, "marketplace-name": "", "transaction-type": "other-transaction"}
            else:
                product = self.product(self.rng.randrange(catalog))
                quantity = self.rng.choices([1, 2, 3], [85, 10, 5])[0]
                price = float(product["price"]) * quantity
                fba = self.rng.random() < 0.6
                common.update(
                    {
                        "transaction-type": kind,
                        "order-id": self.order_id(),
                        "fulfillment-id": "AFN" if fba else "MFN",
                        "order-item-code": self.digits(14),
                        "sku": str(product["sku"]),
                    }
                )
                if kind == "Order":
                    common["shipment-id"] = self.code(9)
                    amounts = [("ItemPrice", "Principal", price), ("ItemPrice", "Tax", self.tax(price))]
                    if not fba and self.rng.random() < 0.5:
                        amounts.append(("ItemPrice", "Shipping", self.base_price() / 10))
                    amounts.append(("ItemFees", "Commission", -price * 0.15))
                    if fba:
                        amounts.append(("ItemFees", "FBAPerUnitFulfillmentFee", -self.base_price() / 8))
                    if self.rng.random() < 0.15:
                        amounts.append(("Promotion", "Principal", -price * 0.1))
                else:
                    common["adjustment-id"] = self.digits(14)
                    common["merchant-adjustment-item-id"] = self.code(12)
                    amounts = [
                        ("ItemPrice", "Principal", -price),
                        ("ItemPrice", "Tax", -self.tax(price)),
                        ("ItemFees", "Commission", price * 0.15),
                        ("ItemFees", "RefundCommission", -price * 0.03),
                    ]
            for amount_type, description, amount in amounts:
                text = self.money(amount)
                row = {**common, "amount-type": amount_type, "amount-description": description,
                       "amount": self.mp.amount(text)}  # fmt: skip
                if kind == "Order" and (amount_type, description) == ("ItemPrice", "Principal"):
                    row["quantity-purchased"] = str(quantity)
                if amount_type == "Promotion":
                    row["promotion-id"] = f"Core Free Shipping {self.code(8)}"
                rows.append(row)
        rows = rows[:n]
        settlement_id = str(10_000_000_000 + self.rng.randrange(10**10))
        summary = {
            "settlement-start-date": self.utc_time(start),
            "settlement-end-date": self.utc_time(end),
            "deposit-date": self.utc_time(deposit),
            "total-amount": self.local_amount(sum(float(self.money(_number(r["amount"]))) for r in rows)),
            "currency": self.mp.currency,
        }
        yield {"settlement-id": settlement_id, **summary}
        for row in rows:
            yield {"settlement-id": settlement_id, **row}

    def generic_buyer_rows(self, n: int):
        for row in self.generic_rows(n):
            yield {**row, **self.buyer()}

    def generic_rows(self, n: int):
        for ts in self.timestamps(n):
            product = self.product(self.rng.randrange(max(10, n)))
            quantity = self.rng.randint(1, 5)
            yield {
                "date": iso(ts),
                "marketplace-id": self.mp.id,
                "sku": str(product["sku"]),
                "asin": str(product["asin"]),
                "product-name": str(product["name"]),
                "quantity": str(quantity),
                "amount": self.money(float(product["price"]) * quantity),
                "currency": self.mp.currency,
            }


RowBuilder = Callable[[Generator, int], Iterator[dict[str, str]]]
ROW_BUILDERS: dict[str, RowBuilder] = {
    ORDERS: Generator.order_rows,
    LISTINGS: Generator.listing_rows,
    INVENTORY: Generator.inventory_rows,
    SHIPMENTS: Generator.shipment_rows,
    INVOICING_SHIPMENTS: Generator.invoicing_shipment_rows,
    RETURNS: Generator.return_rows,
    SETTLEMENT: Generator.settlement_rows,
}


def billed_to(address: dict[str, str]) -> dict[str, str]:
    """The bill-* columns of a ship-* address."""
    return {f"bill-{field}": address[f"ship-{field}"] for field in ADDRESS_FIELDS}


def _number(localised: str) -> float:
    return float(localised.replace(",", "."))
