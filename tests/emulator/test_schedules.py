"""Report schedules: create, read, list, replace, cancel, and the reports they create."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

SCHEDULES = "/reports/2021-06-30/schedules"
REPORTS = "/reports/2021-06-30/reports"
US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"
INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"


def _create(api, model, **fields):
    body = {"reportType": INVENTORY, "marketplaceIds": [US], "period": "P1D", **fields}
    response = api.post(SCHEDULES, json=body)
    created = model.validate("createReportSchedule", response)
    assert response.status_code == 201, response.text
    assert "x-amzn-RateLimit-Limit" in response.headers
    return created["reportScheduleId"]


def test_create_and_get_schedule(api, model):
    schedule_id = _create(api, model, reportOptions={"custom": "true"})
    assert api.get(f"{SCHEDULES}/{schedule_id}").headers["x-amzn-RateLimit-Limit"] == "0.0222"
    response = api.get(f"{SCHEDULES}/{schedule_id}")
    schedule = model.validate("getReportSchedule", response)
    assert response.status_code == 200
    assert schedule["reportScheduleId"] == schedule_id
    assert (schedule["reportType"], schedule["marketplaceIds"], schedule["period"]) == (INVENTORY, [US], "P1D")
    assert schedule["reportOptions"] == {"custom": "true"}
    next_creation = datetime.fromisoformat(schedule["nextReportCreationTime"])
    expected = datetime.now(timezone.utc) + timedelta(days=1)
    assert abs((next_creation - expected).total_seconds()) < 5


def test_get_report_schedules_filters_by_type(api, model):
    inventory = _create(api, model)
    listings = _create(api, model, reportType=LISTINGS, marketplaceIds=[DE])
    response = api.get(SCHEDULES, params={"reportTypes": INVENTORY})
    body = model.validate("getReportSchedules", response)
    assert [s["reportScheduleId"] for s in body["reportSchedules"]] == [inventory]
    body = model.validate("getReportSchedules", api.get(SCHEDULES, params={"reportTypes": f"{INVENTORY},{LISTINGS}"}))
    assert {s["reportScheduleId"] for s in body["reportSchedules"]} == {inventory, listings}
    body = model.validate("getReportSchedules", api.get(SCHEDULES, params={"reportTypes": "GET_AFN_INVENTORY_DATA"}))
    assert body == {"reportSchedules": []}


def test_same_type_and_marketplaces_replaces_schedule(api, model):
    old = _create(api, model, marketplaceIds=[US, DE])
    other_marketplace = _create(api, model, marketplaceIds=[US])
    new = _create(api, model, marketplaceIds=[DE, US], period="PT12H")
    assert api.get(f"{SCHEDULES}/{old}").status_code == 404
    assert api.get(f"{SCHEDULES}/{new}").json()["period"] == "PT12H"
    assert api.get(f"{SCHEDULES}/{other_marketplace}").status_code == 200


def test_cancel_schedule(api, model):
    schedule_id = _create(api, model)
    response = api.delete(f"{SCHEDULES}/{schedule_id}")
    model.validate("cancelReportSchedule", response)
    assert response.status_code == 200 and response.content == b""
    response = api.get(f"{SCHEDULES}/{schedule_id}")
    assert (response.status_code, model.validate("getReportSchedule", response)["errors"][0]["code"]) == (404, "NotFound")
    response = api.delete(f"{SCHEDULES}/{schedule_id}")
    assert (response.status_code, model.validate("cancelReportSchedule", response)["errors"][0]["code"]) == (404, "NotFound")


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"reportType": INVENTORY, "marketplaceIds": [US]}, "period"),
        ({"reportType": INVENTORY, "marketplaceIds": [US], "period": "P2W"}, "period"),
        ({"reportType": INVENTORY, "period": "P1D"}, "marketplaceIds"),
        ({"reportType": INVENTORY, "marketplaceIds": [US] * 26, "period": "P1D"}, "marketplaceIds"),
        ({"marketplaceIds": [US], "period": "P1D"}, "reportType"),
        ({"reportType": INVENTORY, "marketplaceIds": [US], "period": "P1D", "nextReportCreationTime": "soon"}, "nextReportCreationTime"),
    ],
)  # fmt: skip
def test_create_schedule_rejects_invalid_input(api, model, body, detail):
    response = api.post(SCHEDULES, json=body)
    error = model.validate("createReportSchedule", response)["errors"][0]
    assert response.status_code == 400 and detail in error["message"]


def test_schedule_errors(api, model):
    for params in ({}, {"reportTypes": ",".join([INVENTORY] * 11)}, {"reportTypes": "NOT_A_TYPE"}):
        response = api.get(SCHEDULES, params=params)
        assert (response.status_code, model.validate("getReportSchedules", response)["errors"][0]["code"]) == (400, "InvalidInput")
    response = api.get(f"{SCHEDULES}/badReportId1")
    assert model.validate("getReportSchedule", response) and response.status_code == 400


def test_schedule_creates_reports_each_period(emulator, api, model):
    emulator.config(speed=600, enforce_quotas=False, processing_seconds=0)  # PT5M every 0.5 s
    start = datetime.now(timezone.utc)
    schedule_id = _create(api, model, period="PT5M", nextReportCreationTime=start.isoformat())

    def scheduled_reports():
        body = model.validate("getReports", api.get(REPORTS, params={"reportTypes": INVENTORY}))
        return body["reports"] if len(body["reports"]) >= 2 else None

    deadline = time.monotonic() + 3
    while not (reports := scheduled_reports()):
        assert time.monotonic() < deadline, "schedule created fewer than two reports"
        time.sleep(0.05)
    assert all(r["reportScheduleId"] == schedule_id for r in reports)
    assert all(r["processingStatus"] == "DONE" for r in reports)
    # Each scheduled report covers the period before its creation.
    for report in reports:
        span = datetime.fromisoformat(report["dataEndTime"]) - datetime.fromisoformat(report["dataStartTime"])
        assert span == timedelta(minutes=5)
    next_creation = datetime.fromisoformat(api.get(f"{SCHEDULES}/{schedule_id}").json()["nextReportCreationTime"])
    assert next_creation > start


def test_schedule_far_in_the_past_catches_up_only_ten_reports(emulator, api, model):
    emulator.config(enforce_quotas=False)
    _create(api, model, period="PT5M", nextReportCreationTime="2024-03-10T20:11:24.000Z")
    body = api.get(REPORTS, params={"reportTypes": INVENTORY, "pageSize": 100}).json()
    assert len(body["reports"]) == 10
