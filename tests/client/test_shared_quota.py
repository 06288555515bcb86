"""Quota buckets shared by the fleet in Redis (sp_reports.client.shared_quota), against a real Redis on 127.0.0.1:6379:
the Lua reservation arithmetic, two OS processes on one bucket, Amazon's stated rate and 429s reaching every
process, the fallback to in-process buckets while Redis is away, and the fleet scenario against the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid

import httpx
import pytest
import redis

from quota_fleet import emulator_job, run_fleet, seed_documents
from sp_reports.client import (
    AsyncSellingPartnerClient,
    Credentials,
    SellingPartnerClient,
    SharedBuckets,
    operations,
    shared_buckets,
)
from sp_reports.emulator import testing

REDIS_URL = "redis://127.0.0.1:6379/0"
KEY = ("https://sellingpartnerapi-na.amazon.com", "amzn1.application-oa2-client.test", "f00d" * 16, "getReport", 1.0)
REPORT_PATH = "/reports/2021-06-30/reports/R1"


@pytest.fixture(scope="module")
def redis_server():
    server = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        server.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield server
    server.close()


@pytest.fixture
def prefix(redis_server):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"sp-reports-test:{uuid.uuid4().hex}:"
    yield prefix
    keys = list(redis_server.scan_iter(match=prefix + "*"))
    if keys:
        redis_server.delete(*keys)


@pytest.fixture
async def stores(prefix):
    """``stores()``: a new ``SharedBuckets`` on this test's prefix (another process's, as far as Redis can tell);
    their connections are closed afterwards."""
    made: list[SharedBuckets] = []

    def new(url: str = REDIS_URL, **kwargs) -> SharedBuckets:
        made.append(SharedBuckets(url, prefix=prefix, **kwargs))
        return made[-1]

    yield new
    for s in made:
        await s.aclose_loop()


async def waits(s: SharedBuckets, n: int, rate: float = 0.5, burst: int = 3, key=KEY) -> list[float]:
    return [(await s.reserve(key, rate, burst))[0] for _ in range(n)]


# -- the Lua reservation ---------------------------------------------------------------------------


async def test_burst_then_one_token_per_refill(stores):
    s = stores()
    assert await waits(s, 5) == pytest.approx([0, 0, 0, 2, 4], abs=0.05)
    assert (await s.reserve(KEY, 0.5, 3))[1] == 0.5  # the bucket's rate comes back with each reservation


async def test_waiters_of_every_process_queue_in_one_line(stores):
    a, b = stores(), stores()  # two processes' stores: nothing in common but Redis
    got = [(await (a if i % 2 else b).reserve(KEY, 0.5, 3))[0] for i in range(6)]
    assert got == pytest.approx([0, 0, 0, 2, 4, 6], abs=0.05)


async def test_refund_and_drain(stores):
    s = stores()
    await waits(s, 4)  # burst spent, one waiter 2 s out
    assert await s.refund(KEY, 0.5, 3)  # that waiter gave up: the next one takes its place
    assert await waits(s, 1) == pytest.approx([2], abs=0.05)
    other = ("e", "c", None, "getReportDocument", 1.0)
    assert await s.drain(other, 0.5, 3)  # a 429 on a full bucket empties it
    assert await waits(s, 1, key=other) == pytest.approx([2], abs=0.05)


async def test_a_stated_rate_applies_to_every_process_and_keeps_earned_tokens(stores):
    a, b = stores(), stores()
    await waits(a, 3, rate=1.0, burst=3)
    assert await a.set_rate(KEY, 0.25, 3)
    # b still names the operation's default rate: the stored one wins.
    wait, rate = await b.reserve(KEY, 1.0, 3)
    assert rate == 0.25 and wait == pytest.approx(4.0, abs=0.05)


async def test_keys_expire_a_little_after_a_full_refill_and_name_no_secret(stores, prefix, redis_server):
    s = stores()
    await waits(s, 4, rate=0.5, burst=3)  # tokens -1: 4 tokens short of full, 8 s
    (key,) = redis_server.scan_iter(match=prefix + "*")
    assert key.decode().startswith(prefix + "getReport:") and "f00d" not in key.decode()
    assert 8000 < redis_server.pttl(key) <= 8000 + 5000
    state = redis_server.hgetall(key)
    assert float(state[b"tokens"]) == pytest.approx(-1, abs=0.05) and float(state[b"rate"]) == 0.5


def test_two_processes_together_never_exceed_burst_plus_rate(prefix):
    rate, burst, count = 20.0, 5, 20
    job = {"mode": "reserve", "redis_url": REDIS_URL, "prefix": prefix, "key": list(KEY), "rate": rate,
           "burst": burst, "count": count}  # fmt: skip
    results = run_fleet([job, job])
    used = sorted(t for result in results for t in result["used"])
    assert len(used) == 2 * count
    start = min(result["started"] for result in results)  # no earlier than the bucket's first reservation
    for n, at in enumerate(used, 1):
        # The n-th token used at `at`: never more than the burst plus what the rate refilled since the start.
        assert n <= burst + rate * (at - start + 0.01), (n, at - start)


# -- through the client: stated rates, 429s, fallback -----------------------------------------------


async def test_the_rate_amazon_states_reaches_every_process(stores, make_client, amazon, credentials, fake):
    ok = httpx.Response(200, json={"reportId": "R1"}, headers={"x-amzn-RateLimit-Limit": "0.5"})
    amazon.route("GET", REPORT_PATH, ok)
    await make_client(quota_store=stores()).get_report("R1")
    other_process = stores()
    op = operations.GET_REPORT
    key = (f"https://{fake.SP_HOST}", credentials.client_id, credentials.refresh_token_sha256, op.name, 1.0)
    assert (await other_process.reserve(key, op.rate, op.burst - 1))[1] == 0.5


async def test_a_429_drains_the_fleets_bucket(stores, make_client, amazon, fake, sleeps, credentials):
    amazon.queue("GET", REPORT_PATH, fake.error_response(429, "QuotaExceeded", "slow down"),
                 httpx.Response(200, json={"reportId": "R1"}))  # fmt: skip
    await make_client(quota_store=stores()).get_report("R1")
    # One refill of the fleet's bucket (2/s) before the retry; the retry's token then waits another (time stands
    # still here: sleeps are instant).
    assert sleeps == [pytest.approx(0.5), pytest.approx(0.5, abs=0.05)]
    op = operations.GET_REPORT
    key = (f"https://{fake.SP_HOST}", credentials.client_id, credentials.refresh_token_sha256, op.name, 1.0)
    wait, _ = await stores().reserve(key, op.rate, op.burst - 1)
    assert wait == pytest.approx(1.0, abs=0.05)  # drained to 0, then the retry's token: another process waits


async def test_unreachable_redis_falls_back_warns_once_and_comes_back(stores, prefix, make_client, amazon, caplog,
                                                                      redis_server):  # fmt: skip
    amazon.route("GET", REPORT_PATH, httpx.Response(200, json={"reportId": "R1"}))
    port = free_port()
    now = [0.0]
    s = stores(url=f"redis://:hunter2@127.0.0.1:{port}/0", cooldown=30.0, clock=lambda: now[0])
    client = make_client(quota_store=s)
    caplog.set_level(logging.INFO, logger="sp_reports.client")

    def shared_keys() -> list[bytes]:
        return list(redis_server.scan_iter(match=prefix + "*"))

    for _ in range(3):  # nothing listens: every call still works, on the process's own bucket
        assert (await client.get_report("R1"))["reportId"] == "R1"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "Redis" in r.getMessage()]
    assert len(warnings) == 1 and f"redis://127.0.0.1:{port}/0" in warnings[0] and "hunter2" not in warnings[0]
    assert not s.available and shared_keys() == []

    async with forwarder(port):  # Redis is back at that address
        await client.get_report("R1")
        assert shared_keys() == []  # still cooling down: not even tried
        now[0] += 31
        await client.get_report("R1")
        assert len(shared_keys()) == 1 and s.available
        assert any("is back" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    caplog.clear()
    # Gone again mid-flight: that call falls back, with one new warning.
    assert (await client.get_report("R1"))["reportId"] == "R1"
    assert [r.levelno for r in caplog.records if "Redis" in r.getMessage()] == [logging.WARNING]


def test_the_sync_client_shares_too_and_closes_its_loops_connections(prefix, amazon, credentials, redis_server):
    amazon.route("GET", REPORT_PATH, httpx.Response(200, json={"reportId": "R1"}))
    s = SharedBuckets(REDIS_URL, prefix=prefix)
    with SellingPartnerClient(credentials, transport=amazon.transport, quota_store=s) as client:
        assert client.get_report("R1")["reportId"] == "R1" and client.get_report("R1")["reportId"] == "R1"
        assert len(list(redis_server.scan_iter(match=prefix + "*"))) == 1
    assert s._by_loop == {}  # its private loop's Redis client went with the loop


async def test_one_store_per_url_per_process():
    assert shared_buckets(None) is None
    assert shared_buckets("redis://127.0.0.1:6379/9") is shared_buckets("redis://127.0.0.1:6379/9")
    with pytest.raises(TypeError):
        AsyncSellingPartnerClient(Credentials("a", "b", "c"), quota_store="redis://x")


# -- the fleet scenario against the emulator ---------------------------------------------------------

SPEED = 200.0
DOCUMENTS = 20


@pytest.fixture(autouse=False)
def real_time(monkeypatch):
    """The emulator runs on the wall clock: undo the conftest's instant sleeps."""
    from sp_reports.client import retry as retry_module

    monkeypatch.undo()
    return retry_module


