"""Document contents: Amazon's columns, row counts, date spans, encodings, determinism."""

from __future__ import annotations

import gzip
from datetime import datetime

import httpx
import pytest

from sp_reports.emulator.locales import LOCALES
from sp_reports.emulator.marketplaces import MARKETPLACES
from sp_reports.emulator.testing import running_emulator
from sp_reports.registry import load_registry

US, DE, UK, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1F83G8C2ARO7P", "A1VC38T7YXB528"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"
SHIPMENTS = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL"
RETURNS = "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"
START, END = "2024-03-01T00:00:00Z", "2024-03-15T00:00:00Z"

# Amazon's header rows, verbatim.
HEADERS = {
    ORDERS: "amazon-order-id merchant-order-id purchase-date last-updated-date order-status fulfillment-channel "
    "sales-channel order-channel url ship-service-level product-name sku asin item-status quantity currency "
    "item-price item-tax shipping-price shipping-tax gift-wrap-price gift-wrap-tax item-promotion-discount "
    "ship-promotion-discount ship-city ship-state ship-postal-code ship-country promotion-ids is-business-order "
    "purchase-order-number price-designation",
    LISTINGS: "item-name item-description listing-id seller-sku price quantity open-date image-url "
    "item-is-marketplace product-id-type zshop-shipping-fee item-note item-condition zshop-category1 "
    "zshop-browse-path zshop-storefront-feature asin1 asin2 asin3 will-ship-internationally expedited-shipping "
    "zshop-boldface product-id bid-for-featured-placement add-delete pending-quantity fulfillment-channel "
    "merchant-shipping-group status",
    INVENTORY: "sku fnsku asin product-name condition your-price mfn-listing-exists mfn-fulfillable-quantity "
    "afn-listing-exists afn-warehouse-quantity afn-fulfillable-quantity afn-unsellable-quantity "
    "afn-reserved-quantity afn-total-quantity per-unit-volume afn-inbound-working-quantity "
    "afn-inbound-shipped-quantity afn-inbound-receiving-quantity afn-researching-quantity "
    "afn-reserved-future-supply afn-future-supply-buyable",
    # Without the buyer's name, e-mail and addresses: those are in the restricted ..._INVOICING report only.
    SHIPMENTS: "amazon-order-id merchant-order-id shipment-id shipment-item-id amazon-order-item-id "
    "merchant-order-item-id purchase-date payments-date shipment-date reporting-date sku product-name "
    "quantity-shipped currency item-price item-tax shipping-price shipping-tax gift-wrap-price gift-wrap-tax "
    "ship-service-level ship-city ship-state ship-postal-code ship-country item-promotion-discount "
    "ship-promotion-discount carrier tracking-number estimated-arrival-date fulfillment-center-id "
    "fulfillment-channel sales-channel",
    RETURNS: "return-date order-id sku asin fnsku product-name quantity fulfillment-center-id detailed-disposition "
    "reason status license-plate-number customer-comments",
}
# (natural key, date column) as the project's report registry declares them.
KEYS = {
    ORDERS: (["amazon-order-id", "sku"], "purchase-date"),
    LISTINGS: (["seller-sku"], None),
    INVENTORY: (["sku"], None),
    SHIPMENTS: (["shipment-item-id"], "shipment-date"),
    RETURNS: (["order-id", "sku", "license-plate-number"], "return-date"),
}
CODECS = {US: "utf-8", DE: "cp1252", UK: "cp1252", JP: "cp932"}


@pytest.fixture
def fetch(fast, finished_report, download):
    """Raw (still gzip) document bytes and Content-Type of a fresh DONE report."""
    fast.config(processing_seconds=0)

    def run(report_type, marketplace, **fields):
        report = finished_report(report_type, [marketplace], dataStartTime=START, dataEndTime=END, **fields)
        response = download(report["reportDocumentId"])
        assert response.status_code == 200
        return response.content, response.headers["content-type"]

    return run


def _table(raw: bytes, codec: str) -> tuple[list[str], list[dict[str, str]]]:
    text = gzip.decompress(raw).decode(codec)
    assert text.endswith("\n") and "\r" not in text
    header, *lines = text[:-1].split("\n")
    columns = header.split("\t")
    rows = []
    for line in lines:
        values = line.split("\t")
        assert len(values) == len(columns), line
        rows.append(dict(zip(columns, values)))
    return columns, rows


@pytest.mark.parametrize("marketplace", [US, DE, JP])
@pytest.mark.parametrize("report_type", list(HEADERS))
def test_flat_file_structure(fetch, report_type, marketplace):
    raw, _ = fetch(report_type, marketplace)
    localized, rows = _table(raw, CODECS[marketplace])
    # Amazon.co.jp and Amazon.de localise some headers; the project's registry maps every one back.
    aliases = load_registry()[report_type].header_aliases
    columns = [aliases.get(column, column) for column in localized]
    assert columns == HEADERS[report_type].split()
    assert (localized != columns) == (report_type == LISTINGS and marketplace in (DE, JP))
    rows = [dict(zip(columns, row.values())) for row in rows]
    assert len(rows) == 50
    key, date_column = KEYS[report_type]
    assert len({tuple(row[k] for k in key) for row in rows}) == len(rows), "natural key not unique"
    if date_column:
        dates = [datetime.fromisoformat(row[date_column]) for row in rows]
        assert datetime.fromisoformat(START) <= min(dates) <= max(dates) <= datetime.fromisoformat(END)
        assert (max(dates) - min(dates)).days >= 7, "rows should span the requested range"


