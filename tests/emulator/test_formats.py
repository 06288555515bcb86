"""The XML orders, JSON sales-and-traffic and settlement documents, and localised flat-file values."""

from __future__ import annotations

import gzip
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from lxml import etree
from support import SPAPI_MODELS

US, DE, UK, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1F83G8C2ARO7P", "A1VC38T7YXB528"
REPORTS = "/reports/2021-06-30/reports"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
XML_ORDERS = "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
SALES_AND_TRAFFIC = "GET_SALES_AND_TRAFFIC_REPORT"
SETTLEMENT = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"
START, END = "2024-03-01T00:00:00Z", "2024-03-15T00:00:00Z"
CODECS = {US: "utf-8", DE: "cp1252", UK: "cp1252", JP: "cp932"}
SETTLEMENT_HEADER = (
    "settlement-id settlement-start-date settlement-end-date deposit-date total-amount currency transaction-type "
    "order-id merchant-order-id adjustment-id shipment-id marketplace-name amount-type amount-description amount "
    "fulfillment-id posted-date posted-date-time order-item-code merchant-order-item-id merchant-adjustment-item-id "
    "sku quantity-purchased promotion-id"
).split()


def _schema_path() -> Path:
    return SPAPI_MODELS / "schemas" / "reports" / "sellerSalesAndTrafficReport.json"


@pytest.fixture(scope="module")
def sales_and_traffic_schema():
    return json.loads(_schema_path().read_text())


@pytest.fixture
def fetch(fast, finished_report, download):
    """Decompressed document bytes and Content-Type of a fresh DONE report."""
    fast.config(processing_seconds=0)

    def run(report_type, marketplace, **fields):
        fields.setdefault("dataStartTime", START)
        fields.setdefault("dataEndTime", END)
        report = finished_report(report_type, [marketplace], **fields)
        response = download(report["reportDocumentId"])
        assert response.status_code == 200
        return gzip.decompress(response.content), response.headers["content-type"]

    return run


@pytest.fixture
def settlement(emulator, http, api, download):
    """Inject a settlement report (Amazon creates them; they cannot be requested) and download it."""
    emulator.config(processing_seconds=0)

    def run(marketplace, **fields):
        body = {"reportType": SETTLEMENT, "marketplaceIds": [marketplace], **fields}
        created = http.post(emulator.base_url + "/_emulator/reports", json=body)
        assert created.status_code == 201, created.text
        report = api.get(f"{REPORTS}/{created.json()['reportId']}").json()
        assert report["processingStatus"] == "DONE"
        response = download(report["reportDocumentId"])
        data = gzip.decompress(response.content)
        header, *lines = data.decode(CODECS[marketplace]).rstrip("\n").split("\n")
        assert header.split("\t") == SETTLEMENT_HEADER
        rows = [dict(zip(SETTLEMENT_HEADER, line.split("\t"))) for line in lines]
        assert all(len(line.split("\t")) == len(SETTLEMENT_HEADER) for line in lines)
        return rows, response.headers["content-type"]

    return run


# --- XML orders --------------------------------------------------------------------------------------


def _orders(data: bytes) -> list[etree._Element]:
    root = etree.fromstring(data)
    assert root.tag == "AmazonEnvelope"
    assert root.findtext("Header/DocumentVersion") == "1.01"
    assert root.findtext("MessageType") == "AllOrdersReport"
    messages = root.findall("Message")
    assert [m.findtext("MessageID") for m in messages] == [str(i) for i in range(1, len(messages) + 1)]
    return [m.find("Order") for m in messages]


def test_xml_orders_document(fetch):
    data, content_type = fetch(XML_ORDERS, US)
    assert content_type == "text/xml;charset=UTF-8"
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<AmazonEnvelope ')
    orders = _orders(data)
    assert len(orders) == 50  # rows_per_report counts orders
    ids = [o.findtext("AmazonOrderID") for o in orders]
    assert len(set(ids)) == 50 and all(re.fullmatch(r"11\d-\d{7}-\d{7}", i) for i in ids)
    dates = [datetime.fromisoformat(o.findtext("PurchaseDate")) for o in orders]
    assert datetime.fromisoformat(START) <= min(dates) <= max(dates) <= datetime.fromisoformat(END)
    assert {o.findtext("SalesChannel") for o in orders} == {"Amazon.com"}
    assert {o.findtext("FulfillmentData/Address/Country") for o in orders} == {"US"}
    items = [item for o in orders for item in o.findall("OrderItem")]
    assert len(items) > len(orders)  # some orders have several items
    assert all(o.findall("OrderItem") for o in orders)
    priced = [item for item in items if item.find("ItemPrice") is not None]
    assert priced
    for item in priced:
        components = {c.findtext("Type"): c.find("Amount") for c in item.findall("ItemPrice/Component")}
        assert {"Principal", "Tax"} <= set(components)
        assert {a.get("currency") for a in components.values()} == {"USD"}
        assert all(re.fullmatch(r"\d+\.\d\d", a.text) for a in components.values())
    for order in orders:  # prices appear once an order is confirmed
        if order.findtext("OrderStatus") in ("Pending", "Cancelled"):
            assert all(item.find("ItemPrice") is None for item in order.findall("OrderItem"))


