"""The XML and JSON report documents.

GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL: Amazon's ``AmazonEnvelope`` with one ``Message`` per
order; each ``Order`` holds its ``OrderItem`` elements, whose ``ItemPrice`` lists ``Component``
(``Type`` + ``Amount currency=...``) elements. The XML declaration names the document's real encoding
(UTF-8, windows-1252 in the EU, Shift_JIS in Japan, where the bytes are cp932 as in the flat files).
``rows_per_report`` is the number of orders.

GET_SALES_AND_TRAFFIC_REPORT: JSON following Amazon's ``sellerSalesAndTrafficReport`` schema
(``reportSpecification``, ``salesAndTrafficByDate`` with one entry per day/week/month of the data
range, ``salesAndTrafficByAsin`` with ``rows_per_report`` entries at the requested ASIN granularity).
Always UTF-8. Each array element is written on a line of its own.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from .config import DocumentQuirks
from .state import DAY, iso

if TYPE_CHECKING:
    from .documents import Generator, Lines

XML_DECLARED_ENCODING = {"utf-8": "UTF-8", "cp1252": "windows-1252", "cp932": "Shift_JIS"}
_XML_TEXT_LINE = re.compile(r"^\s*<(\w+)(?: [^>]*)?>[^<]+</\1>$")
_JSON_STRING_VALUE = re.compile(r'":"')
MAX_DATE_ROWS = 731


# --- XML orders ----------------------------------------------------------------------------------


def xml_orders_document(gen: Generator, quirks: DocumentQuirks) -> Lines:
    from .documents import DRIFT_COLUMN, DRIFT_VALUE, Lines

    mp = gen.mp
    lines = [
        f'<?xml version="1.0" encoding="{XML_DECLARED_ENCODING[mp.codec]}"?>',
        '<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">',
        "  <Header>",
        "    <DocumentVersion>1.01</DocumentVersion>",
        "  </Header>",
        "  <MessageType>AllOrdersReport</MessageType>",
    ]
    drift = _camel(DRIFT_COLUMN)
    for number, order in enumerate([] if quirks.header_only else xml_orders(gen, gen.report.rows), start=1):
        if quirks.column_drift == "add":
            order = {**order, drift: DRIFT_VALUE}
        elif quirks.column_drift == "drop":
            order = {k: v for k, v in order.items() if k != "SalesChannel"}
        lines += ["  <Message>", f"    <MessageID>{number}</MessageID>"]
        lines += _xml_element("Order", order, depth=2)
        lines.append("  </Message>")
    lines.append("</AmazonEnvelope>")

    def corruptible(number: int, line: str) -> int | None:
        # Inside the text of a one-line element such as <ProductName>...</ProductName>.
        return line.index(">") + 1 if number > 5 and _XML_TEXT_LINE.match(line) else None

    return Lines(lines, corruptible)


def xml_orders(gen: Generator, n: int) -> list[dict[str, Any]]:
    """n orders with 1-3 items each; values are text, nested dicts are elements, lists repeat."""
    mp, rng = gen.mp, gen.rng
    catalog = max(10, n)
    orders = []
    seen: set[str] = set()
    for ts in gen.timestamps(n):
        order_id = gen.order_id()
        while order_id in seen:
            order_id = gen.order_id()
        seen.add(order_id)
        status = rng.choices(["Shipped", "Pending", "Cancelled", "Shipping"], [80, 10, 5, 5])[0]
        place = gen.place()
        business = rng.random() < 0.1
        order: dict[str, Any] = {"AmazonOrderID": order_id}
        if rng.random() < 0.3:
            order["MerchantOrderID"] = f"{gen.digits(3)}-{gen.digits(7)}"
        order.update(
            {
                "PurchaseDate": iso(ts),
                "LastUpdatedDate": iso(min(ts + rng.uniform(600, 3 * DAY), gen.report.created)),
                "OrderStatus": status,
                "SalesChannel": mp.domain,
                "FulfillmentData": {
                    "FulfillmentChannel": rng.choice(["Amazon", "Amazon", "Merchant"]),
                    "ShipServiceLevel": rng.choice(["Standard", "Expedited", "SecondDay"]),
                    "Address": {
                        "City": place["city"],
                        "State": place["state"],
                        "PostalCode": place["postal"],
                        "Country": place["country"],
                    },
                },
                "IsBusinessOrder": "true" if business else "false",
            }
        )
        if business and rng.random() < 0.5:
            order["PurchaseOrderNumber"] = f"PO-{gen.digits(6)}"
        items = []
        indexes = rng.sample(range(catalog), rng.choices([1, 2, 3], [70, 20, 10])[0])
        for index in indexes:
            product = gen.product(index)
            quantity = rng.choices([1, 2, 3], [80, 15, 5])[0]
            item: dict[str, Any] = {
                "AmazonOrderItemCode": gen.digits(14),
                "ASIN": str(product["asin"]),
                "SKU": str(product["sku"]),
                "ItemStatus": {"Shipped": "Shipped", "Cancelled": "Cancelled"}.get(status, "Unshipped"),
                "ProductName": str(product["name"]),
                "Quantity": str(0 if status == "Cancelled" else quantity),
            }
            # Amazon leaves the prices out until an order is confirmed.
            if status not in ("Pending", "Cancelled"):
                price = float(product["price"]) * quantity
                components = [("Principal", price), ("Tax", gen.tax(price))]
                if rng.random() < 0.4:
                    shipping = gen.base_price() / 10
                    components += [("Shipping", shipping), ("ShippingTax", gen.tax(shipping))]
                item["ItemPrice"] = {
                    "Component": [
                        {"Type": kind, "Amount": ({"currency": mp.currency}, gen.money(amount))}
                        for kind, amount in components
                    ]
                }
                if rng.random() < 0.15:
                    item["Promotion"] = {
                        "PromotionIDs": f"Core Free Shipping {gen.code(8)}",
                        "ItemPromotionDiscount": gen.money(price * 0.1),
                        "ShipPromotionDiscount": gen.money(0),
                    }
            items.append(item)
        order["OrderItem"] = items
        orders.append(order)
    return orders


def _xml_element(name: str, value: Any, depth: int) -> list[str]:
    pad = "  " * depth
    if isinstance(value, list):
        return [line for item in value for line in _xml_element(name, item, depth)]
    if isinstance(value, dict):
        lines = [f"{pad}<{name}>"]
        for child, child_value in value.items():
            lines += _xml_element(child, child_value, depth + 1)
        return [*lines, f"{pad}</{name}>"]
    if isinstance(value, tuple):  # (attributes, text)
        attributes, text = value
        attrs = "".join(f' {k}="{escape(v, {chr(34): "&quot;"})}"' for k, v in attributes.items())
        return [f"{pad}<{name}{attrs}>{escape(text)}</{name}>"]
    return [f"{pad}<{name}>{escape(value)}</{name}>"]


def _camel(header: str) -> str:
    return "".join(part.capitalize() for part in header.split("-"))


# --- JSON sales and traffic ------------------------------------------------------------------------


def sales_and_traffic_document(gen: Generator, quirks: DocumentQuirks) -> Lines:
    from .documents import DRIFT_COLUMN, DRIFT_VALUE, Lines

    report = gen.report
    options = report.options
    first = _day(gen.start)
    last = _day(report.data_end) if report.data_end > gen.start else first
    specification: dict[str, Any] = {
        "reportType": report.report_type,
        "reportOptions": {
            "dateGranularity": options.get("dateGranularity", "DAY"),
            "asinGranularity": options.get("asinGranularity", "PARENT"),
        },
        "dataStartTime": first.isoformat(),
        "dataEndTime": last.isoformat(),
        "marketplaceIds": [gen.mp.id],
    }
    by_date, by_asin = [], []
    if not quirks.header_only:
        by_date = [
            _by_date(gen, day) for day in _periods(first, last, specification["reportOptions"]["dateGranularity"])
        ]
        by_asin = [_by_asin(gen, i, specification["reportOptions"]["asinGranularity"]) for i in range(report.rows)]
    drift = DRIFT_COLUMN.split("-")[0] + "".join(p.capitalize() for p in DRIFT_COLUMN.split("-")[1:])
    for record in by_date + by_asin:
        if quirks.column_drift == "add":
            record[drift] = DRIFT_VALUE
        elif quirks.column_drift == "drop":
            sales = record.get("salesByDate") or record["salesByAsin"]
            sales.pop("totalOrderItems")

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    lines = ['{"reportSpecification":' + dump(specification) + ","]
    for name, records, last_array in (
        ("salesAndTrafficByDate", by_date, False),
        ("salesAndTrafficByAsin", by_asin, True),
    ):
        lines.append(f'"{name}":[')
        lines += [dump(record) + ("," if i < len(records) - 1 else "") for i, record in enumerate(records)]
        lines.append("]}" if last_array else "],")

    def corruptible(number: int, line: str) -> int | None:
        # Inside the record's first string value.
        if not line.startswith("{") or number == 0:
            return None
        match = _JSON_STRING_VALUE.search(line)
        return match.end() if match else None

    return Lines(lines, corruptible)


def _day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def _periods(first: date, last: date, granularity: str) -> list[date]:
    """Start dates of the periods covering first..last: days, weeks (from Sunday) or months."""
    if granularity == "WEEK":
        start = first - timedelta(days=(first.weekday() + 1) % 7)
        return [start + timedelta(weeks=i) for i in range((last - start).days // 7 + 1)][:MAX_DATE_ROWS]
    if granularity == "MONTH":
        months: list[date] = []
        current = first.replace(day=1)
        while current <= last and len(months) < MAX_DATE_ROWS:
            months.append(current)
            current = (current + timedelta(days=32)).replace(day=1)
        return months
    return [first + timedelta(days=i) for i in range((last - first).days + 1)][:MAX_DATE_ROWS]


def _money(gen: Generator, amount: float) -> dict[str, Any]:
    value: float | int = round(amount) if gen.mp.currency == "JPY" else round(amount, 2)
    return {"amount": value, "currencyCode": gen.mp.currency}


def _percent(part: float, whole: float, cap: bool = True) -> float:
    value = 100.0 * part / whole if whole else 0.0
    return round(min(value, 100.0) if cap else value, 2)


def _by_date(gen: Generator, day: date) -> dict[str, Any]:
    rng = gen.rng
    browser_views, app_views = rng.randint(200, 5000), rng.randint(50, 2000)
    browser_sessions = rng.randint(100, browser_views)
    app_sessions = rng.randint(20, app_views)
    sessions = browser_sessions + app_sessions
    items = rng.randint(0, max(1, sessions // 40))
    units = items + rng.randint(0, items // 5 + 1) if items else 0
    price = gen.base_price()
    sales = price * units
    refunded = rng.randint(0, units // 10 + 1) if units else 0
    shipped_units = rng.randint(0, units) if units else 0
    feedback = rng.randint(0, 10)
    negative = rng.randint(0, feedback // 3)
    record: dict[str, Any] = {
        "date": day.isoformat(),
        "salesByDate": {
            "orderedProductSales": _money(gen, sales),
            "unitsOrdered": units,
            "totalOrderItems": items,
            "averageSalesPerOrderItem": _money(gen, sales / items if items else 0),
            "averageUnitsPerOrderItem": round(units / items, 2) if items else 0.0,
            "averageSellingPrice": _money(gen, price if units else 0),
            "unitsRefunded": refunded,
            "refundRate": _percent(refunded, units),
            "claimsGranted": 0,
            "claimsAmount": _money(gen, 0),
            "shippedProductSales": _money(gen, price * shipped_units),
            "unitsShipped": shipped_units,
            "ordersShipped": min(shipped_units, items),
        },
        "trafficByDate": {
            "browserPageViews": browser_views,
            "mobileAppPageViews": app_views,
            "pageViews": browser_views + app_views,
            "browserSessions": browser_sessions,
            "mobileAppSessions": app_sessions,
            "sessions": sessions,
            "buyBoxPercentage": round(rng.uniform(5, 100), 2),
            "orderItemSessionPercentage": _percent(items, sessions),
            "unitSessionPercentage": _percent(units, sessions, cap=False),
            "averageOfferCount": rng.randint(100, 12000),
            "averageParentItems": rng.randint(100, 12000),
            "feedbackReceived": feedback,
            "negativeFeedbackReceived": negative,
            "receivedNegativeFeedbackRate": _percent(negative, feedback),
        },
    }
    # Business (B2B) metrics appear only where there were business orders.
    if gen.mp.region == "na" and items and rng.random() < 0.4:
        b2b_items = rng.randint(1, items)
        record["salesByDate"]["orderedProductSalesB2B"] = _money(gen, price * b2b_items)
        record["salesByDate"]["unitsOrderedB2B"] = b2b_items
        record["salesByDate"]["totalOrderItemsB2B"] = b2b_items
    return record


def _by_asin(gen: Generator, index: int, granularity: str) -> dict[str, Any]:
    rng = gen.rng
    product = gen.product(index)
    record: dict[str, Any] = {"parentAsin": "B0" + str(product["asin"])[2:7] + "PAR"}
    if granularity in ("CHILD", "SKU"):
        record["childAsin"] = str(product["asin"])
    if granularity == "SKU":
        record["sku"] = str(product["sku"])
    browser_sessions, app_sessions = rng.randint(0, 300), rng.randint(0, 200)
    sessions = browser_sessions + app_sessions
    browser_views = browser_sessions + rng.randint(0, 100)
    app_views = app_sessions + rng.randint(0, 80)
    items = rng.randint(0, max(1, sessions // 20))
    units = items + (rng.randint(0, 2) if items else 0)
    record["salesByAsin"] = {
        "unitsOrdered": units,
        "orderedProductSales": _money(gen, float(product["price"]) * units),
        "totalOrderItems": items,
    }
    record["trafficByAsin"] = {
        "browserSessions": browser_sessions,
        "mobileAppSessions": app_sessions,
        "sessions": sessions,
        "browserSessionPercentage": round(rng.uniform(0, 2), 2),
        "mobileAppSessionPercentage": round(rng.uniform(0, 2), 2),
        "sessionPercentage": round(rng.uniform(0, 2), 2),
        "browserPageViews": browser_views,
        "mobileAppPageViews": app_views,
        "pageViews": browser_views + app_views,
        "browserPageViewsPercentage": round(rng.uniform(0, 2), 2),
        "mobileAppPageViewsPercentage": round(rng.uniform(0, 2), 2),
        "pageViewsPercentage": round(rng.uniform(0, 2), 2),
        "buyBoxPercentage": round(rng.uniform(0, 100), 2),
        "unitSessionPercentage": _percent(units, sessions, cap=False),
    }
    return record
