"""The report-type registry: the one the package ships, and clear errors for a broken one."""

from __future__ import annotations

import pytest

from sp_reports.registry import RegistryError, load_registry

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
