"""createReport, getReport, getReports and cancelReport against the official model."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

REPORTS = "/reports/2021-06-30/reports"
US, DE, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- createReport / getReport --------------------------------------------------------------------


def test_create_report_then_lifecycle_to_done(emulator, api, model):
    emulator.config(processing_seconds=1.0)
    response = api.post(REPORTS, json={"reportType": ORDERS, "marketplaceIds": [US],
                                       "dataStartTime": "2024-03-01T00:00:00Z", "dataEndTime": "2024-03-02T00:00:00.000Z"})  # fmt: skip
    body = model.validate("createReport", response)
    assert response.status_code == 202
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.0167"
    report_id = body["reportId"]

    seen = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        response = api.get(f"{REPORTS}/{report_id}")
        report = model.validate("getReport", response)
        assert response.headers["x-amzn-RateLimit-Limit"] == "2"
        if not seen or seen[-1] != report["processingStatus"]:
            seen.append(report["processingStatus"])
        if report["processingStatus"] == "DONE":
            break
        time.sleep(0.1)
    assert seen == ["IN_QUEUE", "IN_PROGRESS", "DONE"]
    assert report["reportId"] == report_id
    assert report["reportType"] == ORDERS
    assert report["marketplaceIds"] == [US]
    assert report["dataStartTime"] == "2024-03-01T00:00:00+00:00"
    assert report["dataEndTime"] == "2024-03-02T00:00:00+00:00"
    assert report["createdTime"] <= report["processingStartTime"] <= report["processingEndTime"]
    assert report["reportDocumentId"].startswith("amzn1.spdoc.1.4.na.")
    assert "payload" not in report


def test_in_queue_and_in_progress_reports_carry_no_document(emulator, api, model, create_report):
    emulator.config(processing_seconds=1.2)
    report = model.validate("getReport", api.get(f"{REPORTS}/{create_report()}"))
    assert report["processingStatus"] == "IN_QUEUE"
    assert not {"processingStartTime", "processingEndTime", "reportDocumentId"} & set(report)
    time.sleep(0.75)
    report = model.validate("getReport", api.get(f"{REPORTS}/{report['reportId']}"))
    assert report["processingStatus"] == "IN_PROGRESS"
    assert "processingStartTime" in report and "reportDocumentId" not in report


def test_speed_shortens_processing(emulator, api, create_report):
    emulator.config(speed=20)  # default 2 s processing becomes 0.1 s
    report_id = create_report()
    time.sleep(0.3)
    assert api.get(f"{REPORTS}/{report_id}").json()["processingStatus"] == "DONE"


def test_slow_reports_take_slow_factor_longer(emulator, api, create_report):
    emulator.config(processing_seconds=0.1)
    normal = create_report()
    emulator.config(slow_rate=1.0, slow_factor=20)
    slow = create_report()
    time.sleep(0.3)
    assert api.get(f"{REPORTS}/{normal}").json()["processingStatus"] == "DONE"
    assert api.get(f"{REPORTS}/{slow}").json()["processingStatus"] == "IN_QUEUE"  # 1 s of 2 s in the queue


def test_report_defaults_data_times_to_now(fast, api, model):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    report_id = api.post(REPORTS, json={"reportType": LISTINGS, "marketplaceIds": [US]}).json()["reportId"]
    report = model.validate("getReport", api.get(f"{REPORTS}/{report_id}"))
    start = datetime.fromisoformat(report["dataStartTime"])
    assert before <= start <= datetime.now(timezone.utc)
    assert report["dataStartTime"] == report["dataEndTime"]


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"marketplaceIds": [US]}, "reportType"),
        ({"reportType": "BAD_FEE_DISCOUNTS_REPORT", "marketplaceIds": [US]}, "reportType"),
        ({"reportType": "get_orders", "marketplaceIds": [US]}, "reportType"),
        ({"reportType": ORDERS}, "marketplaceIds"),
        ({"reportType": ORDERS, "marketplaceIds": []}, "marketplaceIds"),
        ({"reportType": ORDERS, "marketplaceIds": [US] * 26}, "marketplaceIds"),
        ({"reportType": ORDERS, "marketplaceIds": "ATVPDKIKX0DER"}, "marketplaceIds"),
        ({"reportType": ORDERS, "marketplaceIds": ["XXNOTAMARKET"]}, "marketplaceIds"),
        ({"reportType": ORDERS, "marketplaceIds": [US], "dataStartTime": "yesterday"}, "dataStartTime"),
        ({"reportType": ORDERS, "marketplaceIds": [US], "dataEndTime": "2024-13-45T00:00:00Z"}, "dataEndTime"),
        ({"reportType": ORDERS, "marketplaceIds": [US], "dataStartTime": "2024-03-02T00:00:00Z",
          "dataEndTime": "2024-03-01T00:00:00Z"}, "dataStartTime"),
        ({"reportType": ORDERS, "marketplaceIds": [US], "reportOptions": {"custom": True}}, "reportOptions"),
        ({"reportType": "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE", "marketplaceIds": [US]}, "cannot be requested"),
    ],
)  # fmt: skip
def test_create_report_rejects_invalid_input(api, model, body, detail):
    response = api.post(REPORTS, json=body)
    error = model.validate("createReport", response)["errors"][0]
    assert response.status_code == 400
    assert error["code"] == "InvalidInput"
    assert detail in error["message"]


def test_create_report_rejects_bad_bodies(api, model):
    response = api.post(REPORTS, content=b"{not json", headers={"content-type": "application/json"})
    assert (response.status_code, model.validate("createReport", response)["errors"][0]["code"]) == (400, "InvalidInput")
    response = api.post(REPORTS, json=[ORDERS])
    assert response.status_code == 400
    response = api.post(REPORTS, content=b"reportType=X", headers={"content-type": "application/x-www-form-urlencoded"})
    model.validate("createReport", response)
    assert response.status_code == 415


def test_unknown_report_types_allowed_when_not_strict(emulator, api):
    emulator.config(strict_report_types=False)
    assert api.post(REPORTS, json={"reportType": "GET_SOMETHING_NEW", "marketplaceIds": [US]}).status_code == 202


def test_get_report_unknown_and_malformed_ids(api, model):
    response = api.get(f"{REPORTS}/99999999999")
    assert (response.status_code, model.validate("getReport", response)["errors"][0]["code"]) == (404, "NotFound")
    assert "x-amzn-RateLimit-Limit" in response.headers
    response = api.get(f"{REPORTS}/badReportId1")
    assert (response.status_code, model.validate("getReport", response)["errors"][0]["code"]) == (400, "InvalidInput")


def test_report_ids_are_numeric_and_increasing(fast, create_report):
    ids = [create_report() for _ in range(3)]
    assert all(i.isdigit() and len(i) == 11 for i in ids)
    assert ids == sorted(ids, key=int) and len(set(ids)) == 3


def test_too_long_range_ends_fatal_with_explanation(fast, finished_report, download):
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    report = finished_report(ORDERS, dataStartTime=_iso(start), dataEndTime=_iso(start + timedelta(days=45)))
    assert report["processingStatus"] == "FATAL"
    assert "30 days" in download(report["reportDocumentId"]).json()["errorDetails"]
    ok = finished_report(ORDERS, dataStartTime=_iso(start), dataEndTime=_iso(start + timedelta(days=30)))
    assert ok["processingStatus"] == "DONE"


# --- outcomes ------------------------------------------------------------------------------------


def test_outcome_overrides_per_report_type(fast, finished_report, download, model):
    fast.config(outcomes={ORDERS: "FATAL", LISTINGS: "CANCELLED"})
    fatal = finished_report(ORDERS)
    assert fatal["processingStatus"] == "FATAL"
    error_document = download(fatal["reportDocumentId"])
    assert error_document.status_code == 200
    assert error_document.headers["content-type"].startswith("application/json")
    assert error_document.json()["errorDetails"]

    cancelled = finished_report(LISTINGS)
    assert cancelled["processingStatus"] == "CANCELLED"
    assert "reportDocumentId" not in cancelled
    # Amazon's "no data" cancellation happens during processing, so both times are present.
    assert "processingStartTime" in cancelled and "processingEndTime" in cancelled

    assert finished_report(INVENTORY)["processingStatus"] == "DONE"


def test_fatal_without_error_document(fast, finished_report):
    fast.config(outcomes={ORDERS: "FATAL"}, fatal_error_document=False)
    report = finished_report(ORDERS)
    assert report["processingStatus"] == "FATAL" and "reportDocumentId" not in report


def test_outcome_rates(fast, finished_report):
    fast.config(fatal_rate=1.0, processing_seconds=0)
    assert finished_report()["processingStatus"] == "FATAL"
    fast.config(fatal_rate=0.0, cancel_rate=1.0)
    assert finished_report()["processingStatus"] == "CANCELLED"
    fast.config(cancel_rate=0.3, fatal_rate=0.3)
    statuses = {finished_report()["processingStatus"] for _ in range(20)}
    assert statuses == {"DONE", "FATAL", "CANCELLED"}


# --- cancelReport --------------------------------------------------------------------------------


def test_cancel_in_queue_report(api, model, create_report):
    report_id = create_report()
    response = api.delete(f"{REPORTS}/{report_id}")
    model.validate("cancelReport", response)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.0222"
    report = model.validate("getReport", api.get(f"{REPORTS}/{report_id}"))
    assert report["processingStatus"] == "CANCELLED"
    assert not {"processingStartTime", "processingEndTime", "reportDocumentId"} & set(report)
    time.sleep(0.1)
    assert api.get(f"{REPORTS}/{report_id}").json()["processingStatus"] == "CANCELLED"


def test_cancel_only_in_queue(fast, api, model, finished_report):
    report = finished_report()
    response = api.delete(f"{REPORTS}/{report['reportId']}")
    error = model.validate("cancelReport", response)["errors"][0]
    assert response.status_code == 400 and "IN_QUEUE" in error["message"]
    response = api.delete(f"{REPORTS}/99999999999")
    assert (response.status_code, model.validate("cancelReport", response)["errors"][0]["code"]) == (404, "NotFound")
    response = api.delete(f"{REPORTS}/not-a-report")
    assert model.validate("cancelReport", response) and response.status_code == 400


# --- getReports ----------------------------------------------------------------------------------


def test_get_reports_filters(fast, api, model, create_report):
    fast.config(processing_seconds=5)  # keeps the listings report cancellable
    orders_us = create_report(ORDERS, [US])
    orders_de = create_report(ORDERS, [DE])
    listings = create_report(LISTINGS, [US, JP])
    api.delete(f"{REPORTS}/{listings}")

    def ids(**params):
        response = api.get(REPORTS, params=params)
        body = model.validate("getReports", response)
        assert response.status_code == 200 and response.headers["x-amzn-RateLimit-Limit"] == "0.0222"
        return [r["reportId"] for r in body["reports"]]

    assert ids(reportTypes=ORDERS) == [orders_de, orders_us]  # newest first
    assert ids(reportTypes=f"{ORDERS},{LISTINGS}") == [listings, orders_de, orders_us]
    assert ids(reportTypes=[ORDERS, LISTINGS], marketplaceIds=JP) == [listings]
    assert ids(reportTypes=f"{ORDERS},{LISTINGS}", processingStatuses="CANCELLED") == [listings]
    assert set(ids(reportTypes=f"{ORDERS},{LISTINGS}", processingStatuses="IN_QUEUE,DONE,IN_PROGRESS")) == {orders_us, orders_de}
    assert ids(reportTypes=ORDERS, marketplaceIds=f"{DE},{JP}") == [orders_de]
    future = _iso(datetime.now(timezone.utc) + timedelta(hours=1))
    past = _iso(datetime.now(timezone.utc) - timedelta(hours=1))
    assert ids(reportTypes=ORDERS, createdSince=future) == []
    assert ids(reportTypes=ORDERS, createdUntil=past) == []
    assert ids(reportTypes=ORDERS, createdSince=past) == [orders_de, orders_us]


def test_get_reports_pagination(fast, api, model, create_report):
    created = [create_report() for _ in range(5)]
    pages, params = [], {"reportTypes": ORDERS, "pageSize": 2}
    while True:
        body = model.validate("getReports", api.get(REPORTS, params=params))
        pages.append([r["reportId"] for r in body["reports"]])
        if "nextToken" not in body:
            break
        params = {"nextToken": body["nextToken"]}
    assert pages == [created[4:2:-1], created[2:0:-1], created[:1]]
    # A token can be replayed, e.g. by a client retrying after a 429.
    first = api.get(REPORTS, params={"reportTypes": ORDERS, "pageSize": 2}).json()
    again = [api.get(REPORTS, params={"nextToken": first["nextToken"]}).json() for _ in range(2)]
    assert [[r["reportId"] for r in page["reports"]] for page in again] == [created[2:0:-1]] * 2
    assert again[0]["nextToken"] == again[1]["nextToken"]


def test_get_reports_default_page_size_is_10(fast, api, create_report):
    for _ in range(11):
        create_report()
    body = api.get(REPORTS, params={"reportTypes": ORDERS}).json()
    assert len(body["reports"]) == 10 and "nextToken" in body


@pytest.mark.parametrize(
    "params, detail",
    [
        ({}, "reportTypes or nextToken"),
        ({"reportTypes": ",".join(f"GET_TYPE_{i}" for i in range(11))}, "reportTypes"),
        ({"reportTypes": ""}, "reportTypes"),
        ({"reportTypes": ORDERS, "processingStatuses": "BAD_VALUE,IN_PROGRESS"}, "processingStatuses"),
        ({"reportTypes": ORDERS, "pageSize": "0"}, "pageSize"),
        ({"reportTypes": ORDERS, "pageSize": "101"}, "pageSize"),
        ({"reportTypes": ORDERS, "pageSize": "ten"}, "pageSize"),
        ({"reportTypes": ORDERS, "marketplaceIds": ",".join([US] * 11)}, "marketplaceIds"),
        ({"reportTypes": ORDERS, "createdSince": "last week"}, "createdSince"),
        ({"nextToken": "bm90IGEgdG9rZW4="}, "nextToken"),
        ({"nextToken": "abc", "reportTypes": ORDERS}, "nextToken must be the only parameter"),
        ({"nextToken": "abc", "pageSize": "5"}, "nextToken must be the only parameter"),
    ],
)
def test_get_reports_rejects_invalid_input(api, model, params, detail):
    response = api.get(REPORTS, params=params)
    error = model.validate("getReports", response)["errors"][0]
    assert response.status_code == 400
    assert (error["code"], detail in error["message"]) == ("InvalidInput", True)


def test_page_size_bounds_are_inclusive(api):
    assert api.get(REPORTS, params={"reportTypes": ORDERS, "pageSize": 1}).status_code == 200
    assert api.get(REPORTS, params={"reportTypes": ORDERS, "pageSize": 100}).status_code == 200
