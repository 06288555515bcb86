"""Token bucket arithmetic (injectable clock) and how the client waits on it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sp_reports.client import TokenBucket, operations
from sp_reports.client.ratelimit import rate_from_headers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_waits_at_rate():
    clock = Clock()
    bucket = TokenBucket(rate=0.5, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    # Empty: reservations queue up, each one refill (2 s) behind the previous one.
    assert bucket.reserve() == pytest.approx(2.0)
    assert bucket.reserve() == pytest.approx(4.0)
    clock.now += 4.0
    assert bucket.tokens == pytest.approx(0.0)
    assert bucket.reserve() == pytest.approx(2.0)


def test_refill_caps_at_burst():
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=15, clock=clock)
    for _ in range(15):
        bucket.reserve()
    clock.now += 3.0
    assert bucket.tokens == pytest.approx(6.0)
    clock.now += 1000
    assert bucket.tokens == 15


def test_set_rate_keeps_tokens_earned_at_the_old_rate():
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=10, clock=clock)
    for _ in range(10):
        bucket.reserve()
    clock.now += 2.0  # 2 tokens at 1/s
    bucket.set_rate(0.1)
    clock.now += 10.0  # 1 more token at 0.1/s
    assert bucket.tokens == pytest.approx(3.0)
    assert bucket.refill_time == pytest.approx(10.0)


def test_drain_and_refund():
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=5, clock=clock)
    bucket.drain()
    assert bucket.tokens == 0
    assert bucket.reserve() == pytest.approx(1.0)
    bucket.refund()
    assert bucket.tokens == pytest.approx(0.0)
    assert bucket.reserve() == pytest.approx(1.0)


def test_rate_header_parsing():
    assert rate_from_headers(httpx.Headers({"x-amzn-RateLimit-Limit": "0.0167"})) == 0.0167
    for bad in ("", "abc", "0", "-1", "inf"):
        assert rate_from_headers(httpx.Headers({"x-amzn-RateLimit-Limit": bad})) is None
    assert rate_from_headers(httpx.Headers()) is None


def test_documented_quotas():
    quotas = {op.name: (op.rate, op.burst) for op in operations.ALL_OPERATIONS}
    assert quotas == {
        "getReports": (0.0222, 10),
        "createReport": (0.0167, 15),
        "getReport": (2.0, 15),
        "cancelReport": (0.0222, 10),
        "getReportSchedules": (0.0222, 10),
        "createReportSchedule": (0.0222, 10),
        "getReportSchedule": (0.0222, 10),
        "cancelReportSchedule": (0.0222, 10),
        "getReportDocument": (0.0167, 15),
        "createRestrictedDataToken": (1.0, 10),
    }


async def test_client_waits_for_tokens_and_buckets_are_process_wide(amazon, make_client, credentials, sleeps):
    amazon.route("POST", "/reports/2021-06-30/reports", httpx.Response(202, json={"reportId": "R"}))
    a, b = make_client(), make_client()
    for client in (a, b, a):  # 3 clients' calls drain one shared createReport bucket (burst 15, 1 kept spare)
        for _ in range(5):
            await client.create_report("GET_X", ["M1"])
    assert sleeps == [pytest.approx(1 / 0.0167, rel=1e-3)]
    sleeps.clear()
    await b.create_report("GET_X", ["M1"])
    assert sleeps == [pytest.approx(1 / 0.0167, rel=1e-3)]

    from sp_reports.client import Credentials

    other_app = make_client(credentials=Credentials("another-client-id", "s", "r"))
    await other_app.create_report("GET_X", ["M1"])  # another application: its own bucket
    assert len(sleeps) == 1


async def test_buckets_are_per_application_selling_partner_and_operation(amazon, make_client, credentials, sleeps):
    """As Amazon meters them: two sellers of one application do not throttle each other; one seller's clients
    share; grantless operations (the application's own) share one bucket whoever the seller is."""
    from dataclasses import replace

    amazon.route("POST", "/reports/2021-06-30/reports", httpx.Response(202, json={"reportId": "R"}))
    seller_a, seller_a_again = make_client(), make_client()
    seller_b = make_client(credentials=replace(credentials, refresh_token="Atzr|another-sellers-authorization"))
    for _ in range(14):  # seller A's createReport burst (15, one kept spare)
        await seller_a.create_report("GET_X", ["M1"])
    for _ in range(14):
        await seller_b.create_report("GET_X", ["M1"])
    assert sleeps == []  # B had a bucket of its own
    await seller_a_again.create_report("GET_X", ["M1"])
    assert sleeps == [pytest.approx(1 / 0.0167, rel=1e-3)]  # the same seller: A's empty bucket

    grantless = operations.GET_DESTINATIONS
    assert grantless.grantless_scope
    assert seller_a._api.bucket(grantless) is seller_b._api.bucket(grantless)
    assert seller_a._api.bucket(operations.GET_REPORT) is not seller_b._api.bucket(operations.GET_REPORT)
    assert seller_a._api.bucket(operations.GET_REPORT) is seller_a_again._api.bucket(operations.GET_REPORT)


async def test_waiters_queue_in_order(amazon, make_client, sleeps, monkeypatch):
    from sp_reports.client import BUCKETS

    monkeypatch.setattr(BUCKETS, "clock", lambda: 0.0)  # all callers arrive at the same instant
    amazon.route("GET", "/reports/2021-06-30/reports/R1", httpx.Response(200, json={}))
    client = make_client()
    await asyncio.gather(*(client.get_report("R1") for _ in range(18)))  # burst 15 (1 kept spare), rate 2/s
    assert sorted(sleeps) == pytest.approx([0.5, 1.0, 1.5, 2.0])


async def test_cancelled_waiter_returns_its_token(amazon, make_client, monkeypatch):
    from sp_reports.client import retry

    async def never(seconds):
        await asyncio.Event().wait()

    monkeypatch.setattr(retry, "sleep", never)
    client = make_client()
    bucket = client._api.bucket(operations.CREATE_REPORT)
    for _ in range(bucket.burst):
        bucket.reserve()
    before = bucket.tokens
    task = asyncio.create_task(client.create_report("GET_X", ["M1"]))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bucket.tokens == pytest.approx(before, abs=0.01)
