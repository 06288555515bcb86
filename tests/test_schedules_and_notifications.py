"""Schedule reconciliation against the emulator, and the parsing of notification messages."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sp_reports.client import Credentials, SellingPartnerClient
from sp_reports.lake import Lake
from sp_reports.notification_messages import NotificationError, parse_notification, triage_notifications
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


def notification(report_id="1", report_type=INVENTORY, status="DONE", **extra) -> str:
    body = {"notificationVersion": "2020-09-04", "notificationType": "REPORT_PROCESSING_FINISHED",
            "payloadVersion": "2020-09-04", "eventTime": "2026-11-30T10:00:00Z",
            "payload": {"reportProcessingFinishedNotification": {
                "sellerId": "S", "accountId": "amzn1.merchant.o.S", "reportId": report_id, "reportType": report_type,
                "processingStatus": status, "reportDocumentId": "amzn1.spdoc.1.4.na.x"}},
            "notificationMetadata": {"applicationId": "a", "subscriptionId": "s", "publishTime": "2026-11-30T10:00:01Z",
                                     "notificationId": "n1"}}
    body.update(extra)
    return json.dumps(body)


def test_a_notification_becomes_a_report_outcome():
    outcome = parse_notification(notification())
    assert outcome["report_id"] == "1" and outcome["processing_status"] == "DONE"
    assert outcome["report_document_id"] == "amzn1.spdoc.1.4.na.x" and outcome["created_time"] == "2026-11-30T10:00:00Z"


@pytest.mark.parametrize("body, reason", [
    ("not json", "malformed"),
    (json.dumps({"notificationType": "ANY_OFFER_CHANGED"}), "not a REPORT_PROCESSING_FINISHED"),
    (json.dumps({"notificationType": "REPORT_PROCESSING_FINISHED", "payload": {}}), "malformed"),
    (notification(status="IN_PROGRESS"), "unexpected processingStatus"),
])
def test_a_message_that_is_no_report_notification_is_refused_clearly(body, reason):
    with pytest.raises(NotificationError, match=reason):
        parse_notification(body)


def test_triage_lands_each_report_once_and_says_what_it_ignored(tmp_path):
    looked_up = []

    def get_report(report_id):
        looked_up.append(report_id)
        return {"reportId": report_id, "reportType": LISTINGS, "processingStatus": "DONE",
                "reportDocumentId": "d", "marketplaceIds": ["A1PA6795UKMFR9"], "createdTime": "2026-11-30T09:00:00Z"}

    messages = [{"MessageId": "m1", "Body": notification("1")}, {"MessageId": "m2", "Body": notification("1")},
                {"MessageId": "m3", "Body": notification("2", report_type=LISTINGS)},
                {"MessageId": "m4", "Body": notification("3", report_type="GET_UNKNOWN_REPORT")},
                {"MessageId": "m5", "Body": "garbage"}, {"MessageId": "m6", "Body": notification("4", status="FATAL")}]
    result = triage_notifications(messages, Lake(str(tmp_path)), load_registry(), get_report)
    assert [o["report_id"] for o in result["land"]] == ["1", "2"]
    assert result["land"][0]["marketplace_ids"] == ["ATVPDKIKX0DER"]  # from the registry's amazon_schedule
    assert result["land"][1]["marketplace_ids"] == ["A1PA6795UKMFR9"]  # looked up once: no schedule to say
    assert looked_up == ["2"]
    assert [o["report_id"] for o in result["fatal"]] == ["4"]
    assert [i["message_id"] for i in result["ignored"]] == ["m4", "m5"]