def test_xml_orders_are_encoded_per_marketplace(fetch):
    data, content_type = fetch(XML_ORDERS, JP)
    assert content_type == "text/xml;charset=windows-31j"
    assert data.startswith(b'<?xml version="1.0" encoding="Shift_JIS"?>')
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("cp932")
    assert "Amazon.co.jp" in text and 'currency="JPY"' in text
    assert any(char in text for char in "①髙～")  # cp932, not Shift_JIS: as Amazon declares it
    orders = _orders(text.replace('encoding="Shift_JIS"', 'encoding="UTF-8"').encode("utf-8"))
    assert {o.findtext("FulfillmentData/Address/Country") for o in orders} == {"JP"}

    data, content_type = fetch(XML_ORDERS, DE)
    assert content_type == "text/xml;charset=Cp1252"
    assert data.startswith(b'<?xml version="1.0" encoding="windows-1252"?>')
    orders = _orders(data)  # the declaration is all an XML parser needs
    assert {o.findtext("SalesChannel") for o in orders} == {"Amazon.de"}
    assert any(ch in data.decode("cp1252") for ch in "äöüßÄÖÜ")


def test_xml_orders_are_deterministic(fast, finished_report, download):
    fast.config(processing_seconds=0)
    document_id = finished_report(XML_ORDERS, [US])["reportDocumentId"]
    assert download(document_id).content == download(document_id).content


