"""Notifications v1 against the official model, and REPORT_PROCESSING_FINISHED delivered to SQS
(moto_server): one per finished report, schedules and settlements included, duplicates and drops."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import jsonschema
import pytest

from sp_reports.emulator import cli
from sp_reports.emulator.testing import sqs_queue
from support import SPAPI_MODELS

BASE = "/notifications/v1"
DESTINATIONS = f"{BASE}/destinations"
RPF = "REPORT_PROCESSING_FINISHED"
SUBSCRIPTION = f"{BASE}/subscriptions/{RPF}"
REPORTS = "/reports/2021-06-30/reports"
SCHEDULES = "/reports/2021-06-30/schedules"
US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"
SETTLEMENT = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"
SCHEMA_PATH = (
    SPAPI_MODELS / "schemas" / "notifications"
    / "ReportProcessingFinishedNotification.json"
)  # fmt: skip


@pytest.fixture(scope="module")
def notification_schema():
    schema = json.loads(SCHEMA_PATH.read_text())
    # Strict: a field the schema does not know (say, a misspelt reportDocumentId) must fail.
    schema["additionalProperties"] = False
    schema["properties"]["payload"]["properties"]["reportProcessingFinishedNotification"]["additionalProperties"] = False
    return schema


@pytest.fixture
def grantless(emulator, http):
    """An httpx client for grantless calls (client_credentials token, notifications scope)."""
    with httpx.Client(base_url=emulator.base_url, timeout=10) as client:
        client.headers["x-amz-access-token"] = emulator.grantless_token()
        yield client


@pytest.fixture
def queue(moto_server):
    with sqs_queue(moto_server) as q:
        yield q


@pytest.fixture
def subscribed(emulator, api, grantless, queue, moto_server):
    """Emulator publishing to `queue`, quotas off, fast reports; returns the queue."""
    emulator.config(sqs_endpoint_url=moto_server, enforce_quotas=False, processing_seconds=0.2)
    destination = grantless.post(DESTINATIONS, json={"name": "q", "resourceSpecification": {"sqs": {"arn": queue.arn}}})
    destination_id = destination.json()["payload"]["destinationId"]
    assert api.post(SUBSCRIPTION, json={"destinationId": destination_id, "payloadVersion": "1.0"}).status_code == 200
    return queue


def _create_destination(client, arn, name="dest"):
    return client.post(DESTINATIONS, json={"name": name, "resourceSpecification": {"sqs": {"arn": arn}}})


ARN = "arn:aws:sqs:us-east-1:123456789012:emulator-queue"


# --- the API -------------------------------------------------------------------------------------


def test_destinations_lifecycle(grantless, notifications_model):
    response = _create_destination(grantless, ARN, "SQSDestination")
    created = notifications_model.validate("createDestination", response)["payload"]
    assert response.status_code == 200 and response.headers["x-amzn-RateLimit-Limit"] == "1"
    assert created["name"] == "SQSDestination" and created["resource"] == {"sqs": {"arn": ARN}}
    destination_id = created["destinationId"]

    listed = notifications_model.validate("getDestinations", grantless.get(DESTINATIONS))["payload"]
    assert listed == [created]
    one = notifications_model.validate("getDestination", grantless.get(f"{DESTINATIONS}/{destination_id}"))
    assert one == {"payload": created}

    again = _create_destination(grantless, ARN, "other name")
    error = notifications_model.validate("createDestination", again)["errors"][0]
    assert again.status_code == 409 and error["code"] == "Conflict"
    assert len(grantless.get(DESTINATIONS).json()["payload"]) == 1

    deleted = grantless.delete(f"{DESTINATIONS}/{destination_id}")
    assert notifications_model.validate("deleteDestination", deleted) == {}
    gone = grantless.get(f"{DESTINATIONS}/{destination_id}")
    assert gone.status_code == 404 and notifications_model.validate("getDestination", gone)["errors"][0]["code"] == "NotFound"
    assert grantless.delete(f"{DESTINATIONS}/{destination_id}").status_code == 404
    assert grantless.get(DESTINATIONS).json() == {"payload": []}


@pytest.mark.parametrize(
    "body",
    [
        {"resourceSpecification": {"sqs": {"arn": ARN}}},  # no name
        {"name": "x" * 257, "resourceSpecification": {"sqs": {"arn": ARN}}},
        {"name": "d"},
        {"name": "d", "resourceSpecification": {"sqs": {"arn": "arn:aws:sns:us-east-1:1:topic"}}},
        {"name": "d", "resourceSpecification": {"sqs": {}}},
        {"name": "d", "resourceSpecification": {"eventBridge": {"region": "us-east-1", "accountId": "1"}}},
    ],
)
def test_create_destination_validation(grantless, notifications_model, body):
    response = grantless.post(DESTINATIONS, json=body)
    assert response.status_code == 400
    assert notifications_model.validate("createDestination", response)["errors"][0]["code"] == "InvalidInput"


def test_token_rules(emulator, api, grantless, http, notifications_model):
    """Destinations and subscription ids are grantless (notifications scope only); createSubscription
    and getSubscription act for the seller and take the seller's token."""
    seller_attempt = _create_destination(api, ARN)
    assert seller_attempt.status_code == 403
    assert notifications_model.validate("createDestination", seller_attempt)["errors"][0]["code"] == "Unauthorized"
    other_scope = {"x-amz-access-token": emulator.grantless_token("sellingpartnerapi::migration")}
    assert http.get(emulator.base_url + DESTINATIONS, headers=other_scope).status_code == 403
    assert http.get(emulator.base_url + DESTINATIONS).status_code == 403  # no token at all

    destination_id = _create_destination(grantless, ARN).json()["payload"]["destinationId"]
    body = {"destinationId": destination_id, "payloadVersion": "1.0"}
    grantless_attempt = grantless.post(SUBSCRIPTION, json=body)
    assert notifications_model.validate("createSubscription", grantless_attempt)["errors"][0]["code"] == "Unauthorized"
    subscription = notifications_model.validate("createSubscription", api.post(SUBSCRIPTION, json=body))["payload"]
    assert grantless.get(SUBSCRIPTION).status_code == 403
    by_id = f"{SUBSCRIPTION}/{subscription['subscriptionId']}"
    assert api.delete(by_id).status_code == 403 and api.get(by_id).status_code == 403
    assert grantless.get(f"{DESTINATIONS}/{destination_id}").status_code == 200
    assert grantless.get(REPORTS, params={"reportTypes": ORDERS}).status_code == 403  # and no Reports with it
    stats = emulator.stats()["by_operation_status"]
    assert stats["createDestination"] == {"403": 1, "200": 1} and stats["createSubscription"] == {"403": 1, "200": 1}


