"""Several sellers across Amazon's three regions: regional endpoints (/na, /eu, /fe), tokens per
authorisation, marketplaces per region and seller, a report-id space and quotas per seller and region,
notifications naming the report's owner, stats per seller; and the default (no sellers) unchanged."""

from __future__ import annotations

import argparse
import json
import time

import httpx
import pytest

from sp_reports.client import Credentials, SellingPartnerClient
from sp_reports.emulator import cli
from sp_reports.emulator.config import EmulatorConfig
from sp_reports.emulator.testing import running_emulator, sqs_queue

REPORTS = "/reports/2021-06-30/reports"
SCHEDULES = "/reports/2021-06-30/schedules"
DOCUMENTS = "/reports/2021-06-30/documents"
DESTINATIONS = "/notifications/v1/destinations"
SUBSCRIPTION = "/notifications/v1/subscriptions/REPORT_PROCESSING_FINISHED"
US, CA, JP, DE, FR = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1VC38T7YXB528", "A1PA6795UKMFR9", "A13V1IB3VIYZZH"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
SETTLEMENT = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"
TERMINAL = ("DONE", "FATAL", "CANCELLED")

SELLER_A, SELLER_B, SELLER_C = "A1SELLERNAFE", "A2SELLEREU", "A3SELLERNA"
# Seller A in NA (US) and FE (JP), seller B in EU (DE), seller C in NA (US, CA): the README's example plus
# a second NA seller, so that two sellers share an endpoint.
SELLERS = [
    {"seller_id": SELLER_A, "region": "NA", "refresh_token": "Atzr|seller-a-na", "marketplace_ids": [US]},
    {"seller_id": SELLER_A, "region": "FE", "refresh_token": "Atzr|seller-a-fe", "marketplace_ids": [JP]},
    {"seller_id": SELLER_B, "region": "EU", "refresh_token": "Atzr|seller-b-eu", "marketplace_ids": [DE]},
    {"seller_id": SELLER_C, "region": "NA", "refresh_token": "Atzr|seller-c-na", "marketplace_ids": [US, CA]},
]


@pytest.fixture(scope="module")
def _sellers_emulator():
    with running_emulator(sellers=SELLERS, processing_seconds=0.2) as emu:
        yield emu


@pytest.fixture
def emu(_sellers_emulator):
    _sellers_emulator.reset(config=True)
    return _sellers_emulator


@pytest.fixture
def client_for(emu):
    """client_for(seller, token_region, endpoint_region="same"): an httpx client with that
    authorisation's access token, at that regional endpoint (None: the unprefixed one)."""
    clients: list[httpx.Client] = []

    def make(seller_id: str, region: str, endpoint: str | None = "same") -> httpx.Client:
        base = emu.endpoint(region if endpoint == "same" else endpoint)
        client = httpx.Client(base_url=base, timeout=10)
        client.headers["x-amz-access-token"] = emu.access_token(seller_id, region)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _create(client: httpx.Client, report_type: str = ORDERS, marketplaces: list[str] | None = None) -> httpx.Response:
    return client.post(REPORTS, json={"reportType": report_type, "marketplaceIds": marketplaces or [US]})


def _finished(client: httpx.Client, report_id: str) -> dict:
    deadline = time.monotonic() + 10
    while (report := client.get(f"{REPORTS}/{report_id}").json())["processingStatus"] not in TERMINAL:
        assert time.monotonic() < deadline, report
        time.sleep(0.02)
    return report


# --- auth per seller and region --------------------------------------------------------------------


def test_a_token_of_another_region_is_refused_at_a_regional_endpoint(emu, client_for, model):
    a_fe_at_na = client_for(SELLER_A, "FE", endpoint="NA")
    refused = a_fe_at_na.get(REPORTS, params={"reportTypes": ORDERS})
    assert refused.status_code == 403
    assert model.validate("getReports", refused)["errors"] == [
        {"code": "Unauthorized", "message": "Access to requested resource is denied."}
    ]
    assert _create(a_fe_at_na, marketplaces=[JP]).status_code == 403
    assert client_for(SELLER_B, "EU", endpoint="FE").get(REPORTS, params={"reportTypes": ORDERS}).status_code == 403
    # The same seller's FE authorisation works at FE, and any authorisation at the unprefixed endpoint.
    assert client_for(SELLER_A, "FE").get(REPORTS, params={"reportTypes": ORDERS}).status_code == 200
    assert client_for(SELLER_A, "FE", endpoint=None).get(REPORTS, params={"reportTypes": ORDERS}).status_code == 200
    stats = emu.stats()
    assert stats["by_seller_status"][SELLER_A]["getReports"] == {"403": 1, "200": 2}


