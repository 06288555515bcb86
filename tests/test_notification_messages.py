"""REPORT_PROCESSING_FINISHED messages: parsed into finished reports, triaged into what to land."""

from __future__ import annotations

import json

import pytest

from sp_reports.lake import Lake
from sp_reports.notification_messages import NotificationError, parse_notification, triage_notifications
from sp_reports.registry import load_registry

INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"


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


def test_a_notification_becomes_a_finished_report():
    finished = parse_notification(notification())
    assert finished["report_id"] == "1" and finished["processing_status"] == "DONE"
    assert finished["report_document_id"] == "amzn1.spdoc.1.4.na.x" and finished["created_time"] == "2026-11-30T10:00:00Z"


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