def test_subscription_lifecycle(api, grantless, notifications_model):
    destination_id = _create_destination(grantless, ARN).json()["payload"]["destinationId"]
    missing = api.get(SUBSCRIPTION)
    assert missing.status_code == 404 and notifications_model.validate("getSubscription", missing)["errors"]

    response = api.post(SUBSCRIPTION, json={"destinationId": destination_id, "payloadVersion": "1.0"})
    subscription = notifications_model.validate("createSubscription", response)["payload"]
    assert response.headers["x-amzn-RateLimit-Limit"] == "1"
    assert subscription["destinationId"] == destination_id and subscription["payloadVersion"] == "1.0"
    fetched = api.get(SUBSCRIPTION)
    assert notifications_model.validate("getSubscription", fetched) == {"payload": subscription}
    assert api.get(SUBSCRIPTION, params={"payloadVersion": "1.0"}).status_code == 200
    assert api.get(SUBSCRIPTION, params={"payloadVersion": "2.0"}).status_code == 404
    by_id = f"{SUBSCRIPTION}/{subscription['subscriptionId']}"
    assert notifications_model.validate("getSubscriptionById", grantless.get(by_id)) == {"payload": subscription}

    second = api.post(SUBSCRIPTION, json={"destinationId": destination_id, "payloadVersion": "1.0"})
    assert second.status_code == 409
    assert notifications_model.validate("createSubscription", second)["errors"][0]["code"] == "Conflict"
    in_use = grantless.delete(f"{DESTINATIONS}/{destination_id}")
    assert in_use.status_code == 409 and notifications_model.validate("deleteDestination", in_use)["errors"]

    assert notifications_model.validate("deleteSubscriptionById", grantless.delete(by_id)) == {}
    assert grantless.delete(by_id).status_code == 404
    assert api.get(SUBSCRIPTION).status_code == 404
    assert grantless.delete(f"{DESTINATIONS}/{destination_id}").status_code == 200


