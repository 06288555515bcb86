"""End to end against the local SP-API emulator (real HTTP on 127.0.0.1): create -> poll ->
download, with and without injected 429/5xx faults, and the sync face."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import logging
import time

import pytest

from sp_reports.emulator import testing  # noqa: E402

from sp_reports.client import (  # noqa: E402
    TOKEN_CACHE,
    AsyncSellingPartnerClient,
    AuthError,
    Credentials,
    InvalidInputError,
    SellingPartnerClient,
)

SPEED = 200.0
REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
US = "ATVPDKIKX0DER"
TERMINAL = {"DONE", "CANCELLED", "FATAL"}


@pytest.fixture(autouse=True)
def sleeps():
    """Real time here: the emulator's quotas and processing run on the wall clock (overrides
    the conftest fixture that fakes sleeping)."""
    return []


@pytest.fixture(scope="module")
def emulator():
    with testing.running_emulator(speed=SPEED, processing_seconds=2.0, seed=7) as emu:
        yield emu


@pytest.fixture
def emu(emulator):
    emulator.reset(config=True)
    return emulator


def client_for(emu, **kwargs) -> AsyncSellingPartnerClient:
    kwargs.setdefault("scale_quotas", SPEED)
    return AsyncSellingPartnerClient(
        Credentials(**emu.credentials), endpoint=emu.base_url, lwa_endpoint=emu.lwa_url, **kwargs
    )


async def wait_until_terminal(client: AsyncSellingPartnerClient, report_id: str) -> dict:
    while True:
        report = await client.get_report(report_id)
        if report["processingStatus"] in TERMINAL:
            return report
        await asyncio.sleep(0.005)


async def request_and_fetch(client: AsyncSellingPartnerClient) -> tuple[dict, bytes, object]:
    report_id = await client.create_report(REPORT_TYPE, [US])
    report = await asyncio.wait_for(wait_until_terminal(client, report_id), timeout=30)
    assert report["processingStatus"] == "DONE", report
    sink = io.BytesIO()
    download = await client.download_document(report["reportDocumentId"], sink)
    return report, sink.getvalue(), download


async def test_create_poll_download(emu, caplog):
    caplog.set_level(logging.DEBUG)
    async with client_for(emu) as client:
        report, data, download = await request_and_fetch(client)
    assert download.document_id == report["reportDocumentId"]
    assert (download.size, download.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert download.compressed == data.startswith(b"\x1f\x8b")
    text = gzip.decompress(data) if download.compressed else data
    assert text.count(b"\n") > 1 and b"\t" in text.splitlines()[0]
    assert download.charset  # the emulator labels every document
    stats = emu.stats()
    assert stats["calls"]["createReport"] == 1
    assert stats["calls"]["lwaToken"] == 1
    assert stats["calls"]["downloadDocument"] == 1
    assert "X-Amz-Signature" not in caplog.text and emu.credentials["client_secret"] not in caplog.text


async def test_faults_are_retried_and_create_report_is_accepted_once(emu):
    emu.config(rate_429=0.3, rate_5xx=0.2)
    async with client_for(emu, max_attempts=15, backoff_base=0.01, backoff_cap=0.1) as client:
        for _ in range(3):
            await request_and_fetch(client)
    stats = emu.stats()
    created = stats["by_operation_status"]["createReport"]
    assert created.get("202") == 3  # each report was accepted exactly once
    faults = sum(n for op in stats["by_operation_status"].values() for s, n in op.items() if s in ("429", "500", "503"))
    assert faults > 0  # the faults really happened, and were retried away


async def test_quota_waits_against_enforced_buckets(emu):
    # createReport's burst is 15: the 16th and later calls must wait for the (sped-up) refill,
    # which the client does itself instead of collecting 429s.
    async with client_for(emu) as client:
        ids = await asyncio.gather(*(client.create_report(REPORT_TYPE, [US]) for _ in range(20)))
    assert len(set(ids)) == 20
    created = emu.stats()["by_operation_status"]["createReport"]
    assert created.get("202") == 20
    assert created.get("429", 0) <= 2  # clock skew may cost a 429 or two, never a stampede


async def test_stale_cached_token_is_refreshed_once(emu):
    async with client_for(emu) as client:
        TOKEN_CACHE.put(client._auth._key, "Atza|revoked-token", 3600)
        report_id = await client.create_report(REPORT_TYPE, [US])
        assert (await client.get_report(report_id))["reportId"] == report_id
    stats = emu.stats()
    assert stats["calls"]["lwaToken"] == 1
    assert stats["by_operation_status"]["createReport"] == {"403": 1, "202": 1}


async def test_server_side_errors_are_typed(emu):
    async with client_for(emu) as client:
        with pytest.raises(InvalidInputError) as info:
            await client.create_report("GET_NO_SUCH_REPORT", [US])
    assert info.value.status == 400 and info.value.code == "InvalidInput"
    # The token cached for the right secret must not be lent to a client with a wrong one.
    async with AsyncSellingPartnerClient(
        Credentials(emu.credentials["client_id"], "wrong-secret", emu.credentials["refresh_token"]),
        endpoint=emu.base_url, lwa_endpoint=emu.lwa_url,
    ) as client:
        with pytest.raises(AuthError) as auth:
            await client.get_report("R")
    assert auth.value.code == "invalid_client" and "wrong-secret" not in str(auth.value)


def test_sync_client_end_to_end(emu):
    with SellingPartnerClient(
        Credentials(**emu.credentials), endpoint=emu.base_url, lwa_endpoint=emu.lwa_url, scale_quotas=SPEED
    ) as client:
        report_id = client.create_report(REPORT_TYPE, [US], report_options={"custom": "true"})
        deadline = time.monotonic() + 30
        while (report := client.get_report(report_id))["processingStatus"] not in TERMINAL:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        sink = io.BytesIO()
        download = client.download_document(report["reportDocumentId"], sink)
        listing = client.get_reports(report_types=[REPORT_TYPE], processing_statuses=["DONE"], page_size=10)
    assert download.size == len(sink.getvalue()) > 0
    assert report_id in [r["reportId"] for r in listing["reports"]]