@pytest.fixture(scope="module")
def emulator():
    with testing.running_emulator(speed=SPEED, processing_seconds=2.0, seed=11) as emu:
        yield emu


@pytest.mark.parametrize("one_store", [True, False], ids=["redis", "per-process"])
def test_two_workers_fetching_documents_together(emulator, prefix, real_time, one_store):
    """Two processes download 20 documents together at getReportDocument's real quota (rate 0.0167/s, burst 15)
    scaled by the emulator's speed: with buckets in Redis Amazon never says 429; each process with its own does."""
    documents = seed_documents(emulator, DOCUMENTS, SPEED)
    jobs = [
        emulator_job(emulator, SPEED, mode="fetch", redis_url=REDIS_URL if one_store else None, prefix=prefix, document_ids=half)
        for half in (documents[::2], documents[1::2])
    ]
    assert run_fleet(jobs) == [DOCUMENTS // 2, DOCUMENTS // 2]
    statuses = emulator.stats()["by_operation_status"]["getReportDocument"]
    print(f"fleet scenario, {'Redis' if one_store else 'per-process'} buckets: getReportDocument {statuses}")
    assert statuses["200"] == DOCUMENTS
    if one_store:
        assert statuses.get("429", 0) == 0
    else:
        assert statuses.get("429", 0) > 0


# -- helpers ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def forwarder(port: int, target: tuple[str, int] = ("127.0.0.1", 6379)):
    """A Redis at 127.0.0.1:``port`` for as long as the block runs (a TCP relay to the real one); leaving the block
    closes it and every connection through it, as a Redis that went away would."""
    writers: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*target)
        writers.extend((writer, up_writer))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(relay, "127.0.0.1", port, reuse_address=True)
    try:
        yield
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()
