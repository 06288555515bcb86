"""The Notifications v1 operations and ensure_report_notifications: against a fake Amazon (which
token goes where) and end to end against the emulator publishing to SQS (moto_server)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from sp_reports.client import (
    REPORT_PROCESSING_FINISHED,
    TOKEN_CACHE,
    ConflictError,
    Credentials,
    InvalidInputError,
    SellingPartnerClient,
    ensure_report_notifications,
    operations,
)
from sp_reports.emulator import testing
from support import SPAPI_MODELS

SPEED = 100.0
US = "ATVPDKIKX0DER"
ARN = "arn:aws:sqs:us-east-1:123456789012:reports"
MODEL = SPAPI_MODELS / "notifications.json"
DESTINATION = {"destinationId": "D1", "name": "sp-reports", "resource": {"sqs": {"arn": ARN}}}
SUBSCRIPTION = {"subscriptionId": "S1", "payloadVersion": "1.0", "destinationId": "D1"}


# --- operations, against the model ---------------------------------------------------------------


def test_quotas_and_grantless_operations_follow_the_model():
    model = json.loads(MODEL.read_text())
    declared = {}
    for path, methods in model["paths"].items():
        for method, op in methods.items():
            if isinstance(op, dict) and "operationId" in op:
                rate, burst = re.search(r"\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|", op["description"]).groups()
                declared[op["operationId"]] = (method.upper(), path, float(rate), int(burst), "is grantless" in op["description"])
    for op in operations.NOTIFICATION_OPERATIONS:
        method, path, rate, burst, grantless = declared[op.name]
        assert (op.method, op.path, op.rate, op.burst) == (method, path, rate, burst), op.name
        assert (op.grantless_scope == "sellingpartnerapi::notifications") == grantless, op.name


# --- against a fake Amazon -----------------------------------------------------------------------


def _form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


async def test_grantless_operations_use_the_grantless_token(amazon, client, fake):
    amazon.route("POST", "/notifications/v1/destinations", httpx.Response(200, json={"payload": DESTINATION}))
    amazon.route("GET", f"/notifications/v1/subscriptions/{REPORT_PROCESSING_FINISHED}",
                 httpx.Response(200, json={"payload": SUBSCRIPTION}))  # fmt: skip
    assert await client.create_destination("sp-reports", ARN) == DESTINATION
    assert await client.get_subscription(REPORT_PROCESSING_FINISHED) == SUBSCRIPTION
    grants = [_form(r) for r in amazon.lwa_requests]
    assert [(g["grant_type"], g.get("scope")) for g in grants] == [
        ("client_credentials", "sellingpartnerapi::notifications"), ("refresh_token", None),
    ]  # fmt: skip
    assert "refresh_token" not in grants[0]  # the seller's authorization is not part of a grantless call
    create, get = amazon.api_requests
    assert create.headers["x-amz-access-token"] == amazon.tokens_issued[0]
    assert get.headers["x-amz-access-token"] == amazon.tokens_issued[1]
    assert fake.body_of(create) == {"name": "sp-reports", "resourceSpecification": {"sqs": {"arn": ARN}}}


async def test_not_found_conflict_and_argument_checks(amazon, client, fake):
    path = f"/notifications/v1/subscriptions/{REPORT_PROCESSING_FINISHED}"
    amazon.route("GET", path, fake.error_response(404, "NotFound", "No subscription found."))
    amazon.route("POST", path, fake.error_response(409, "Conflict", "Subscription already exists."))
    assert await client.get_subscription(REPORT_PROCESSING_FINISHED) is None
    with pytest.raises(ConflictError) as info:
        await client.create_subscription(REPORT_PROCESSING_FINISHED, "D1")
    assert info.value.status == 409 and info.value.code == "Conflict"
    assert fake.body_of(amazon.api_requests[-1]) == {"destinationId": "D1", "payloadVersion": "1.0"}
    for bad in ("arn:aws:sns:us-east-1:1:topic", "queue-name", "arn:aws:sqs:us-east-1::name"):
        with pytest.raises(ValueError):
            await client.create_destination("x", bad)


async def test_rejected_grantless_token_is_refreshed_once(amazon, client, fake):
    amazon.queue("GET", "/notifications/v1/destinations",
                 fake.error_response(403, "Unauthorized", "The access token you provided has expired."),
                 httpx.Response(200, json={"payload": [DESTINATION]}))  # fmt: skip
    assert await client.get_destinations() == [DESTINATION]
    assert [_form(r)["grant_type"] for r in amazon.lwa_requests] == ["client_credentials"] * 2


# --- against the emulator ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def sleeps():
    """Real time against the emulator (overrides the conftest fixture that fakes sleeping)."""
    return []


@pytest.fixture(scope="module")
def running(moto_server):
    with testing.running_emulator(speed=SPEED, processing_seconds=2.0, seed=11, sqs_endpoint_url=moto_server) as emu:
        yield emu


@pytest.fixture
def emu(running):
    running.reset(config=True)
    TOKEN_CACHE.clear()
    return running


@pytest.fixture
def sync_client(emu):
    with SellingPartnerClient(Credentials(**emu.credentials), endpoint=emu.base_url, lwa_endpoint=emu.lwa_url,
                              scale_quotas=SPEED) as client:  # fmt: skip
        yield client


@pytest.fixture
def queue(moto_server):
    with testing.sqs_queue(moto_server) as q:
        yield q


def test_operations_against_the_emulator(sync_client, emu):
    destination = sync_client.create_destination("mine", ARN)
    assert destination["name"] == "mine" and destination["resource"] == {"sqs": {"arn": ARN}}
    assert sync_client.get_destinations() == [destination]
    with pytest.raises(ConflictError):
        sync_client.create_destination("again", ARN)
    assert sync_client.get_subscription(REPORT_PROCESSING_FINISHED) is None
    subscription = sync_client.create_subscription(REPORT_PROCESSING_FINISHED, destination["destinationId"])
    assert subscription["destinationId"] == destination["destinationId"] and subscription["payloadVersion"] == "1.0"
    assert sync_client.get_subscription(REPORT_PROCESSING_FINISHED) == subscription
    with pytest.raises(ConflictError):
        sync_client.create_subscription(REPORT_PROCESSING_FINISHED, destination["destinationId"])
    with pytest.raises(InvalidInputError):
        sync_client.create_subscription("ANY_OFFER_CHANGED", destination["destinationId"])
    with pytest.raises(ConflictError):  # still subscribed
        sync_client.delete_destination(destination["destinationId"])
    sync_client.delete_subscription(REPORT_PROCESSING_FINISHED, subscription["subscriptionId"])
    sync_client.delete_destination(destination["destinationId"])
    assert sync_client.get_destinations() == []
    calls = emu.stats()["calls"]
    assert calls["lwaToken"] == 2  # one seller token, one grantless token, both cached


def test_ensure_report_notifications_is_idempotent(sync_client, emu, queue):
    first = ensure_report_notifications(sync_client, queue.arn)
    second = ensure_report_notifications(sync_client, queue.arn)
    assert first == second and set(first) == {"destination_id", "subscription_id"}
    calls = emu.stats()["calls"]
    assert calls["createDestination"] == 1 and calls["createSubscription"] == 1  # the second call only read
    assert calls["getDestinations"] == 2 and calls["getSubscription"] == 2
    destination, = sync_client.get_destinations()
    assert destination["name"] == "sp-reports" and destination["destinationId"] == first["destination_id"]

    report_id = sync_client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [US])
    body, = queue.receive(1)
    assert body["payload"]["reportProcessingFinishedNotification"]["reportId"] == report_id
    assert body["notificationMetadata"]["subscriptionId"] == first["subscription_id"]


def test_ensure_reuses_what_exists_and_repoints_a_foreign_subscription(sync_client, emu, queue):
    elsewhere = sync_client.create_destination("other", ARN)
    old = sync_client.create_subscription(REPORT_PROCESSING_FINISHED, elsewhere["destinationId"])
    mine = sync_client.create_destination("already there", queue.arn)
    result = ensure_report_notifications(sync_client, queue.arn)
    assert result["destination_id"] == mine["destinationId"] and result["subscription_id"] != old["subscriptionId"]
    assert sync_client.get_subscription(REPORT_PROCESSING_FINISHED)["destinationId"] == mine["destinationId"]
    assert emu.stats()["calls"]["createDestination"] == 2  # the two above, none by ensure


def test_no_secret_or_token_in_logs_or_errors(sync_client, emu, queue, caplog):
    caplog.set_level(logging.DEBUG)
    ensure_report_notifications(sync_client, queue.arn)
    with pytest.raises(ConflictError) as info:
        sync_client.create_destination("dup", queue.arn)
    secrets = [emu.credentials["client_secret"], emu.credentials["refresh_token"],
               sync_client.get_grantless_access_token("sellingpartnerapi::notifications")]  # fmt: skip
    text = caplog.text + str(info.value) + repr(info.value)
    assert "created notification destination" in caplog.text
    for secret in secrets:
        assert secret not in text
