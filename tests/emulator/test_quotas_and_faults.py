"""Usage-plan token buckets, the speed factor, and injected 429/5xx faults."""

from __future__ import annotations

import time

import pytest

from sp_reports.emulator.quotas import OPERATION_QUOTAS

REPORTS = "/reports/2021-06-30/reports"
US = "ATVPDKIKX0DER"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
MISSING_REPORT = f"{REPORTS}/10000000000"


def test_documented_usage_plans():
    assert OPERATION_QUOTAS == {
        "getReports": (0.0222, 10),
        "createReport": (0.0167, 15),
        "cancelReport": (0.0222, 10),
        "getReport": (2.0, 15),
        "getReportSchedules": (0.0222, 10),
        "createReportSchedule": (0.0222, 10),
        "cancelReportSchedule": (0.0222, 10),
        "getReportSchedule": (0.0222, 10),
        "getReportDocument": (0.0167, 15),
    }


def test_create_report_burst_then_429(api, model):
    body = {"reportType": ORDERS, "marketplaceIds": [US]}
    statuses = [api.post(REPORTS, json=body).status_code for _ in range(15)]
    assert statuses == [202] * 15
    response = api.post(REPORTS, json=body)
    error = model.validate("createReport", response)["errors"][0]
    assert response.status_code == 429
    assert (error["code"], error["message"]) == ("QuotaExceeded", "You exceeded your quota for the requested resource.")
    assert "x-amzn-RateLimit-Limit" not in response.headers  # the model declares it only for 200/400/404


def test_get_reports_burst_of_10(api, model):
    statuses = [api.get(REPORTS, params={"reportTypes": ORDERS}).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]


def test_invalid_calls_consume_quota_too(api):
    statuses = [api.get(REPORTS).status_code for _ in range(11)]  # missing reportTypes
    assert statuses == [400] * 10 + [429]


def test_buckets_are_per_operation(api):
    for _ in range(10):
        api.get(REPORTS, params={"reportTypes": ORDERS})
    assert api.get(REPORTS, params={"reportTypes": ORDERS}).status_code == 429
    assert api.get(MISSING_REPORT).status_code == 404


def test_refill_at_documented_rate(api):
    # getReport refills 2 tokens per second at speed 1; the burst of 15 lasts until about the 16th call.
    statuses = []
    while 429 not in statuses:
        statuses.append(api.get(MISSING_REPORT).status_code)
        assert len(statuses) <= 20
    assert statuses.count(404) >= 15
    time.sleep(0.55)
    assert api.get(MISSING_REPORT).status_code == 404
    assert api.get(MISSING_REPORT).status_code == 429


def test_refill_scales_with_speed(emulator, api):
    for _ in range(10):
        api.get(REPORTS, params={"reportTypes": ORDERS})
    assert api.get(REPORTS, params={"reportTypes": ORDERS}).status_code == 429
    emulator.config(speed=100)  # 0.0222/s becomes 2.22/s
    time.sleep(0.5)
    response = api.get(REPORTS, params={"reportTypes": ORDERS})
    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "2.22"


def test_quotas_can_be_disabled(emulator, api):
    emulator.config(enforce_quotas=False)
    assert {api.get(REPORTS, params={"reportTypes": ORDERS}).status_code for _ in range(30)} == {200}


def test_injected_429s(emulator, api, model):
    emulator.config(rate_429=1.0)
    response = api.get(MISSING_REPORT)
    assert response.status_code == 429
    assert model.validate("getReport", response)["errors"][0]["code"] == "QuotaExceeded"
    emulator.config(rate_429=0.5, enforce_quotas=False)
    statuses = [api.get(MISSING_REPORT).status_code for _ in range(40)]
    assert 5 < statuses.count(429) < 35 and statuses.count(404) == 40 - statuses.count(429)


def test_injected_5xx(emulator, api, model):
    emulator.config(rate_5xx=1.0)
    seen = {}
    for _ in range(20):
        response = api.get(MISSING_REPORT)
        seen[response.status_code] = model.validate("getReport", response)["errors"][0]["code"]
    assert seen == {500: "InternalFailure", 503: "ServiceUnavailable"}


def test_faults_are_reproducible_with_the_seed(emulator, api):
    def sequence():
        emulator.reset()
        emulator.config(rate_429=0.5, enforce_quotas=False)
        return [api.get(MISSING_REPORT).status_code for _ in range(20)]

    assert sequence() == sequence()


@pytest.mark.parametrize("operation, call", [("getReport", "get"), ("cancelReport", "delete")])
def test_rate_limit_header_matches_usage_plan(api, operation, call):
    response = getattr(api, call)(MISSING_REPORT)
    assert float(response.headers["x-amzn-RateLimit-Limit"]) == OPERATION_QUOTAS[operation][0]
