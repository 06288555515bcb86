"""REPORT_PROCESSING_FINISHED messages: parsed into finished reports, triaged into what to land."""

from __future__ import annotations

import json

import pytest

from sp_reports.accounts import Account
from sp_reports.client import NotFoundError
from sp_reports.lake import Lake
from sp_reports.notification_messages import NotificationError, parse_notification, triage_notifications
from sp_reports.registry import load_registry

INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
SELLER_A, SELLER_B = "A1SELLERALPHA", "A2SELLERBRAVO"
US, DE, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528"
A_NA = Account("amazon_a_na", SELLER_A, "NA", (US,))
A_FE = Account("amazon_a_fe", SELLER_A, "FE", (JP,))
B_EU = Account("amazon_b_eu", SELLER_B, "EU", (DE,))


def notification(report_id="1", report_type=INVENTORY, status="DONE", seller=SELLER_A, **extra) -> str:
    body = {"notificationVersion": "2020-09-04", "notificationType": "REPORT_PROCESSING_FINISHED",
            "payloadVersion": "2020-09-04", "eventTime": "2026-11-30T10:00:00Z",
            "payload": {"reportProcessingFinishedNotification": {
                "sellerId": seller, "accountId": f"amzn1.merchant.o.{seller}", "reportId": report_id, "reportType": report_type,
                "processingStatus": status, "reportDocumentId": "amzn1.spdoc.1.4.na.x"}},
            "notificationMetadata": {"applicationId": "a", "subscriptionId": "s", "publishTime": "2026-11-30T10:00:01Z",
                                     "notificationId": "n1"}}
    body.update(extra)
    return json.dumps(body)


def test_a_notification_becomes_a_finished_report():
    finished = parse_notification(notification())
    assert finished["report_id"] == "1" and finished["processing_status"] == "DONE"
    assert finished["selling_partner_id"] == SELLER_A
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

    def get_report(account, report_id):
        looked_up.append((account.conn_id, report_id))
        return {"reportId": report_id, "reportType": LISTINGS, "processingStatus": "DONE",
                "reportDocumentId": "d", "marketplaceIds": [US], "createdTime": "2026-11-30T09:00:00Z"}

    messages = [{"MessageId": "m1", "ReceiptHandle": "h1", "Body": notification("1")},
                {"MessageId": "m2", "ReceiptHandle": "h2", "Body": notification("1")},
                {"MessageId": "m3", "ReceiptHandle": "h3", "Body": notification("2", report_type=LISTINGS)},
                {"MessageId": "m4", "ReceiptHandle": "h4", "Body": notification("3", report_type="GET_UNKNOWN_REPORT")},
                {"MessageId": "m5", "ReceiptHandle": "h5", "Body": "garbage"},
                {"MessageId": "m6", "ReceiptHandle": "h6", "Body": notification("4", status="FATAL")}]
    result = triage_notifications(messages, Lake(str(tmp_path)), load_registry(), [A_NA], get_report)
    assert [o["report_id"] for o in result["land"]] == ["1", "2"]
    assert result["land"][0]["marketplace_ids"] == [US]  # from the registry's amazon_schedule
    assert result["land"][1]["marketplace_ids"] == [US]  # looked up once: no schedule to say
    assert looked_up == [("amazon_a_na", "2")]
    assert {o["selling_partner_conn_id"] for o in result["land"] + result["fatal"]} == {"amazon_a_na"}
    assert [o["report_id"] for o in result["fatal"]] == ["4"]
    assert [i["message_id"] for i in result["ignored"]] == ["m4", "m5"]
    assert result["handled"] == ["h1", "h2", "h3", "h4", "h5", "h6"] and result["unrouted"] == []


def test_each_notification_goes_to_its_sellers_account_and_unknown_sellers_stay_on_the_queue(tmp_path):
    """One queue serves every seller: a notification for seller B is fetched with B's account, one for the same
    reportId of seller A with A's, and one for a seller no account serves is left (not handled, not deleted)."""
    asked = []

    def get_report(account, report_id):
        asked.append((account.conn_id, report_id))
        marketplace = {"amazon_a_na": US, "amazon_b_eu": DE}[account.conn_id]
        return {"reportId": report_id, "reportType": LISTINGS, "processingStatus": "DONE", "reportDocumentId": "d",
                "marketplaceIds": [marketplace], "createdTime": "2026-11-30T09:00:00Z"}

    messages = [{"MessageId": "a", "ReceiptHandle": "ha", "Body": notification("7", LISTINGS, seller=SELLER_A)},
                {"MessageId": "b", "ReceiptHandle": "hb", "Body": notification("7", LISTINGS, seller=SELLER_B)},
                {"MessageId": "c", "ReceiptHandle": "hc", "Body": notification("8", LISTINGS, seller="A9STRANGER00")}]
    result = triage_notifications(messages, Lake(str(tmp_path)), load_registry(), [A_NA, B_EU], get_report)
    landed = {(o["selling_partner_id"], o["report_id"]): o for o in result["land"]}
    assert set(landed) == {(SELLER_A, "7"), (SELLER_B, "7")}
    assert landed[SELLER_B, "7"]["selling_partner_conn_id"] == "amazon_b_eu"
    assert landed[SELLER_B, "7"]["marketplace_ids"] == [DE]
    assert sorted(asked) == [("amazon_a_na", "7"), ("amazon_b_eu", "7")]
    assert result["unrouted"] == [{"message_id": "c", "receipt_handle": "hc", "selling_partner_id": "A9STRANGER00",
                                   "report_id": "8"}]
    assert result["handled"] == ["ha", "hb"]


def test_a_seller_in_two_regions_is_routed_by_the_report_not_by_guessing(tmp_path):
    """Seller A sells in NA and FE; the notification names no region. A known marketplace decides (the
    registry's schedule for the inventory report is US); otherwise getReport through each of A's accounts finds
    the one whose region holds the report."""
    asked = []

    def get_report(account, report_id):
        asked.append(account.conn_id)
        if account.region != "FE":
            raise NotFoundError(404, "NotFound", "no such report", "getReport")
        return {"reportId": report_id, "reportType": LISTINGS, "processingStatus": "DONE", "reportDocumentId": "d",
                "marketplaceIds": [JP], "createdTime": "2026-11-30T09:00:00Z"}

    messages = [{"MessageId": "x", "ReceiptHandle": "hx", "Body": notification("5", LISTINGS)},
                {"MessageId": "y", "ReceiptHandle": "hy", "Body": notification("6", INVENTORY)}]
    result = triage_notifications(messages, Lake(str(tmp_path)), load_registry(), [A_NA, A_FE], get_report)
    routed = {o["report_id"]: (o["selling_partner_conn_id"], o["marketplace_ids"]) for o in result["land"]}
    assert routed == {"5": ("amazon_a_fe", [JP]), "6": ("amazon_a_na", [US])}
    assert asked == ["amazon_a_na", "amazon_a_fe"]  # only the report that nothing placed was looked up
