"""SellingPartnerHook and the provider registration that puts its connection form in the UI."""

from __future__ import annotations

import json

import pytest

from sp_reports.hooks.selling_partner import SellingPartnerHook, parse_marketplace_ids
from support import connection_json


def test_provider_registers_the_connection_type_and_its_form():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "sp-reports" in manager.providers
    assert manager.hooks["selling_partner"].hook_class_name == "sp_reports.hooks.selling_partner.SellingPartnerHook"
    widgets = manager.connection_form_widgets
    for field in ("refresh_token", "region", "endpoint", "lwa_endpoint", "marketplace_ids"):
        assert f"extra__selling_partner__{field}" in widgets
    assert widgets["extra__selling_partner__refresh_token"].is_sensitive
    behaviour = manager.field_behaviours["selling_partner"]
    assert behaviour["relabeling"]["login"] == "LWA client id"
    assert "port" in behaviour["hidden_fields"]


def test_hook_builds_a_working_client(sp_conn):
    with SellingPartnerHook().get_conn() as client:
        assert "reports" in client.get_reports(report_types=["GET_MERCHANT_LISTINGS_ALL_DATA"], page_size=1)
    assert SellingPartnerHook().default_marketplace_ids() == ["ATVPDKIKX0DER"]


def test_connection_test_button(sp_conn, monkeypatch):
    assert SellingPartnerHook().test_connection() == (True, "Connection to the Selling Partner API works.")
    bad = json.loads(connection_json(sp_conn))
    bad["password"] = "wrong-secret-value"
    monkeypatch.setenv("AIRFLOW_CONN_SELLING_PARTNER_DEFAULT", json.dumps(bad))
    ok, message = SellingPartnerHook().test_connection()
    assert not ok and "wrong-secret-value" not in message


def test_incomplete_connection_is_a_clear_error(emulator, monkeypatch):
    conn = json.loads(connection_json(emulator))
    del conn["extra"]["refresh_token"]
    conn["extra"]["region"] = "XX"
    monkeypatch.setenv("AIRFLOW_CONN_SELLING_PARTNER_DEFAULT", json.dumps(conn))
    with pytest.raises(ValueError, match="refresh_token"):
        SellingPartnerHook().get_conn()


def test_unknown_region_is_rejected(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SELLING_PARTNER_DEFAULT", connection_json(emulator, region="MARS"))
    with pytest.raises(ValueError, match="region must be one of"):
        SellingPartnerHook().get_conn()


@pytest.mark.parametrize("value, expected", [
    (None, []), ("", []), ("A, B,,C", ["A", "B", "C"]), (["A", " B "], ["A", "B"]),
])
def test_parse_marketplace_ids(value, expected):
    assert parse_marketplace_ids(value) == expected