def test_grantless_tokens_work_at_every_endpoint(emu, notifications_model):
    token = emu.grantless_token()
    for region in (None, "NA", "EU", "FE"):
        response = httpx.get(emu.endpoint(region) + DESTINATIONS, headers={"x-amz-access-token": token})
        assert notifications_model.validate("getDestinations", response) == {"payload": []}, region


def test_unknown_refresh_tokens_and_the_default_one_are_invalid_grants(emu, http):
    for token in ("Atzr|emulator-refresh-token", "Atzr|nobody"):
        form = {"grant_type": "refresh_token", **emu.credentials, "refresh_token": token}
        response = http.post(emu.lwa_url, data=form)
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


# --- marketplaces per region and seller -----------------------------------------------------------


def _invalid_input(model, operation: str, response: httpx.Response, marketplace: str) -> str:
    assert response.status_code == 400, response.text
    errors = model.validate(operation, response)["errors"]
    assert [e["code"] for e in errors] == ["InvalidInput"] and marketplace in errors[0]["message"]
    return errors[0]["message"]


def test_a_marketplace_outside_the_endpoints_region_is_invalid_input(emu, client_for, model):
    a_na = client_for(SELLER_A, "NA")
    message = _invalid_input(model, "createReport", _create(a_na, marketplaces=[JP]), JP)
    assert "NA endpoint" in message
    listed = a_na.get(REPORTS, params={"reportTypes": ORDERS, "marketplaceIds": f"{US},{JP}"})
    _invalid_input(model, "getReports", listed, JP)
    schedule = {"reportType": ORDERS, "marketplaceIds": [JP], "period": "P1D"}
    _invalid_input(model, "createReportSchedule", a_na.post(SCHEDULES, json=schedule), JP)
    assert emu.stats()["by_seller_status"][SELLER_A]["createReport"] == {"400": 1}


def test_a_marketplace_the_seller_is_not_authorised_for_is_invalid_input(emu, client_for, model):
    b_eu = client_for(SELLER_B, "EU")
    message = _invalid_input(model, "createReport", _create(b_eu, marketplaces=[FR]), FR)  # EU, not B's
    assert "not authorised" in message
    # At the unprefixed endpoint there is no region check, but the authorisation still decides.
    _invalid_input(model, "createReport", _create(client_for(SELLER_A, "NA", endpoint=None), marketplaces=[JP]), JP)
    _invalid_input(model, "createReport", _create(client_for(SELLER_A, "NA"), marketplaces=[CA]), CA)
    assert _create(client_for(SELLER_C, "NA"), marketplaces=[CA]).status_code == 202
    assert _create(b_eu, marketplaces=[DE]).status_code == 202


# --- report ids and state per seller and region ---------------------------------------------------


def test_two_sellers_get_the_same_report_id_for_different_reports(emu, client_for, model, http):
    """Two sellers in one region share reportIds (unique only with the seller); one seller's regions do not."""
    a_na, c_na = client_for(SELLER_A, "NA"), client_for(SELLER_C, "NA")
    report_a = model.validate("createReport", _create(a_na, ORDERS, [US]))["reportId"]
    report_b = model.validate("createReport", _create(c_na, LISTINGS, [CA]))["reportId"]
    assert report_a == report_b
    assert _create(client_for(SELLER_A, "FE"), ORDERS, [JP]).json()["reportId"] != report_a

    finished_a, finished_b = _finished(a_na, report_a), _finished(c_na, report_b)
    assert (finished_a["reportType"], finished_a["marketplaceIds"]) == (ORDERS, [US])
    assert (finished_b["reportType"], finished_b["marketplaceIds"]) == (LISTINGS, [CA])
    assert finished_a["reportDocumentId"] != finished_b["reportDocumentId"]
    documents = []
    for client, report in ((a_na, finished_a), (c_na, finished_b)):
        document = model.validate("getReportDocument", client.get(f"{DOCUMENTS}/{report['reportDocumentId']}"))
        download = http.get(document["url"])
        assert download.status_code == 200
        documents.append(download.content)
    assert documents[0] != documents[1]
    # Each seller lists only its own report.
    for client, report_type in ((a_na, ORDERS), (c_na, LISTINGS)):
        listed = client.get(REPORTS, params={"reportTypes": f"{ORDERS},{LISTINGS}"}).json()["reports"]
        assert [(r["reportId"], r["reportType"]) for r in listed] == [(report_a, report_type)]