@pytest.mark.parametrize(
    "path, fields",
    [
        (f"{BASE}/subscriptions/ANY_OFFER_CHANGED", {}),
        (SUBSCRIPTION, {"destinationId": None}),
        (SUBSCRIPTION, {"destinationId": "no-such-destination"}),
        (SUBSCRIPTION, {"payloadVersion": "9.9"}),
        (SUBSCRIPTION, {"payloadVersion": None}),
        (SUBSCRIPTION, {"processingDirective": {"filterExpression": "true"}}),
    ],
)
def test_create_subscription_validation(api, grantless, notifications_model, path, fields):
    destination_id = _create_destination(grantless, ARN).json()["payload"]["destinationId"]
    body = {"destinationId": destination_id, "payloadVersion": "1.0", **fields}
    response = api.post(path, json={k: v for k, v in body.items() if v is not None})
    assert response.status_code == 400, response.text
    assert notifications_model.validate("createSubscription", response)["errors"][0]["code"] == "InvalidInput"


def test_unsupported_notification_type_on_reads(api, grantless, notifications_model):
    response = api.get(f"{BASE}/subscriptions/ORDER_CHANGE")
    assert response.status_code == 400
    assert notifications_model.validate("getSubscription", response)["errors"][0]["code"] == "InvalidInput"


def test_quota_429(emulator, grantless, notifications_model):
    statuses = [grantless.get(DESTINATIONS).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]  # burst 5 at 1 request per second
    assert emulator.stats()["calls"]["getDestinations"] == 6


def test_reset_forgets_destinations_and_subscriptions(emulator, api, grantless):
    destination_id = _create_destination(grantless, ARN).json()["payload"]["destinationId"]
    api.post(SUBSCRIPTION, json={"destinationId": destination_id, "payloadVersion": "1.0"})
    emulator.reset()
    assert grantless.get(DESTINATIONS).json() == {"payload": []}
    assert api.get(SUBSCRIPTION).status_code == 404
    assert emulator.stats()["notifications"] == {
        "notificationsPublished": 0, "notificationsDuplicated": 0, "notificationsDropped": 0, "notificationsFailed": 0,
    }  # fmt: skip


# --- publishing ----------------------------------------------------------------------------------


def test_done_fatal_and_cancelled_reports_are_notified_once(
    emulator, api, subscribed, notification_schema, create_report
):
    emulator.config(outcomes={ORDERS: "DONE", LISTINGS: "FATAL", INVENTORY: "CANCELLED"})
    ids = {status: create_report(report_type) for status, report_type in
           (("DONE", ORDERS), ("FATAL", LISTINGS), ("CANCELLED", INVENTORY))}  # fmt: skip
    emulator.config(processing_seconds=5.0)
    cancelled_by_caller = create_report(ORDERS)
    assert api.delete(f"{REPORTS}/{cancelled_by_caller}").status_code == 200

    bodies = subscribed.receive(4)
    assert len(bodies) == 4  # one each, no more
    by_report = {}
    for body in bodies:
        jsonschema.Draft7Validator(notification_schema).validate(body)
        by_report[body["payload"]["reportProcessingFinishedNotification"]["reportId"]] = body
    assert set(by_report) == {*ids.values(), cancelled_by_caller}
    subscription = api.get(SUBSCRIPTION).json()["payload"]
    for report_id, body in by_report.items():
        report = api.get(f"{REPORTS}/{report_id}").json()
        event = body["payload"]["reportProcessingFinishedNotification"]
        assert event["processingStatus"] == report["processingStatus"]
        assert event["reportType"] == report["reportType"]
        assert event.get("reportDocumentId") == report.get("reportDocumentId")
        assert event["accountId"] == f"amzn1.merchant.o.{event['sellerId']}"
        assert (body["notificationVersion"], body["notificationType"]) == ("2020-09-04", RPF)
        metadata = body["notificationMetadata"]
        assert metadata["subscriptionId"] == subscription["subscriptionId"]
        assert metadata["applicationId"].startswith("amzn1.sellerapps.app.")
        assert body["eventTime"] <= metadata["publishTime"]
        if "processingEndTime" in report:  # published promptly after the report finished
            end = datetime.fromisoformat(report["processingEndTime"])
            published = datetime.fromisoformat(metadata["publishTime"].replace("Z", "+00:00"))
            assert published - end < timedelta(seconds=1.5)  # processingEndTime has second precision
    assert by_report[ids["DONE"]]["payload"]["reportProcessingFinishedNotification"]["reportDocumentId"]
    assert "reportDocumentId" in by_report[ids["FATAL"]]["payload"]["reportProcessingFinishedNotification"]
    for report_id in (ids["CANCELLED"], cancelled_by_caller):
        event = by_report[report_id]["payload"]["reportProcessingFinishedNotification"]
        assert event["processingStatus"] == "CANCELLED" and "reportDocumentId" not in event
    assert len({b["notificationMetadata"]["notificationId"] for b in bodies}) == 4
    assert emulator.stats()["notifications"]["notificationsPublished"] == 4