def test_rows_per_report(fast, fetch):
    fast.config(rows_per_report=7)
    assert len(_table(fetch(ORDERS, US)[0], "utf-8")[1]) == 7
    fast.config(rows_per_report=0)
    columns, rows = _table(fetch(LISTINGS, US)[0], "utf-8")
    assert rows == [] and columns[0] == "item-name"


def test_japanese_documents_are_cp932(fetch):
    raw, content_type = fetch(ORDERS, JP)
    assert content_type == "text/plain;charset=Shift_JIS"
    data = gzip.decompress(raw)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("cp932")
    assert "Amazon.co.jp" in text and "JPY" in text
    _, rows = _table(raw, "cp932")
    assert all(row["currency"] == "JPY" and "." not in row["item-price"] for row in rows)

    raw, content_type = fetch(INVENTORY, JP)
    assert content_type == "text/plain;charset=windows-31j"
    # Listing every catalog name: ①, 髙 and ～ exist in cp932 but not in strict Shift_JIS.
    fetch_all = fetch(LISTINGS, JP)[0]
    text = gzip.decompress(fetch_all).decode("cp932")
    for char in "①髙～":
        assert char in text
        with pytest.raises(UnicodeEncodeError):
            char.encode("shift_jis")
    with pytest.raises(UnicodeDecodeError):
        gzip.decompress(fetch_all).decode("shift_jis")


def test_eu_documents_are_cp1252(fetch):
    raw, content_type = fetch(LISTINGS, DE)
    assert content_type == "text/plain;charset=Cp1252"
    data = gzip.decompress(raw)
    assert b"\x80" in data  # the euro sign in Cp1252
    text = data.decode("cp1252")
    assert "€" in text and "ü" in text
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    _, rows = _table(fetch(ORDERS, DE)[0], "cp1252")
    assert {row["currency"] for row in rows} == {"EUR"} and {row["sales-channel"] for row in rows} == {"Amazon.de"}
    _, rows = _table(fetch(ORDERS, UK)[0], "cp1252")
    assert {row["currency"] for row in rows} == {"GBP"}


def test_us_documents_are_utf8(fetch):
    raw, content_type = fetch(ORDERS, US)
    assert content_type == "text/plain;charset=UTF-8"
    _, rows = _table(raw, "utf-8")
    assert {row["currency"] for row in rows} == {"USD"} and {row["ship-country"] for row in rows} == {"US"}


def test_unquoted_double_quotes_in_product_names(fetch):
    _, rows = _table(fetch(LISTINGS, US)[0], "utf-8")
    quoted = [row["item-name"] for row in rows if '"' in row["item-name"]]
    assert quoted and not any(name.startswith('"') and name.endswith('"') for name in quoted)


def test_generic_fallback_for_other_report_types(fetch):
    columns, rows = _table(fetch("GET_FBA_REIMBURSEMENTS_DATA", DE)[0], "cp1252")
    assert columns == ["date", "marketplace-id", "sku", "asin", "product-name", "quantity", "amount", "currency"]
    assert len(rows) == 50 and {row["marketplace-id"] for row in rows} == {DE}


def test_catalog_is_shared_between_reports(fetch):
    _, listings = _table(fetch(LISTINGS, US)[0], "utf-8")
    _, inventory = _table(fetch(INVENTORY, US)[0], "utf-8")
    assert [(r["seller-sku"], r["asin1"]) for r in listings] == [(r["sku"], r["asin"]) for r in inventory]


def test_content_is_deterministic_per_seed():
    def first_document(seed):
        with running_emulator(seed=seed, processing_seconds=0) as emu:
            with httpx.Client(base_url=emu.base_url, headers={"x-amz-access-token": emu.access_token()}) as client:
                body = {"reportType": ORDERS, "marketplaceIds": [DE], "dataStartTime": START, "dataEndTime": END}
                report_id = client.post("/reports/2021-06-30/reports", json=body).json()["reportId"]
                document_id = client.get(f"/reports/2021-06-30/reports/{report_id}").json()["reportDocumentId"]
                url = client.get(f"/reports/2021-06-30/documents/{document_id}").json()["url"]
                return report_id, client.get(url).content

    first, again, other = first_document(7), first_document(7), first_document(8)
    assert first == again
    assert first[0] != other[0] and first[1] != other[1]


def test_locale_text_fits_the_marketplace_encoding():
    for marketplace in MARKETPLACES.values():
        locale = LOCALES[marketplace.language]
        texts = [*locale.products, *locale.descriptions, *locale.given_names, *locale.family_names, *locale.streets,
                 *locale.comments, locale.shipping_group, *locale.carriers,
                 *(part for place in locale.places for part in place)]  # fmt: skip
        for text in texts:
            text.encode(marketplace.codec)  # raises if Amazon could not have sent it
            assert "\t" not in text and "\n" not in text