def test_another_sellers_or_regions_report_is_not_found(emu, client_for, model):
    a_na = client_for(SELLER_A, "NA")
    report_id = _create(a_na).json()["reportId"]
    document_id = _finished(a_na, report_id)["reportDocumentId"]
    for other in (client_for(SELLER_C, "NA"), client_for(SELLER_A, "FE"), client_for(SELLER_B, "EU", endpoint=None)):
        missing = other.get(f"{REPORTS}/{report_id}")
        assert missing.status_code == 404
        assert model.validate("getReport", missing)["errors"][0]["code"] == "NotFound"
        assert other.delete(f"{REPORTS}/{report_id}").status_code == 404
        assert other.get(f"{DOCUMENTS}/{document_id}").status_code == 404
    assert a_na.get(f"{REPORTS}/{report_id}").status_code == 200
    # The same seller's token works at the unprefixed endpoint too: the account is the authorisation's.
    assert client_for(SELLER_A, "NA", endpoint=None).get(f"{REPORTS}/{report_id}").status_code == 200


def test_schedules_are_per_seller(emu, client_for, model):
    a_na, c_na = client_for(SELLER_A, "NA"), client_for(SELLER_C, "NA")
    spec = {"reportType": ORDERS, "marketplaceIds": [US], "period": "P1D"}
    schedule_a = model.validate("createReportSchedule", a_na.post(SCHEDULES, json=spec))["reportScheduleId"]
    schedule_c = model.validate("createReportSchedule", c_na.post(SCHEDULES, json=spec))["reportScheduleId"]
    assert schedule_a == schedule_c  # the same id space, seeded alike, and C's did not replace A's
    for client in (a_na, c_na):
        listed = client.get(SCHEDULES, params={"reportTypes": ORDERS}).json()["reportSchedules"]
        assert [s["reportScheduleId"] for s in listed] == [schedule_a]
    assert c_na.delete(f"{SCHEDULES}/{schedule_c}").status_code == 200
    assert a_na.get(f"{SCHEDULES}/{schedule_a}").status_code == 200
    assert c_na.get(f"{SCHEDULES}/{schedule_c}").status_code == 404


def test_settlements_are_created_per_authorisation_for_its_marketplaces(emu, client_for):
    emu.config(settlement_period_seconds=0.2)
    expected = {("A1SELLERNAFE", "NA"): [US], ("A1SELLERNAFE", "FE"): [JP], ("A2SELLEREU", "EU"): [DE],
                ("A3SELLERNA", "NA"): [US, CA]}  # fmt: skip
    time.sleep(0.5)
    for (seller_id, region), marketplaces in expected.items():
        listed = client_for(seller_id, region).get(REPORTS, params={"reportTypes": SETTLEMENT}).json()["reports"]
        assert listed, (seller_id, region)
        assert {m for r in listed for m in r["marketplaceIds"]} == set(marketplaces), (seller_id, region)


def test_seeding_a_report_for_a_named_seller(emu, client_for, http):
    body = {"reportType": SETTLEMENT, "marketplaceIds": [DE], "sellerId": SELLER_B}
    created = http.post(emu.base_url + "/_emulator/reports", json=body)
    assert created.status_code == 201, created.text
    listed = client_for(SELLER_B, "EU").get(REPORTS, params={"reportTypes": SETTLEMENT}).json()["reports"]
    assert [r["reportId"] for r in listed] == [created.json()["reportId"]]
    ambiguous = http.post(emu.base_url + "/_emulator/reports", json={**body, "sellerId": SELLER_A})
    assert ambiguous.status_code == 400  # A has two authorisations: name the region
    seeded_fe = http.post(emu.base_url + "/_emulator/reports", json={**body, "sellerId": SELLER_A, "region": "FE"})
    assert seeded_fe.status_code == 201


# --- quotas per seller and region -----------------------------------------------------------------