def test_notification_arrives_within_a_fraction_of_a_second(emulator, api, subscribed, create_report):
    report_id = create_report()
    done_at = time.monotonic() + 0.2  # processing_seconds
    bodies = subscribed.receive(1)
    assert time.monotonic() - done_at < 0.5
    assert [b["payload"]["reportProcessingFinishedNotification"]["reportId"] for b in bodies] == [report_id]


def test_reports_finishing_before_the_subscription_are_not_notified(emulator, api, grantless, queue, moto_server,
                                                                     finished_report):  # fmt: skip
    emulator.config(sqs_endpoint_url=moto_server, enforce_quotas=False, processing_seconds=0.1)
    finished_report()
    destination_id = _create_destination(grantless, queue.arn).json()["payload"]["destinationId"]
    api.post(SUBSCRIPTION, json={"destinationId": destination_id, "payloadVersion": "1.0"})
    later = finished_report()
    bodies = queue.receive(1, timeout=2)
    assert [b["payload"]["reportProcessingFinishedNotification"]["reportId"] for b in bodies] == [later["reportId"]]


def test_schedule_created_reports_are_notified_without_any_read(emulator, api, subscribed):
    emulator.config(speed=600)  # PT5M every 0.5 s
    first = datetime.now(timezone.utc) + timedelta(seconds=0.3)
    response = api.post(SCHEDULES, json={"reportType": INVENTORY, "marketplaceIds": [US], "period": "PT5M",
                                         "nextReportCreationTime": first.isoformat()})  # fmt: skip
    schedule_id = response.json()["reportScheduleId"]
    bodies = subscribed.receive(2, timeout=4)  # no Reports call in between: the ticker did it
    assert len(bodies) >= 2
    for body in bodies[:2]:
        event = body["payload"]["reportProcessingFinishedNotification"]
        report = api.get(f"{REPORTS}/{event['reportId']}").json()
        assert report["reportScheduleId"] == schedule_id and event["reportType"] == INVENTORY
        assert event["processingStatus"] == "DONE" and event["reportDocumentId"] == report["reportDocumentId"]


def _publish_batch(emulator, api, queue, count: int) -> tuple[list[str], list[dict]]:
    report_ids = [api.post(REPORTS, json={"reportType": ORDERS, "marketplaceIds": [US]}).json()["reportId"]
                  for _ in range(count)]  # fmt: skip
    stats = None

    def settled():
        nonlocal stats
        stats = emulator.stats()["notifications"]
        return stats["notificationsPublished"] + stats["notificationsDropped"] == count

    deadline = time.monotonic() + 5
    while not settled():
        assert time.monotonic() < deadline, stats
        time.sleep(0.05)
    return report_ids, queue.receive(stats["notificationsPublished"] + stats["notificationsDuplicated"], timeout=3)


def test_duplicates_and_drops_at_their_rates(emulator, api, subscribed):
    emulator.config(notification_duplicate_rate=0.3, notification_drop_rate=0.2, processing_seconds=0.1)
    report_ids, bodies = _publish_batch(emulator, api, subscribed, 60)
    stats = emulator.stats()["notifications"]
    assert 4 <= stats["notificationsDropped"] <= 22  # 12 expected
    assert 5 <= stats["notificationsDuplicated"] <= 25  # 0.3 of the 48 expected to be sent
    assert len(bodies) == stats["notificationsPublished"] + stats["notificationsDuplicated"]
    per_id: dict[str, list[dict]] = {}
    for body in bodies:
        per_id.setdefault(body["notificationMetadata"]["notificationId"], []).append(body)
    assert len(per_id) == stats["notificationsPublished"]
    doubled = [copies for copies in per_id.values() if len(copies) == 2]
    assert len(doubled) == stats["notificationsDuplicated"] and all(a == b for a, b in doubled)
    notified = {copies[0]["payload"]["reportProcessingFinishedNotification"]["reportId"] for copies in per_id.values()}
    dropped = set(report_ids) - notified
    assert len(dropped) == stats["notificationsDropped"]
    # A dropped notification's report is still DONE: a consumer falls back to polling it.
    assert {api.get(f"{REPORTS}/{rid}").json()["processingStatus"] for rid in dropped} == {"DONE"}


