"""One retry path for every operation: 429, 5xx, network errors, createReport's unknown outcome,
and the typed errors built from Amazon's ErrorList."""

from __future__ import annotations

import logging
import pickle
import random

import httpx
import pytest

from sp_reports.client import (
    InvalidInputError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    QuotaExceededError,
    SellingPartnerError,
    ServerError,
    operations,
)

BASE = "/reports/2021-06-30"
REPORT = {"reportId": "R1", "reportType": "T", "processingStatus": "DONE", "createdTime": "2024-01-01T00:00:00Z"}
GET_R1 = ("GET", f"{BASE}/reports/R1")
CREATE = ("POST", f"{BASE}/reports")


async def test_429_honours_retry_after_and_logs(amazon, client, sleeps, caplog, fake):
    caplog.set_level(logging.WARNING, logger="sp_reports.client")
    amazon.queue(*GET_R1, fake.error_response(429, "QuotaExceeded", "You exceeded your quota", **{"Retry-After": "3"}),
                 httpx.Response(200, json=REPORT))
    assert await client.get_report("R1") == REPORT
    assert 3.0 in sleeps
    (record,) = [r for r in caplog.records if r.name == "sp_reports.client"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "getReport: HTTP 429 on attempt 1/6; retrying in 3.00s"


async def test_429_without_retry_after_waits_one_refill(amazon, client, sleeps, fake):
    amazon.queue(*GET_R1, fake.error_response(429, "QuotaExceeded", "slow down"), httpx.Response(200, json=REPORT))
    await client.get_report("R1")
    assert sleeps == [pytest.approx(1 / 2.0)]  # getReport's documented rate is 2/s
    # Amazon's bucket was empty, so ours was drained too (one refill then one use: back near 0).
    assert client._api.bucket(operations.GET_REPORT).tokens < 1


async def test_429_on_every_attempt_raises_quota_exceeded(amazon, make_client, fake):
    client = make_client(max_attempts=3)
    amazon.route(*GET_R1, fake.error_response(429, "QuotaExceeded", "You exceeded your quota for the requested resource.",
                                              **{"x-amzn-RequestId": "req-429"}))
    with pytest.raises(QuotaExceededError) as info:
        await client.get_report("R1")
    assert len(amazon.api_requests) == 3
    assert info.value.request_id == "req-429"


async def test_5xx_backoff_is_bounded_full_jitter(amazon, make_client, sleeps):
    client = make_client(max_attempts=6, backoff_base=1.0, backoff_cap=5.0)
    client._policy.rng = random.Random(7)
    amazon.route(*GET_R1, httpx.Response(503, json={"errors": [{"code": "ServiceUnavailable", "message": "busy"}]}))
    with pytest.raises(ServerError) as info:
        await client.get_report("R1")
    assert info.value.status == 503 and info.value.code == "ServiceUnavailable"
    assert len(amazon.api_requests) == 6
    assert len(sleeps) == 5
    ceilings = [1.0, 2.0, 4.0, 5.0, 5.0]  # base * 2**(n-1), capped
    assert all(0 <= s <= c for s, c in zip(sleeps, ceilings))
    assert len(set(sleeps)) == 5 and sleeps != ceilings  # jittered, not fixed


def test_backoff_ceiling_distribution():
    from sp_reports.client.retry import RetryPolicy

    policy = RetryPolicy(max_attempts=10, backoff_base=0.5, backoff_cap=30.0, rng=random.Random(1))
    samples = [policy.backoff(8) for _ in range(2000)]  # ceiling min(30, 0.5 * 128) = 30
    assert max(samples) <= 30.0 and min(samples) >= 0.0
    assert 13 < sum(samples) / len(samples) < 17  # uniform over [0, 30]


async def test_5xx_then_success(amazon, client, sleeps):
    amazon.queue(*GET_R1, httpx.Response(500), httpx.Response(502, text="<html>bad gateway</html>"),
                 httpx.Response(200, json=REPORT))
    assert await client.get_report("R1") == REPORT
    assert len(sleeps) == 2


async def test_network_errors_are_retried_for_reads(amazon, client, sleeps):
    amazon.queue(*GET_R1, httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("reset"),
                 httpx.Response(200, json=REPORT))
    assert await client.get_report("R1") == REPORT
    assert len(sleeps) == 2


async def test_network_errors_exhausted(amazon, make_client):
    client = make_client(max_attempts=2)
    amazon.route(*GET_R1, httpx.ConnectError("connection refused"))
    with pytest.raises(NetworkError) as info:
        await client.get_report("R1")
    assert info.value.status is None and info.value.code == "ConnectError"
    assert str(info.value) == "getReport failed: ConnectError: connection refused (after 2 attempts)"


async def test_create_report_not_resent_when_outcome_unknown(amazon, client, sleeps):
    amazon.queue(*CREATE, httpx.ReadTimeout("timed out"), httpx.Response(202, json={"reportId": "R2"}))
    with pytest.raises(OutcomeUnknownError) as info:
        await client.create_report("GET_X", ["M1"])
    assert len(amazon.api_requests) == 1  # never resent
    assert sleeps == []
    assert "may or may not have accepted it" in str(info.value)
    assert isinstance(info.value, NetworkError)


async def test_create_report_retried_when_not_accepted(amazon, client, fake):
    # 429 and 5xx are answers: Amazon did not accept the request, so resending is safe.
    # A connect error means the request never left.
    amazon.queue(*CREATE, fake.error_response(429, "QuotaExceeded", "slow"), httpx.Response(503),
                 httpx.ConnectError("refused"), httpx.Response(202, json={"reportId": "R2"}))
    assert await client.create_report("GET_X", ["M1"]) == "R2"
    assert len(amazon.api_requests) == 4


async def test_error_list_parsing(amazon, client, fake):
    amazon.queue(*CREATE, httpx.Response(400, headers={"x-amzn-RequestId": "abc-123"}, json={"errors": [
        {"code": "InvalidInput", "message": "Invalid reportType", "details": "GET_NOPE"},
        {"code": "InvalidInput", "message": "second"},
    ]}))
    with pytest.raises(InvalidInputError) as info:
        await client.create_report("GET_NOPE", ["M1"])
    err = info.value
    assert (err.status, err.code, err.message, err.operation, err.request_id, err.details) == (
        400, "InvalidInput", "Invalid reportType", "createReport", "abc-123", "GET_NOPE"
    )
    assert len(err.errors) == 2
    assert str(err) == "createReport failed: HTTP 400 InvalidInput: Invalid reportType [GET_NOPE] (request id abc-123)"
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is InvalidInputError and str(clone) == str(err) and clone.errors == err.errors


async def test_not_found(amazon, client, fake):
    amazon.queue(*GET_R1, fake.error_response(404, "NotFound", "Report not found"))
    with pytest.raises(NotFoundError, match="getReport failed: HTTP 404 NotFound: Report not found"):
        await client.get_report("R1")


async def test_other_status_and_non_json_body(amazon, make_client):
    client = make_client(max_attempts=1)
    amazon.queue(*GET_R1, httpx.Response(415, text="nope"))
    with pytest.raises(SellingPartnerError) as info:
        await client.get_report("R1")
    assert type(info.value) is SellingPartnerError
    assert str(info.value) == "getReport failed: HTTP 415: Unsupported Media Type"
    amazon.queue(*GET_R1, httpx.Response(502, text="<html>secret stuff</html>"))
    with pytest.raises(ServerError, match="HTTP 502: Bad Gateway$"):
        await client.get_report("R1")


async def test_rate_limit_header_adjusts_bucket(amazon, client):
    amazon.route(*GET_R1, httpx.Response(200, json=REPORT, headers={"x-amzn-RateLimit-Limit": "0.5"}))
    bucket = client._api.bucket(operations.GET_REPORT)
    assert bucket.rate == 2.0
    await client.get_report("R1")
    assert bucket.rate == 0.5


async def test_scale_quotas_multiplies_documented_rates(make_client):
    fast = make_client(scale_quotas=100)
    normal = make_client()
    assert fast._api.bucket(operations.CREATE_REPORT).rate == pytest.approx(1.67)
    assert normal._api.bucket(operations.CREATE_REPORT).rate == pytest.approx(0.0167)
