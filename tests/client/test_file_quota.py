"""Quota buckets shared by one machine's processes in files (sp_reports.client.file_quota): the reservation
arithmetic, an unusable file or folder, OS processes sharing a folder against the emulator, and quota reserved in
one process for a createReport another process sends."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import statistics
import time

import httpx
import pytest

from quota_fleet import emulator_job, finish_fleet, run_fleet, seed_documents, start_fleet
from sp_reports.client import FileBuckets, file_buckets, operations
from sp_reports.client.file_quota import RECORD_SIZE
from sp_reports.emulator import testing

KEY = ("https://sellingpartnerapi-na.amazon.com", "amzn1.application-oa2-client.test", "f00d" * 16, "getReport", 1.0)
REPORT_PATH = "/reports/2021-06-30/reports/R1"


@pytest.fixture
def stores(tmp_path, clock):
    """``stores()``: a new ``FileBuckets`` on this test's folder (another process's, as far as the files tell), on
    the conftest's virtual clock."""

    def new(**kwargs) -> FileBuckets:
        kwargs.setdefault("clock", clock)
        return FileBuckets(tmp_path / "quota", **kwargs)

    return new


async def waits(s: FileBuckets, n: int, rate: float = 0.5, burst: int = 3, key=KEY) -> list[float]:
    return [(await s.reserve(key, rate, burst))[0] for _ in range(n)]


# -- the reservation arithmetic (shared_quota.RESERVE's) ----------------------------------------------------


async def test_burst_then_one_token_per_refill(stores, clock):
    s = stores()
    assert await waits(s, 5) == pytest.approx([0, 0, 0, 2, 4])  # each reservation past the burst: 1/rate more
    assert (await s.reserve(KEY, 0.5, 3))[1] == 0.5
    clock.now += 6 + 2  # the queue (-3 tokens) paid off, and one token earned
    assert await waits(s, 2) == pytest.approx([0, 2])


async def test_waiters_of_every_process_queue_in_one_line(stores):
    a, b = stores(), stores()
    got = [(await (a if i % 2 else b).reserve(KEY, 0.5, 3))[0] for i in range(6)]
    assert got == pytest.approx([0, 0, 0, 2, 4, 6])


async def test_refund_and_drain(stores):
    s = stores()
    await waits(s, 4)
    assert await s.refund(KEY, 0.5, 3)  # that waiter gave up: the next one takes its place
    assert await waits(s, 1) == pytest.approx([2])
    other = ("e", "c", None, "getReportDocument", 1.0)
    assert await s.drain(other, 0.5, 3)  # a 429 on a full bucket empties it
    assert await waits(s, 1, key=other) == pytest.approx([2])


async def test_a_stated_rate_applies_to_every_process_keeps_earned_tokens_and_expires(stores, clock):
    a, b = stores(), stores()
    await waits(a, 3, rate=1.0, burst=3)
    clock.now += 0.5  # half a token earned at the old rate
    assert await a.set_rate(KEY, 0.25, 3)
    wait, rate = await b.reserve(KEY, 1.0, 3)  # b names the operation's default rate: the stored one wins
    assert rate == 0.25 and wait == pytest.approx(2.0)
    # Forgotten once full again plus a margin (the Redis key's expiry): the default rate is back.
    clock.now += (3 + 0.5) / 0.25 + 5
    assert await b.reserve(KEY, 1.0, 3) == (0.0, 1.0)


async def test_one_small_file_per_bucket_naming_no_secret(stores, tmp_path):
    s = stores()
    await waits(s, 4)
    (path,) = (tmp_path / "quota").iterdir()
    assert path == s.bucket_path(KEY) and path.name.startswith("getReport-") and "f00d" not in path.name
    assert path.stat().st_size == RECORD_SIZE
    state = json.loads(path.read_text())
    assert state["tokens"] == pytest.approx(-1) and state["rate"] == 0.5


# -- an unusable file or folder ---------------------------------------------------------------------------


