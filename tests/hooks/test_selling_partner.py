"""SellingPartnerHook and the provider registration that puts its connection form in the UI."""

from __future__ import annotations

import json

import pytest

from sp_reports.accounts import Account
from sp_reports.hooks.selling_partner import SellingPartnerHook
from support import EMULATOR_SELLER, connection_json


def test_provider_registers_the_connection_type_and_its_form():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "sp-reports" in manager.providers
    assert manager.hooks["selling_partner"].hook_class_name == "sp_reports.hooks.selling_partner.SellingPartnerHook"
    widgets = manager.connection_form_widgets
    for field in ("selling_partner_id", "refresh_token", "region", "endpoint", "lwa_endpoint", "marketplace_ids"):
        assert f"extra__selling_partner__{field}" in widgets
    assert widgets["extra__selling_partner__refresh_token"].is_sensitive
    behaviour = manager.field_behaviours["selling_partner"]
    assert behaviour["relabeling"]["login"] == "LWA client id"
    assert "port" in behaviour["hidden_fields"]


def test_hook_builds_a_working_client(sp_conn):
    with SellingPartnerHook().get_conn() as client:
        assert "reports" in client.get_reports(report_types=["GET_MERCHANT_LISTINGS_ALL_DATA"], page_size=1)
    assert SellingPartnerHook().account() == Account(
        "selling_partner_default", EMULATOR_SELLER, "NA", ("ATVPDKIKX0DER",)
    )


def test_connection_test_button(sp_conn, monkeypatch):
    assert SellingPartnerHook().test_connection() == (
        True,
        "Connection to the Selling Partner API works: selling_partner_default "
        f"(seller {EMULATOR_SELLER}, NA: US ATVPDKIKX0DER).",
    )
    monkeypatch.setenv("AIRFLOW_CONN_SELLING_PARTNER_DEFAULT", connection_json(sp_conn, selling_partner_id=""))
    ok, message = SellingPartnerHook().test_connection()
    assert not ok and "lacks extra.selling_partner_id" in message
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




def test_the_hook_shares_quotas_through_redis_else_files_else_not(sp_conn, monkeypatch, tmp_path):
    """Redis when configured (the fleet); else the quota folder (this machine's processes); else none."""
    from sp_reports.client import FileBuckets, SharedBuckets
    from sp_reports.hooks.selling_partner import quota_store

    hook = SellingPartnerHook()

    def store():
        assert hook.client_kwargs(hook.get_connection(hook.selling_partner_conn_id))["quota_store"] is quota_store()
        return quota_store()

    monkeypatch.delenv("AIRFLOW__CELERY__BROKER_URL", raising=False)
    monkeypatch.setenv("SP_REPORTS_QUOTA_REDIS_URL", "redis://127.0.0.1:6379/7")
    monkeypatch.setenv("SP_REPORTS_QUOTA_DIR", str(tmp_path))
    assert isinstance(store(), SharedBuckets) and store().url == "redis://127.0.0.1:6379/7"
    monkeypatch.setenv("SP_REPORTS_QUOTA_REDIS_URL", "none")
    assert isinstance(store(), FileBuckets) and store().directory == tmp_path
    monkeypatch.delenv("SP_REPORTS_QUOTA_DIR")  # the default: a folder in Airflow's home
    assert store().directory.parts[-2:] == ("sp_reports", "quota")
    monkeypatch.setenv("SP_REPORTS_QUOTA_DIR", "none")
    assert store() is None
    with hook.get_conn() as client:  # and a client works on each
        client.get_reports(report_types=["GET_MERCHANT_LISTINGS_ALL_DATA"], page_size=1)
