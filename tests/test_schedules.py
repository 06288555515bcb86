"""Report schedules as code: reconciling Amazon's schedules with the registry, against the emulator."""

from __future__ import annotations

import dataclasses

import pytest

from sp_reports.client import Credentials, SellingPartnerClient
from sp_reports.lake import Lake
from sp_reports.registry import AmazonSchedule, RegistryError, load_registry
from sp_reports.schedules import reconcile_schedules

INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"


@pytest.fixture
def client(emulator):
    with SellingPartnerClient(Credentials(**emulator.credentials), endpoint=emulator.base_url,
                              lwa_endpoint=emulator.lwa_url) as c:
        yield c


def with_schedule(registry, report_type, **changes):
    report = registry[report_type]
    schedule = dataclasses.replace(report.amazon_schedule, **changes) if changes else None
    return {**registry, report_type: dataclasses.replace(report, amazon_schedule=schedule)}


def counts(plan) -> dict:
    return {action: len(entries) for action, entries in plan.items()}


def test_reconcile_creates_replaces_cancels_and_leaves_foreign_schedules_alone(client, tmp_path, emulator):
    lake, registry = Lake(str(tmp_path)), load_registry()
    foreign = client.create_report_schedule(LISTINGS, ["ATVPDKIKX0DER"], "P7D")  # made by hand, not declared

    assert counts(reconcile_schedules(client, lake, registry.values(), dry_run=True))["created"] == 1
    assert emulator.stats()["calls"]["createReportSchedule"] == 1  # a dry run changes nothing
    assert counts(reconcile_schedules(client, lake, registry.values())) == {
        "created": 1, "replaced": 0, "cancelled": 0, "unchanged": 0}
    assert counts(reconcile_schedules(client, lake, registry.values()))["unchanged"] == 1

    changed = with_schedule(registry, INVENTORY, period="PT12H", report_options={"a": "b"})
    assert counts(reconcile_schedules(client, lake, changed.values()))["replaced"] == 1
    (schedule,) = client.get_report_schedules([INVENTORY])["reportSchedules"]
    assert (schedule["period"], schedule.get("reportOptions")) == ("PT12H", {"a": "b"})

    removed = with_schedule(registry, INVENTORY)
    assert counts(reconcile_schedules(client, lake, removed.values()))["cancelled"] == 1
    assert client.get_report_schedules([INVENTORY])["reportSchedules"] == []
    assert counts(reconcile_schedules(client, lake, removed.values())) == {
        "created": 0, "replaced": 0, "cancelled": 0, "unchanged": 0}
    assert [s["reportScheduleId"] for s in client.get_report_schedules([LISTINGS])["reportSchedules"]] == [foreign]


def test_a_schedule_needs_a_known_period_and_marketplaces(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("GET_X:\n  amazon_schedule: {period: P2W, marketplace_ids: [A]}\n")
    with pytest.raises(RegistryError, match="period must be one of"):
        load_registry(path)
    path.write_text("GET_X:\n  requestable: false\n  amazon_schedule: {period: P1D, marketplace_ids: [A]}\n")
    with pytest.raises(RegistryError, match="cannot be scheduled"):
        load_registry(path)
    path.write_text("GET_X:\n  report_options: {k: v}\n  amazon_schedule: {period: P1D, marketplace_ids: [B, A, A]}\n")
    assert load_registry(path)["GET_X"].amazon_schedule == AmazonSchedule("P1D", ("A", "B"), {"k": "v"})