def warnings_in(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_a_corrupt_file_falls_back_warns_once_and_is_reset_to_an_empty_bucket(stores, caplog):
    caplog.set_level(logging.INFO, logger="sp_reports.client")
    s = stores(cooldown=0.0)
    await waits(s, 1)
    s.bucket_path(KEY).write_text('{"tokens": "lots"' + "x" * 500)
    assert await s.reserve(KEY, 0.5, 3) is None
    (warning,) = warnings_in(caplog)
    assert "quota folder" in warning and "UnreadableBucketError" in warning
    # Rewritten as an empty bucket (what it held is unknown): the next reservation waits a refill.
    assert await waits(s, 1) == pytest.approx([2])
    assert any("is back" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


@pytest.mark.parametrize("damage", ["folder is a file", "file is a folder"])
async def test_an_unusable_folder_or_file_falls_back_and_warns_once(tmp_path, clock, caplog, damage):
    if damage == "folder is a file":
        (tmp_path / "quota").write_text("")
        s = FileBuckets(tmp_path / "quota" / "deeper", clock=clock)
    else:
        s = FileBuckets(tmp_path / "quota", clock=clock)
        s.bucket_path(KEY).mkdir(parents=True)
    for _ in range(3):
        assert await s.reserve(KEY, 0.5, 3) is None
        assert not await s.drain(KEY, 0.5, 3)
    assert len(warnings_in(caplog)) == 1 and not s.available


async def test_a_client_on_an_unusable_folder_still_works(tmp_path, make_client, amazon, caplog):
    amazon.route("GET", REPORT_PATH, httpx.Response(200, json={"reportId": "R1"}))
    (tmp_path / "quota").write_text("")
    client = make_client(quota_store=FileBuckets(tmp_path / "quota" / "x"))
    for _ in range(3):
        assert (await client.get_report("R1"))["reportId"] == "R1"
    assert len(warnings_in(caplog)) == 1


async def test_a_lock_held_too_long_falls_back(stores):
    import fcntl
    import os

    s = stores(lock_timeout=0.05)
    await waits(s, 1)
    fd = os.open(s.bucket_path(KEY), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process, stuck while holding it
        assert await s.reserve(KEY, 0.5, 3) is None
    finally:
        os.close(fd)


async def test_one_store_per_folder_per_process(tmp_path):
    assert file_buckets(None) is None
    assert file_buckets(tmp_path) is file_buckets(str(tmp_path))


# -- reserving ahead of a call, through the client ------------------------------------------------------------

CREATE_PATH = "/reports/2021-06-30/reports"
REFILL = 1 / operations.CREATE_REPORT.rate  # 59.9 s


async def create(client, **kwargs) -> str:
    return await client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", ["ATVPDKIKX0DER"], **kwargs)


async def test_reservations_queue_like_requests_and_a_reserved_create_takes_no_token(stores, make_client, amazon,
                                                                                     sleeps):  # fmt: skip
    amazon.route("POST", CREATE_PATH, httpx.Response(202, json={"reportId": "R1"}))
    client, other_process = make_client(quota_store=stores()), make_client(quota_store=stores())
    got = [await (client if i % 2 else other_process).reserve_quota("createReport") for i in range(16)]
    assert got == pytest.approx([0] * 14 + [REFILL, 2 * REFILL])  # the burst (15) less the client's spare token
    assert await create(client, quota_reserved=True) == "R1"
    assert sleeps == []  # sent at once
    assert await other_process.reserve_quota("createReport") == pytest.approx(3 * REFILL)  # the create took none
    assert await create(client) == "R1"  # without the flag, a create takes its token
    assert sleeps[-1] == pytest.approx(4 * REFILL)


async def test_a_reserved_create_refused_with_429_drains_the_store_and_retries_on_a_token(stores, make_client, amazon,
                                                                                          fake, sleeps):  # fmt: skip
    amazon.queue("POST", CREATE_PATH, fake.error_response(429, "QuotaExceeded", "slow down"),
                 httpx.Response(202, json={"reportId": "R1"}, headers={"x-amzn-RateLimit-Limit": "0.0125"}))  # fmt: skip
    client = make_client(quota_store=stores())
    assert await client.reserve_quota("createReport") == 0  # 13 tokens left
    assert await create(client, quota_reserved=True) == "R1"
    # One refill after the 429; the retry's own token was earned meanwhile.
    assert sleeps == [pytest.approx(REFILL)]
    # The store was drained (not 12 tokens left) and holds the rate Amazon stated.
    assert await make_client(quota_store=stores()).reserve_quota("createReport") == pytest.approx(1 / 0.0125)


async def test_without_a_store_reservations_pace_this_process_only(make_client):
    client = make_client()
    assert [await client.reserve_quota("createReport") for _ in range(15)][-1] == pytest.approx(REFILL)
    assert await client.reserve_quota("getReport") == 0
    with pytest.raises(ValueError, match="unknown operation 'createReports'"):
        await client.reserve_quota("createReports")


def test_the_blocking_client_reserves_too(tmp_path, credentials, amazon):
    from sp_reports.client import SellingPartnerClient

    with SellingPartnerClient(credentials, transport=amazon.transport, quota_store=FileBuckets(tmp_path)) as client:
        assert client.reserve_quota("getReportDocument") == 0
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["getReportDocument"]


# -- processes sharing a folder ------------------------------------------------------------------------------


def test_four_processes_together_never_exceed_burst_plus_rate(tmp_path):
    rate, burst, count = 20.0, 5, 10
    job = {"mode": "reserve", "quota_dir": str(tmp_path), "key": list(KEY), "rate": rate, "burst": burst,
           "count": count}  # fmt: skip
    results = run_fleet([job] * 4)
    used = sorted(t for result in results for t in result["used"])
    assert len(used) == 4 * count
    start = min(result["started"] for result in results)
    for n, at in enumerate(used, 1):
        assert n <= burst + rate * (at - start + 0.01), (n, at - start)


SPEED = 200.0  # createReport and getReportDocument: 0.0167/s * 200 = 3.34/s, a refill every 0.3 s
WORKERS = 4


@pytest.fixture(scope="module")
def emulator():
    with testing.running_emulator(speed=SPEED, processing_seconds=2.0, seed=13) as emu:
        yield emu


@pytest.mark.parametrize("one_store", [True, False], ids=["files", "per-process"])
def test_four_workers_fetching_documents_together(emulator, tmp_path, one_store):
    """Four processes download 20 documents together at getReportDocument's quota (burst 15) scaled by the
    emulator's speed: sharing a quota folder Amazon never says 429; each process with its own buckets it does."""
    documents = seed_documents(emulator, 20, SPEED)
    quota_dir = str(tmp_path) if one_store else None
    jobs = [emulator_job(emulator, SPEED, mode="fetch", quota_dir=quota_dir, document_ids=documents[i::WORKERS])
            for i in range(WORKERS)]  # fmt: skip
    assert sum(run_fleet(jobs)) == 20
    assert_throttled_unless_one_store(emulator, "getReportDocument", "200", one_store)


@pytest.mark.parametrize("one_store", [True, False], ids=["files", "per-process"])
def test_quota_reserved_in_one_process_is_used_by_another(emulator, tmp_path, one_store):
    """Four processes reserve five createReport tokens each, as tasks about to send would; each sends those due at
    once itself and hands the others over to four other processes (tasks that defer), which never saw those
    reservations and create the reports at the due times with ``quota_reserved=True``. Sharing a quota folder, the
    due times are spaced one refill apart past the burst and Amazon never says 429; with buckets per process every
    reservation is due at once, and it does."""
    emulator.reset(config=True)
    quota_dir = str(tmp_path) if one_store else None
    refill = 1 / (operations.CREATE_REPORT.rate * SPEED)
    creators = start_fleet([emulator_job(emulator, SPEED, mode="create", quota_dir=quota_dir)] * WORKERS)
    reserved = run_fleet(
        [emulator_job(emulator, SPEED, mode="reserve_quota", quota_dir=quota_dir, count=5, defer_over=refill / 2)]
        * WORKERS
    )
    due = sorted(t for result in reserved for t in result["due"])
    deferred = sorted(t for result in reserved for t in result["deferred"])
    queued = [t - due[0] for t in due if t - due[0] > refill / 2]
    if one_store:
        # The client keeps one token of the burst (15) spare: 14 due now, the rest one refill apart.
        assert 14 <= 20 - len(queued) <= 15, due
        assert [b - a for a, b in itertools.pairwise(queued)] == pytest.approx([refill] * (len(queued) - 1), abs=0.05)
        assert len(deferred) == len(queued)
    else:
        assert queued == [] and deferred == []
    created = finish_fleet(creators, [json.dumps(deferred[i::WORKERS]) for i in range(WORKERS)])
    assert sum(created) + sum(result["created"] for result in reserved) == 20
    assert_throttled_unless_one_store(emulator, "createReport", "202", one_store)


def assert_throttled_unless_one_store(emulator, operation: str, success: str, one_store: bool) -> None:
    """20 successes; no 429 with a quota folder, some with buckets per process (printed: the measurement)."""
    statuses = emulator.stats()["by_operation_status"][operation]
    print(f"{WORKERS} processes, {'a quota folder' if one_store else 'buckets per process'}: {operation} {statuses}")
    assert statuses[success] == 20
    assert statuses.get("429", 0) == 0 if one_store else statuses.get("429", 0) > 0


# -- cost ------------------------------------------------------------------------------------------------------


async def test_a_reservation_costs_well_under_a_millisecond_and_leaves_the_loop_free(tmp_path):
    """10,000 reservations (each a locked read-modify-write in a thread) while the event loop keeps ticking."""
    s = FileBuckets(tmp_path)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.001)

    beat = asyncio.create_task(ticker())
    started = time.perf_counter()
    for _ in range(10_000):
        await s.reserve(KEY, 1e6, 10**9)
    per_reserve = (time.perf_counter() - started) / 10_000
    beat.cancel()
    gap = max(b - a for a, b in itertools.pairwise(ticks))
    print(f"file store: {per_reserve * 1e6:.0f} µs per reserve (10,000), longest event-loop gap {gap * 1e3:.1f} ms;"
          f" median tick {statistics.median(b - a for a, b in itertools.pairwise(ticks)) * 1e3:.2f} ms")  # fmt: skip
    assert per_reserve < 0.002 and s.available