def test_one_sellers_exhausted_create_report_quota_does_not_delay_the_others(emu, client_for):
    """Seller A empties its createReport burst (15) at the NA endpoint; seller C's next createReport
    there, through the project's client, is accepted at once: no 429, one call, while A's bucket is
    still empty."""
    a_na = client_for(SELLER_A, "NA")
    accepted = [_create(a_na).status_code for _ in range(15)]
    assert accepted == [202] * 15
    assert _create(a_na).status_code == 429  # A's bucket is empty

    with SellingPartnerClient(
        Credentials(**emu.credentials(SELLER_C, "NA")), endpoint=emu.endpoint("NA"), lwa_endpoint=emu.lwa_url
    ) as client:
        report_id = client.create_report(ORDERS, [US])
    assert report_id.isdigit()
    assert _create(a_na).status_code == 429  # A's bucket did not refill meanwhile: C was not lucky

    stats = emu.stats()
    assert stats["by_seller_status"][SELLER_C]["createReport"] == {"202": 1}
    assert stats["by_seller_status"][SELLER_A]["createReport"] == {"202": 15, "429": 2}
    assert stats["calls_by_seller"][SELLER_C]["createReport"] == 1
    assert stats["by_operation_status"]["createReport"] == {"202": 16, "429": 2}  # the totals stay


def test_the_same_seller_has_a_quota_per_region(emu, client_for):
    a_na, a_fe = client_for(SELLER_A, "NA"), client_for(SELLER_A, "FE")
    for _ in range(15):
        assert _create(a_na).status_code == 202
    assert _create(a_na).status_code == 429
    assert _create(a_fe, marketplaces=[JP]).status_code == 202


# --- notifications ----------------------------------------------------------------------------------


def test_notifications_name_the_reports_owner(emu, client_for, moto_server, notifications_model):
    emu.config(sqs_endpoint_url=moto_server)
    with sqs_queue(moto_server) as queue:
        grantless = {"x-amz-access-token": emu.grantless_token()}
        destination = httpx.post(
            emu.base_url + DESTINATIONS, headers=grantless,
            json={"name": "q", "resourceSpecification": {"sqs": {"arn": queue.arn}}},
        ).json()["payload"]["destinationId"]  # fmt: skip
        a_na, c_na, a_fe = client_for(SELLER_A, "NA"), client_for(SELLER_C, "NA"), client_for(SELLER_A, "FE")
        # Subscriptions are per seller and region: A and C in NA subscribe, A in FE does not.
        for client in (a_na, c_na):
            subscribed = client.post(SUBSCRIPTION, json={"destinationId": destination, "payloadVersion": "1.0"})
            notifications_model.validate("createSubscription", subscribed)
        assert a_fe.get(SUBSCRIPTION).status_code == 404
        report_a = _create(a_na, ORDERS, [US]).json()["reportId"]
        report_b = _create(c_na, LISTINGS, [CA]).json()["reportId"]
        _create(a_fe, ORDERS, [JP])
        assert report_a == report_b
        messages = queue.receive(2, timeout=10)
    events = {m["payload"]["reportProcessingFinishedNotification"]["reportType"]: m for m in messages}
    assert len(messages) == 2 and set(events) == {ORDERS, LISTINGS}
    for report_type, seller_id in ((ORDERS, SELLER_A), (LISTINGS, SELLER_C)):
        event = events[report_type]["payload"]["reportProcessingFinishedNotification"]
        assert event["sellerId"] == seller_id and event["accountId"] == f"amzn1.merchant.o.{seller_id}"
        assert event["reportId"] == report_a
    assert len({m["notificationMetadata"]["subscriptionId"] for m in messages}) == 2


# --- stats ----------------------------------------------------------------------------------------


def test_stats_count_calls_per_seller(emu, client_for):
    _create(client_for(SELLER_A, "NA"))
    _create(client_for(SELLER_A, "FE"), marketplaces=[JP])
    client_for(SELLER_B, "EU").get(REPORTS, params={"reportTypes": ORDERS})
    stats = emu.stats()
    assert {"calls", "responses", "by_operation_status", "notifications"} <= set(stats)
    assert stats["calls_by_seller"] == {SELLER_A: {"createReport": 2}, SELLER_B: {"getReports": 1}}
    assert stats["by_seller_status"][SELLER_A] == {"createReport": {"202": 2}}
    assert stats["calls"]["createReport"] == 2 and stats["calls"]["lwaToken"] == 3


