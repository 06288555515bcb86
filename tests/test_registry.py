"""The report-type registry: the one the package ships, and clear errors for a broken one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from sp_reports.amazon_limits import PUBLISHED_COOLDOWNS
from sp_reports.registry import RegistryError, load_registry
from support import SPAPI_MODELS
from sp_reports.emulator import report_types as emulated
from sp_reports.registry import RESTRICTED_REPORT_TYPES, RegistryError, is_restricted, load_registry

REQUIRED = {
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
    "GET_MERCHANT_LISTINGS_ALL_DATA",
    "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA",
    "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL",
    "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA",
}


def test_project_registry_has_the_required_report_types():
    registry = load_registry()
    assert REQUIRED <= set(registry)
    orders = registry["GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"]
    assert orders.date_column == "purchase-date" and orders.max_range_days == 30
    assert registry["GET_MERCHANT_LISTINGS_ALL_DATA"].takes_date_range is False
    assert registry["GET_MERCHANT_LISTINGS_ALL_DATA"].header_aliases["出品者SKU"] == "seller-sku"
    settlement = registry["GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"]
    assert settlement.summary_first_row and not settlement.requestable
    assert registry["GET_SALES_AND_TRAFFIC_REPORT"].records == ("salesAndTrafficByDate", "salesAndTrafficByAsin")


@pytest.mark.parametrize(
    "text, message",
    [
        ("get_lowercase: {}", "upper-case"),
        ("GET_X: {format: csv}", "format must be one of"),
        ("GET_X: {max_range_days: 0}", "positive integer"),
        ("GET_X: {report_options: {custom: true}}", "quote true/false"),
        ("GET_X: {colour: red}", "unknown field"),
        ("[1, 2]", "must map report types"),
        ("GET_X: {natural_keys: sku}", "list of column names"),
        ("GET_X: {columns: {qty: number}}", "columns must map"),
        ("GET_X: {format: xml}", "need records"),
        ("GET_X: {cooldown: soon}", "cooldown must be a duration"),
        ("GET_X: {reuse_max_age: -5}", "reuse_max_age must be a duration"),
        ("GET_X: {stuck_after: 0}", "stuck_after must be longer than 0"),
    ],
)
def test_malformed_registry_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(RegistryError, match=message) as info:
        load_registry(path)
    assert str(path) in str(info.value)


def test_missing_registry_names_the_path(tmp_path):
    with pytest.raises(RegistryError, match="not found"):
        load_registry(tmp_path / "nope.yaml")


def test_limits_read_as_durations_with_amazons_cooldowns_by_default(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA: {}\n"
        "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA: {cooldown: 0, reuse_max_age: 0}\n"
        "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL: {cooldown: 90s, reuse_max_age: 1.5h, stuck_after: 2d}\n"
    )
    registry = load_registry(path)
    inventory = registry["GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"]
    assert inventory.cooldown == timedelta(minutes=30)
    assert inventory.reuse_max_age == timedelta(hours=1) and inventory.stuck_after == timedelta(hours=2)
    returns = registry["GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"]
    assert returns.cooldown is None and returns.reuse_max_age == timedelta(0)  # switched off
    orders = registry["GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"]
    assert (orders.cooldown, orders.reuse_max_age, orders.stuck_after) == (
        timedelta(seconds=90), timedelta(hours=1.5), timedelta(days=2),
    )


def test_published_cooldowns_are_amazons_fba_table():
    """Each FBA report the reportType values page calls near real-time has 30 minutes, each daily one 4 hours, and
    the "All Orders" reports, which it exempts, none."""
    page = (SPAPI_MODELS / "docs-legacy" / "reporttype-values_2022-01-04.md").read_text(encoding="utf-8")
    section = page[page.index("## Fulfillment by Amazon (FBA) reports"):]
    section = section[: section.index("\n## ", 10)]
    expected = {}
    for row in re.split(r"<tr", section)[1:]:
        types = re.findall(r"GET_[A-Z_]+", row)
        text = re.sub(r"[\s\-]", "", re.sub(r"<[^>]+>", " ", row).lower())
        if types and "nearrealtime" in text:
            expected[types[0]] = timedelta(minutes=30)
        elif types and "daily" in text:
            expected[types[0]] = timedelta(hours=4)
    fba = {name: cooldown for name, cooldown in PUBLISHED_COOLDOWNS.items() if cooldown != timedelta(hours=24)}
    assert len(expected) == 29 and fba == expected
    assert "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL" not in PUBLISHED_COOLDOWNS
# Amazon's restricted report types (getReportDocument needs a Restricted Data Token), as its docs list them.
AMAZON_RESTRICTED = {
    "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING", "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_TAX", "GET_EASYSHIP_DOCUMENTS",
    "GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING", "GET_FLAT_FILE_ORDER_REPORT_DATA_INVOICING",
    "GET_FLAT_FILE_ORDER_REPORT_DATA_SHIPPING", "GET_FLAT_FILE_ORDER_REPORT_DATA_TAX", "GET_GST_MTR_B2B_CUSTOM",
    "GET_ORDER_REPORT_DATA_INVOICING", "GET_ORDER_REPORT_DATA_SHIPPING", "GET_ORDER_REPORT_DATA_TAX",
    "GET_VAT_TRANSACTION_DATA", "SC_VAT_TAX_REPORT",
}  # fmt: skip


def test_amazons_restricted_report_types_are_known_to_the_registry_and_the_emulator():
    assert RESTRICTED_REPORT_TYPES == AMAZON_RESTRICTED
    assert emulated.RESTRICTED_REPORT_TYPES == AMAZON_RESTRICTED  # the emulator keeps its own copy
    assert AMAZON_RESTRICTED <= emulated.KNOWN_REPORT_TYPES


@pytest.mark.parametrize("report_type", sorted(AMAZON_RESTRICTED))
def test_each_restricted_type_is_restricted_unless_said_and_cannot_be_unrestricted(tmp_path, report_type):
    path = tmp_path / "r.yaml"
    path.write_text(f"{report_type}: {{}}\nGET_X_RESTRICTED_SINCE: {{restricted: true}}\nGET_X_OPEN: {{}}\n")
    registry = load_registry(path)
    assert registry[report_type].restricted
    assert registry["GET_X_RESTRICTED_SINCE"].restricted  # a type Amazon restricts later
    assert not registry["GET_X_OPEN"].restricted
    assert is_restricted(report_type)

    path.write_text(f"{report_type}: {{restricted: false}}\n")
    with pytest.raises(RegistryError, match=f"{report_type}.*Amazon restricts {report_type}"):
        load_registry(path)


def test_the_project_lands_a_restricted_report_type(monkeypatch, tmp_path):
    invoicing = load_registry()["GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING"]
    assert invoicing.restricted and invoicing.date_column == "shipment-date"
    assert invoicing.natural_keys == ("shipment-item-id",) and invoicing.max_range_days == 30
    assert not load_registry()["GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL"].restricted
    # is_restricted: Amazon's list, else what the registry in force says.
    path = tmp_path / "r.yaml"
    path.write_text("GET_X_RESTRICTED_SINCE: {restricted: true}\n")
    monkeypatch.setenv("SP_REPORTS_REGISTRY", str(path))
    assert is_restricted("GET_X_RESTRICTED_SINCE") and is_restricted("GET_VAT_TRANSACTION_DATA")
    assert not is_restricted("GET_MERCHANT_LISTINGS_ALL_DATA")