def test_duplicates_and_drops_are_reproducible_with_the_seed(emulator, api, grantless, queue, moto_server):
    def run():
        emulator.reset()
        emulator.config(sqs_endpoint_url=moto_server, enforce_quotas=False, processing_seconds=0.05,
                        notification_duplicate_rate=0.5, notification_drop_rate=0.3)  # fmt: skip
        destination_id = _create_destination(grantless, queue.arn).json()["payload"]["destinationId"]
        api.post(SUBSCRIPTION, json={"destinationId": destination_id, "payloadVersion": "1.0"})
        report_ids, bodies = _publish_batch(emulator, api, queue, 20)
        counts: dict[str, int] = {}
        for body in bodies:
            report_id = body["payload"]["reportProcessingFinishedNotification"]["reportId"]
            counts[report_id] = counts.get(report_id, 0) + 1
        return [counts.get(rid, 0) for rid in report_ids]

    first = run()
    assert set(first) == {0, 1, 2}
    assert run() == first


def test_every_notification_dropped(emulator, api, subscribed):
    emulator.config(notification_drop_rate=1.0, processing_seconds=0.05)
    _, bodies = _publish_batch(emulator, api, subscribed, 5)
    assert bodies == [] and emulator.stats()["notifications"]["notificationsDropped"] == 5


# --- settlements ---------------------------------------------------------------------------------


def test_settlements_appear_on_their_cycle(emulator, api, subscribed, model, download):
    emulator.config(speed=10.0, settlement_period_seconds=3.0, settlement_marketplace_ids=[US, DE])  # every 0.3 s
    started = time.time()
    bodies = subscribed.receive(4, timeout=3)
    events = [b["payload"]["reportProcessingFinishedNotification"] for b in bodies]
    assert len(events) >= 4 and {e["reportType"] for e in events} == {SETTLEMENT}
    assert {e["processingStatus"] for e in events} == {"DONE"} and all(e["reportDocumentId"] for e in events)

    listed = model.validate("getReports", api.get(REPORTS, params={"reportTypes": SETTLEMENT}))["reports"]
    assert {r["reportId"] for r in listed} >= {e["reportId"] for e in events}
    assert {tuple(r["marketplaceIds"]) for r in listed} == {(US,), (DE,)}
    created = sorted({datetime.fromisoformat(r["createdTime"]).timestamp() for r in listed if r["marketplaceIds"] == [US]})
    assert created[0] >= int(started) and all(0 <= b - a <= 1 for a, b in zip(created, created[1:]))
    for report in listed:
        assert report["processingStatus"] == "DONE" and "reportScheduleId" not in report
    document = download(listed[-1]["reportDocumentId"])
    assert document.status_code == 200 and len(document.content) > 0
    # Amazon generates them; they still cannot be requested.
    assert api.post(REPORTS, json={"reportType": SETTLEMENT, "marketplaceIds": [US]}).status_code == 400


def test_settlements_off_by_default(emulator, api):
    emulator.config(speed=100.0, enforce_quotas=False)
    time.sleep(0.2)
    assert api.get(REPORTS, params={"reportTypes": SETTLEMENT}).json() == {"reports": []}


def test_config_validation_of_new_knobs(emulator, http):
    for bad in ({"notification_drop_rate": 1.5}, {"notification_duplicate_rate": -0.1},
                {"settlement_period_seconds": 0}, {"settlement_marketplace_ids": ["NOPE"]},
                {"settlement_marketplace_ids": []}, {"sqs_endpoint_url": 5}):  # fmt: skip
        assert http.post(emulator.base_url + "/_emulator/config", json=bad).status_code == 400, bad
    config = emulator.config(settlement_period_seconds=None, sqs_endpoint_url="http://127.0.0.1:1")
    assert config["settlement_period_seconds"] is None and config["settlement_marketplace_ids"] == [US]


def test_cli_flags():
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--sqs-endpoint", "http://127.0.0.1:5000", "--settlement-period", "60",
                              "--settlement-marketplaces", f"{US},{DE}", "--notification-duplicate-rate", "0.1",
                              "--notification-drop-rate", "0.05"])  # fmt: skip
    config = cli.build_config(args)
    assert config.sqs_endpoint_url == "http://127.0.0.1:5000" and config.settlement_period_seconds == 60.0
    assert config.settlement_marketplace_ids == [US, DE]
    assert (config.notification_duplicate_rate, config.notification_drop_rate) == (0.1, 0.05)
    defaults = cli.build_config(parser.parse_args([]))
    assert defaults.sqs_endpoint_url is None and defaults.settlement_period_seconds is None