# --- JSON sales and traffic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "marketplace, options",
    [
        (US, {}),
        (US, {"dateGranularity": "DAY", "asinGranularity": "SKU"}),
        (DE, {"dateGranularity": "WEEK", "asinGranularity": "CHILD"}),
        (JP, {"dateGranularity": "MONTH", "asinGranularity": "PARENT"}),
    ],
)
def test_sales_and_traffic_validates_against_amazons_schema(fetch, sales_and_traffic_schema, marketplace, options):
    data, content_type = fetch(SALES_AND_TRAFFIC, marketplace, reportOptions=options)
    assert content_type == "application/json;charset=UTF-8"
    document = json.loads(data.decode("utf-8"))
    jsonschema.Draft7Validator(sales_and_traffic_schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(document)

    spec = document["reportSpecification"]
    assert spec["reportType"] == SALES_AND_TRAFFIC and spec["marketplaceIds"] == [marketplace]
    assert (spec["dataStartTime"], spec["dataEndTime"]) == ("2024-03-01", "2024-03-15")
    granularity = options.get("dateGranularity", "DAY")
    asin_granularity = options.get("asinGranularity", "PARENT")
    assert spec["reportOptions"] == {"dateGranularity": granularity, "asinGranularity": asin_granularity}
    dates = [date.fromisoformat(r["date"]) for r in document["salesAndTrafficByDate"]]
    expected = {
        "DAY": [date(2024, 3, 1) + timedelta(days=i) for i in range(15)],
        "WEEK": [date(2024, 2, 25) + timedelta(weeks=i) for i in range(3)],  # weeks start on Sunday
        "MONTH": [date(2024, 3, 1)],
    }[granularity]
    assert dates == expected
    by_asin = document["salesAndTrafficByAsin"]
    assert len(by_asin) == 50  # rows_per_report
    keys = {"PARENT": {"parentAsin"}, "CHILD": {"parentAsin", "childAsin"}, "SKU": {"parentAsin", "childAsin", "sku"}}
    assert all(set(r) - {"salesByAsin", "trafficByAsin"} == keys[asin_granularity] for r in by_asin)
    currency = {US: "USD", DE: "EUR", JP: "JPY"}[marketplace]
    amounts = [r["salesByDate"]["orderedProductSales"] for r in document["salesAndTrafficByDate"]]
    assert {a["currencyCode"] for a in amounts} == {currency}
    if marketplace == JP:
        assert all(isinstance(a["amount"], int) for a in amounts)
    for record in document["salesAndTrafficByDate"]:
        traffic = record["trafficByDate"]
        assert traffic["sessions"] == traffic["browserSessions"] + traffic["mobileAppSessions"]
        assert traffic["pageViews"] == traffic["browserPageViews"] + traffic["mobileAppPageViews"]


def test_sales_and_traffic_has_one_record_per_line(fetch):
    data, _ = fetch(SALES_AND_TRAFFIC, US)
    lines = data.decode("utf-8").splitlines()
    assert lines[0].startswith('{"reportSpecification":')
    assert lines[1] == '"salesAndTrafficByDate":['
    assert sum(line.startswith('{"date":') for line in lines) == 15
    assert sum(line.startswith('{"parentAsin":') for line in lines) == 50
    # B2B metrics appear on some days only (an optional key the parser must cope with).
    assert 0 < sum('"unitsOrderedB2B"' in line for line in lines) < 15


def test_the_emulator_does_not_read_shared_models():
    package = Path(__file__).resolve().parents[2] / "plugins" / "sp_reports" / "emulator"
    for source in package.glob("*.py"):
        assert "spapi-models" not in source.read_text(), source


# --- settlement -----------------------------------------------------------------------------------


def _amount(text: str) -> float:
    return float(text.replace(",", "."))


@pytest.mark.parametrize(
    "marketplace, date_re, amount_re, label",
    [
        (US, r"\d{4}-\d\d-\d\d", r"-?\d+\.\d\d", "UTF-8"),
        (DE, r"\d\d\.\d\d\.\d{4}", r"-?\d+,\d\d", "Cp1252"),
        (JP, r"\d{4}/\d\d/\d\d", r"-?\d+", "windows-31j"),
    ],
)
def test_injected_settlement_downloads(settlement, marketplace, date_re, amount_re, label):
    rows, content_type = settlement(marketplace, dataStartTime="2026-11-06T00:00:00Z", dataEndTime="2026-11-20T00:00:00Z")
    assert content_type == f"text/plain;charset={label}"
    summary, transactions = rows[0], rows[1:]
    assert len(transactions) == 50
    filled = {k for k, v in summary.items() if v}
    assert filled == {"settlement-id", "settlement-start-date", "settlement-end-date", "deposit-date", "total-amount", "currency"}
    assert re.fullmatch(rf"{date_re} 00:00:00 UTC", summary["settlement-start-date"])
    assert re.fullmatch(rf"{date_re} \d\d:\d\d:\d\d UTC", summary["deposit-date"])
    assert re.fullmatch(amount_re, summary["total-amount"])
    assert {r["settlement-id"] for r in rows} == {summary["settlement-id"]}
    assert all(re.fullmatch(amount_re, r["amount"]) for r in transactions)
    assert all(re.fullmatch(date_re, r["posted-date"]) for r in transactions)
    assert all(re.fullmatch(rf"{date_re} \d\d:\d\d:\d\d UTC", r["posted-date-time"]) for r in transactions)
    assert abs(sum(_amount(r["amount"]) for r in transactions) - _amount(summary["total-amount"])) < 0.005
    assert not any(r["total-amount"] or r["settlement-start-date"] for r in transactions)
    kinds = {r["transaction-type"] for r in transactions}
    assert "Order" in kinds and kinds <= {"Order", "Refund", "other-transaction"}
    principal = [r for r in transactions if r["transaction-type"] == "Order" and r["amount-description"] == "Principal"
                 and r["amount-type"] == "ItemPrice"]  # fmt: skip
    assert principal and all(r["quantity-purchased"].isdigit() and r["order-id"] and r["sku"] for r in principal)


def test_settlement_cannot_be_requested(api):
    response = api.post(REPORTS, json={"reportType": SETTLEMENT, "marketplaceIds": [US]})
    assert response.status_code == 400 and "cannot be requested" in response.text


def test_settlement_period_defaults_to_two_weeks(settlement):
    rows, _ = settlement(US)
    start = datetime.strptime(rows[0]["settlement-start-date"], "%Y-%m-%d %H:%M:%S UTC")
    end = datetime.strptime(rows[0]["settlement-end-date"], "%Y-%m-%d %H:%M:%S UTC")
    assert end - start == timedelta(days=14)


# --- localised flat-file values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "marketplace, column, date_re, price_re",
    [
        (US, "open-date", r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d PST", r"\d+\.\d\d"),
        (DE, "Erstellungsdatum", r"\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d MEZ", r"\d+,\d\d"),
        (JP, "出品日", r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d JST", r"\d+"),
    ],
)
def test_listing_dates_and_prices_are_localised(fetch, marketplace, column, date_re, price_re):
    data, _ = fetch(LISTINGS, marketplace)
    header, *lines = data.decode(CODECS[marketplace]).rstrip("\n").split("\n")
    columns = header.split("\t")
    rows = [dict(zip(columns, line.split("\t"))) for line in lines]
    price = {US: "price", DE: "Preis", JP: "価格"}[marketplace]
    assert all(re.fullmatch(date_re, row[column]) for row in rows)
    assert all(re.fullmatch(price_re, row[price]) for row in rows)
