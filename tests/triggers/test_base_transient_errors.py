"""Waits ride out 429, 5xx and network errors until their deadline; only permanent errors end them early."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from sp_reports.client import AsyncSellingPartnerClient, Credentials, retry
from sp_reports.triggers.reports import ReportProcessingTrigger
from support import EMULATOR_CREDENTIALS, connection_json, first_event, rebuilt

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"


@pytest.fixture
def quick_client_retries(monkeypatch):
    """The client's own backoff (up to 30 s a retry) shortened, so a storm's test takes seconds."""
    real_sleep = asyncio.sleep
    monkeypatch.setattr(retry, "sleep", lambda seconds: real_sleep(min(seconds, 0.02)))


async def create_reports(emu, count: int) -> list[str]:
    emu.config(enforce_quotas=False)  # more than createReport's burst of 15, at once
    async with AsyncSellingPartnerClient(Credentials(**EMULATOR_CREDENTIALS), endpoint=emu.base_url,
                                         lwa_endpoint=emu.lwa_url) as client:
        report_ids = [await client.create_report(REPORT_TYPE, ["ATVPDKIKX0DER"]) for _ in range(count)]
    emu.config(enforce_quotas=True)
    return report_ids


async def test_a_storm_of_429_and_5xx_ends_every_wait_with_its_report(sp_conn, quick_client_retries):
    """The fault probe's storm: 30 % 429 and 20 % 5xx. Before, 6 of 20 waits ended in an error event."""
    sp_conn.config(processing_seconds=1.0)
    report_ids = await create_reports(sp_conn, 20)
    sp_conn.config(rate_429=0.3, rate_5xx=0.2)
    triggers = [rebuilt(ReportProcessingTrigger(rid, poll_interval=0.2, deadline=time.time() + 120))
                for rid in report_ids]

    events = await asyncio.gather(*(first_event(t, timeout=120) for t in triggers))

    assert [e["status"] for e in events] == ["terminal"] * 20
    assert [e["report"]["reportId"] for e in events] == report_ids
    assert {e["report"]["processingStatus"] for e in events} == {"DONE"}
    statuses = sp_conn.stats()["by_operation_status"]["getReport"]
    assert statuses.get("429", 0) > 0 and sum(v for k, v in statuses.items() if k.startswith("5")) > 0


def failed_getreports(emu) -> int:
    statuses = emu.stats()["by_operation_status"].get("getReport", {})
    return sum(count for status, count in statuses.items() if status.startswith("5"))


async def test_an_outage_longer_than_the_clients_retries_is_waited_out(sp_conn, quick_client_retries, capfd):
    sp_conn.config(processing_seconds=0.5)
    [report_id] = await create_reports(sp_conn, 1)
    sp_conn.config(rate_5xx=1.0)
    trigger = rebuilt(ReportProcessingTrigger(report_id, poll_interval=0.05, deadline=time.time() + 60))
    waiting = asyncio.ensure_future(first_event(trigger, timeout=60))

    # Three of the client's full retry rounds (6 attempts each) fail; the wait goes on.
    while failed_getreports(sp_conn) < 3 * 6:
        assert not waiting.done(), waiting.result()
        await asyncio.sleep(0.05)
    sp_conn.config(rate_5xx=0.0)
    event = await waiting

    assert event["status"] == "terminal" and event["report"]["processingStatus"] == "DONE"
    logged = capfd.readouterr().out
    assert f"Report {report_id}: getReport failed (getReport failed: HTTP 5" in logged
    assert "transient failure 3 in a row" in logged


async def test_an_outage_until_the_deadline_is_a_timeout_not_an_error(sp_conn, quick_client_retries):
    sp_conn.config(processing_seconds=0.5)
    [report_id] = await create_reports(sp_conn, 1)
    sp_conn.config(rate_5xx=1.0)

    event = await first_event(rebuilt(ReportProcessingTrigger(report_id, poll_interval=0.05,
                                                              deadline=time.time() + 1.5)))

    assert event["status"] == "timeout" and event["report_id"] == report_id


async def test_refused_credentials_end_the_wait_with_an_error(sp_conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SP_REVOKED", json.dumps({
        **json.loads(connection_json(sp_conn)), "password": "not-the-secret"}))
    [report_id] = await create_reports(sp_conn, 1)

    event = await first_event(rebuilt(ReportProcessingTrigger(report_id, selling_partner_conn_id="sp_revoked",
                                                              poll_interval=0.05, deadline=time.time() + 60)), 10)

    assert event["status"] == "error" and event["report_id"] == report_id
    assert "not-the-secret" not in event["message"]
