"""The nine Reports 2021-06-30 operations: request shapes, results, client-side validation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

BASE = "/reports/2021-06-30"
REPORT = {"reportId": "R1", "reportType": "GET_X", "processingStatus": "IN_QUEUE", "createdTime": "2024-01-01T00:00:00Z"}
SCHEDULE = {"reportScheduleId": "S1", "reportType": "GET_X", "period": "P1D"}


def only(requests):
    (request,) = requests
    return request


async def test_create_report(amazon, client, fake):
    amazon.route("POST", f"{BASE}/reports", httpx.Response(202, json={"reportId": "R1"}))
    report_id = await client.create_report(
        "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"],
        data_start_time=datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))),
        data_end_time="2024-01-02T00:00:00Z",
        report_options={"reportPeriod": "DAY"},
    )
    assert report_id == "R1"
    request = only(amazon.api_requests)
    assert (request.method, request.url.path, request.url.query) == ("POST", f"{BASE}/reports", b"")
    assert request.headers["content-type"] == "application/json"
    assert fake.body_of(request) == {
        "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        "marketplaceIds": ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"],
        "dataStartTime": "2024-01-01T00:00:00Z",  # converted to UTC
        "dataEndTime": "2024-01-02T00:00:00Z",  # a string is sent as given
        "reportOptions": {"reportPeriod": "DAY"},
    }


async def test_create_report_minimal_body(amazon, client, fake):
    amazon.route("POST", f"{BASE}/reports", httpx.Response(202, json={"reportId": "R9"}))
    assert await client.create_report("GET_X", ["M1"]) == "R9"
    assert fake.body_of(only(amazon.api_requests)) == {"reportType": "GET_X", "marketplaceIds": ["M1"]}


async def test_get_report(amazon, client):
    amazon.route("GET", f"{BASE}/reports/R1", httpx.Response(200, json=REPORT))
    assert await client.get_report("R1") == REPORT
    assert only(amazon.api_requests).method == "GET"


async def test_path_parameters_are_quoted(amazon, client):
    amazon.route("GET", f"{BASE}/reports/a/b?c", httpx.Response(200, json=REPORT))
    await client.get_report("a/b?c")
    assert only(amazon.api_requests).url.raw_path == f"{BASE}/reports/a%2Fb%3Fc".encode()


async def test_get_reports_filters(amazon, client):
    page = {"reports": [REPORT], "nextToken": "NT"}
    amazon.route("GET", f"{BASE}/reports", httpx.Response(200, json=page))
    result = await client.get_reports(
        report_types=["A", "B"],
        processing_statuses=["DONE", "FATAL"],
        marketplace_ids=["M1", "M2"],
        page_size=100,
        created_since=datetime(2024, 1, 1, tzinfo=timezone.utc),
        created_until="2024-01-05T00:00:00+00:00",
    )
    assert result == page
    params = only(amazon.api_requests).url.params
    assert dict(params) == {
        "reportTypes": "A,B",  # SP-API arrays are comma-separated, not repeated keys
        "processingStatuses": "DONE,FATAL",
        "marketplaceIds": "M1,M2",
        "pageSize": "100",
        "createdSince": "2024-01-01T00:00:00Z",
        "createdUntil": "2024-01-05T00:00:00+00:00",
    }
    assert len(params.get_list("reportTypes")) == 1


async def test_get_reports_next_token_alone(amazon, client):
    amazon.route("GET", f"{BASE}/reports", httpx.Response(200, json={"reports": []}))
    await client.get_reports(next_token="abc+/=")
    assert dict(only(amazon.api_requests).url.params) == {"nextToken": "abc+/="}


async def test_cancel_report(amazon, client):
    amazon.route("DELETE", f"{BASE}/reports/R1", httpx.Response(200))
    assert await client.cancel_report("R1") is None
    assert only(amazon.api_requests).method == "DELETE"


async def test_get_report_schedules(amazon, client):
    amazon.route("GET", f"{BASE}/schedules", httpx.Response(200, json={"reportSchedules": [SCHEDULE]}))
    assert await client.get_report_schedules(["GET_X", "GET_Y"]) == {"reportSchedules": [SCHEDULE]}
    assert dict(only(amazon.api_requests).url.params) == {"reportTypes": "GET_X,GET_Y"}


async def test_create_report_schedule(amazon, client, fake):
    amazon.route("POST", f"{BASE}/schedules", httpx.Response(201, json={"reportScheduleId": "S1"}))
    schedule_id = await client.create_report_schedule(
        "GET_X", ["M1"], "PT12H", report_options={"a": "b"},
        next_report_creation_time=datetime(2024, 3, 1, 12, tzinfo=timezone.utc),
    )
    assert schedule_id == "S1"
    assert fake.body_of(only(amazon.api_requests)) == {
        "reportType": "GET_X", "marketplaceIds": ["M1"], "period": "PT12H",
        "reportOptions": {"a": "b"}, "nextReportCreationTime": "2024-03-01T12:00:00Z",
    }


async def test_get_report_schedule(amazon, client):
    amazon.route("GET", f"{BASE}/schedules/S1", httpx.Response(200, json=SCHEDULE))
    assert await client.get_report_schedule("S1") == SCHEDULE


async def test_cancel_report_schedule(amazon, client):
    amazon.route("DELETE", f"{BASE}/schedules/S1", httpx.Response(200))
    assert await client.cancel_report_schedule("S1") is None
    request = only(amazon.api_requests)
    assert (request.method, request.url.path) == ("DELETE", f"{BASE}/schedules/S1")


async def test_get_report_document(amazon, client):
    doc = {"reportDocumentId": "D1", "url": "https://example.com/x?sig=1", "compressionAlgorithm": "GZIP"}
    amazon.route("GET", f"{BASE}/documents/D1", httpx.Response(200, json=doc))
    assert await client.get_report_document("D1") == doc
    assert only(amazon.api_requests).url.query == b""


async def test_region_and_endpoint(amazon, make_client):
    seen = []

    async def handler(request):
        seen.append(request.url.host if request.url.host != "api.amazon.com" else None)
        return await amazon.handle(request)

    amazon.route("GET", f"{BASE}/reports/R1", httpx.Response(200, json=REPORT))
    await make_client(region="eu", transport=httpx.MockTransport(handler)).get_report("R1")
    await make_client(endpoint="http://127.0.0.1:8123/", transport=httpx.MockTransport(handler)).get_report("R1")
    assert [h for h in seen if h] == ["sellingpartnerapi-eu.amazon.com", "127.0.0.1"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.create_report("GET_X", []), "marketplace_ids must have between 1 and 25"),
        (lambda c: c.create_report("GET_X", "ATVPDKIKX0DER"), "marketplace_ids must be a list"),
        (lambda c: c.create_report("", ["M1"]), "report_type must be a non-empty string"),
        (lambda c: c.create_report("GET_X", ["M1"], data_start_time=datetime(2024, 1, 1)), "timezone-aware"),
        (lambda c: c.create_report("GET_X", ["M1"], data_start_time="2024-01-01T00:00:00"), "UTC offset"),
        (lambda c: c.create_report("GET_X", ["M1"], data_start_time="yesterday"), "ISO 8601"),
        (lambda c: c.create_report("GET_X", ["M1"], data_start_time="2024-01-02T00:00:00Z",
                                   data_end_time="2024-01-01T00:00:00Z"), "is after data_end_time"),
        (lambda c: c.create_report("GET_X", ["M1"], report_options={"days": 3}), "strings to strings"),
        (lambda c: c.get_reports(report_types=[f"T{i}" for i in range(11)]), "between 1 and 10"),
        (lambda c: c.get_reports(report_types=[]), "between 1 and 10"),
        (lambda c: c.get_reports(report_types=["A,B"]), "without commas"),
        (lambda c: c.get_reports(report_types=["A"], page_size=0), "page_size"),
        (lambda c: c.get_reports(report_types=["A"], page_size=101), "page_size"),
        (lambda c: c.get_reports(report_types=["A"], page_size=True), "page_size"),
        (lambda c: c.get_reports(report_types=["A"], processing_statuses=["DONE_NO_DATA"]), "processing_statuses"),
        (lambda c: c.get_reports(report_types=["A"], marketplace_ids=[]), "marketplace_ids"),
        (lambda c: c.get_reports(report_types=["A"], next_token="t"), "next_token must be the only argument"),
        (lambda c: c.get_reports(page_size=5, next_token="t"), "page_size"),
        (lambda c: c.get_reports(page_size=5), "needs report_types"),
        (lambda c: c.get_reports(report_types=["A"], created_since=datetime(2024, 1, 1)), "timezone-aware"),
        (lambda c: c.get_report_schedules([]), "between 1 and 10"),
        (lambda c: c.create_report_schedule("GET_X", ["M1"], "P2W"), "period must be one of"),
        (lambda c: c.create_report_schedule("GET_X", ["M1"], "P1D", next_report_creation_time=datetime(2024, 1, 1)),
         "timezone-aware"),
        (lambda c: c.get_report(""), "report_id"),
        (lambda c: c.cancel_report(None), "report_id"),
        (lambda c: c.get_report_schedule(" "), "schedule_id"),
        (lambda c: c.get_report_document(""), "document_id"),
    ],
)
async def test_bad_input_fails_before_any_request(amazon, client, call, message):
    with pytest.raises(ValueError, match=message):
        await call(client)
    assert amazon.requests == []


def test_bad_constructor_arguments(credentials):
    from sp_reports.client import AsyncSellingPartnerClient

    with pytest.raises(ValueError, match="region"):
        AsyncSellingPartnerClient(credentials, region="XX")
    with pytest.raises(ValueError, match="endpoint"):
        AsyncSellingPartnerClient(credentials, endpoint="sellingpartnerapi-na.amazon.com")
    with pytest.raises(ValueError, match="max_attempts"):
        AsyncSellingPartnerClient(credentials, max_attempts=0)
    with pytest.raises(ValueError, match="scale_quotas"):
        AsyncSellingPartnerClient(credentials, scale_quotas=0)