# --- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sellers, complaint",
    [
        ([{**SELLERS[0], "region": "APAC"}], "region"),
        ([{**SELLERS[0], "marketplace_ids": [JP]}], "not NA"),
        ([{**SELLERS[0], "marketplace_ids": ["NOPE"]}], "unknown marketplace"),
        ([{**SELLERS[0], "marketplace_ids": []}], "marketplace_ids"),
        ([{**SELLERS[0], "refresh_token": " "}], "refresh_token"),
        ([SELLERS[0], {**SELLERS[2], "refresh_token": SELLERS[0]["refresh_token"]}], "unique"),
        ([SELLERS[0], {**SELLERS[0], "refresh_token": "Atzr|other"}], "already has"),
        ([{**SELLERS[0], "seller_id": ""}], "seller_id"),
        ([{**SELLERS[0], "extra": 1}], "unknown keys"),
        (["A1SELLER"], "must be an object"),
    ],
)
def test_sellers_are_validated(sellers, complaint):
    with pytest.raises(ValueError, match=complaint):
        EmulatorConfig(sellers=sellers)
    with pytest.raises(ValueError, match=complaint):
        EmulatorConfig().updated({"sellers": sellers})


def test_sellers_from_the_command_line():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    config = cli.build_config(parser.parse_args(["--config-json", json.dumps({"sellers": SELLERS[:3]})]))
    assert [(a.seller_id, a.region, a.marketplace_ids) for a in config.authorisations()] == [
        (SELLER_A, "NA", (US,)), (SELLER_A, "FE", (JP,)), (SELLER_B, "EU", (DE,)),
    ]  # fmt: skip
    lower = cli.build_config(
        parser.parse_args(["--config-json", json.dumps({"sellers": [{**SELLERS[0], "region": "na"}]})])
    )
    assert lower.sellers[0]["region"] == "NA"


def test_sellers_can_be_added_at_run_time(emulator, http):
    """The control endpoint takes `sellers` like any knob; the default seller then no longer exists."""
    new = {"seller_id": "A9LATECOMER", "region": "EU", "refresh_token": "Atzr|late", "marketplace_ids": [DE]}
    config = emulator.config(sellers=[new])
    assert config["sellers"] == [new]
    token_form = {"grant_type": "refresh_token", **emulator.credentials}
    assert http.post(emulator.lwa_url, data=token_form).status_code == 400  # the default seller's token
    late = http.post(emulator.lwa_url, data={**token_form, "refresh_token": "Atzr|late"})
    assert late.status_code == 200
    headers = {"x-amz-access-token": late.json()["access_token"]}
    body = {"reportType": ORDERS, "marketplaceIds": [DE]}
    assert http.post(emulator.endpoint("EU") + REPORTS, json=body, headers=headers).status_code == 202
    assert http.post(emulator.endpoint("NA") + REPORTS, json=body, headers=headers).status_code == 403
    assert emulator.stats()["calls_by_seller"]["A9LATECOMER"] == {"createReport": 2}
    bad = http.post(emulator.base_url + "/_emulator/config", json={"sellers": [{**new, "region": "XX"}]})
    assert bad.status_code == 400 and "region" in bad.json()["error"]


# --- no sellers configured: the default seller, as before -------------------------------------------


def test_the_default_seller_works_everywhere_as_before(emulator, api, http, model):
    """The session emulator has no sellers: one default seller, today's refresh token, every
    marketplace at the unprefixed endpoint and at every regional one (within the region)."""
    config = emulator.config()
    assert config["sellers"] == [] and config["seller_id"] == "A3EMULATORSELLER"
    assert emulator.credentials["refresh_token"] == "Atzr|emulator-refresh-token"
    assert emulator.credentials() == dict(emulator.credentials)
    assert emulator.endpoint() == emulator.base_url and emulator.endpoint("fe") == emulator.base_url + "/fe"

    jp = {"reportType": ORDERS, "marketplaceIds": [JP]}
    created = model.validate("createReport", api.post(REPORTS, json=jp))["reportId"]
    headers = {"x-amz-access-token": emulator.access_token()}
    for region in ("NA", "EU", "FE"):
        listed = http.get(emulator.endpoint(region) + REPORTS, params={"reportTypes": ORDERS}, headers=headers)
        assert [r["reportId"] for r in listed.json()["reports"]] == [created], region  # one store everywhere
    assert http.post(emulator.endpoint("FE") + REPORTS, json=jp, headers=headers).status_code == 202
    at_na = http.post(emulator.endpoint("NA") + REPORTS, json=jp, headers=headers)
    _invalid_input(model, "createReport", at_na, JP)
    stats = emulator.stats()
    assert stats["calls_by_seller"] == {"A3EMULATORSELLER": {"createReport": 3, "getReports": 3}}
