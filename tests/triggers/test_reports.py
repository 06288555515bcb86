"""ReportProcessingTrigger: serialize -> rebuild -> run, restarts, deadline, a free event loop (on_kill and the
handover between triggerers: test_trigger_handover.py; transient errors: test_trigger_transient_errors.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from sp_reports.client import AsyncSellingPartnerClient, Credentials
from sp_reports.triggers.reports import ReportProcessingTrigger
from support import EMULATOR_CREDENTIALS, first_event, rebuilt

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"


async def create_report(emu) -> str:
    async with AsyncSellingPartnerClient(Credentials(**EMULATOR_CREDENTIALS), endpoint=emu.base_url,
                                         lwa_endpoint=emu.lwa_url) as client:
        return await client.create_report(REPORT_TYPE, ["ATVPDKIKX0DER"])


@pytest.mark.parametrize("finished", ["DONE", "CANCELLED", "FATAL"])
async def test_serialized_trigger_runs_to_each_terminal_status(sp_conn, finished):
    sp_conn.config(outcomes={REPORT_TYPE: finished})
    report_id = await create_report(sp_conn)
    trigger = ReportProcessingTrigger(report_id, poll_interval=0.1, deadline=time.time() + 30)

    event = await first_event(rebuilt(trigger))

    assert event["status"] == "terminal"
    assert event["report"]["reportId"] == report_id
    assert event["report"]["processingStatus"] == finished
    assert ("reportDocumentId" in event["report"]) is (finished != "CANCELLED")


async def test_trigger_survives_a_triggerer_restart_with_the_same_deadline(sp_conn):
    sp_conn.config(processing_seconds=1.5)
    report_id = await create_report(sp_conn)
    trigger = ReportProcessingTrigger(report_id, poll_interval=0.1, deadline=time.time() + 30)
    kwargs_before = trigger.serialize()[1]

    # The triggerer stops mid-wait (the task is cancelled, not killed by a user) ...
    with pytest.raises(asyncio.TimeoutError):
        await first_event(trigger, timeout=0.4)
    # ... and another triggerer rebuilds it from the stored kwargs.
    again = rebuilt(trigger)
    assert again.serialize()[1] == kwargs_before
    event = await first_event(again)
    assert event["report"]["processingStatus"] == "DONE"


async def test_deadline_fires_an_event_naming_the_report(sp_conn):
    sp_conn.config(processing_seconds=60)
    report_id = await create_report(sp_conn)
    trigger = ReportProcessingTrigger(report_id, poll_interval=0.1, deadline=time.time() + 0.5)

    event = await first_event(rebuilt(trigger))

    assert event["status"] == "timeout"
    assert event["report_id"] == report_id
    assert event["last_status"] in ("IN_QUEUE", "IN_PROGRESS")


async def test_trigger_never_blocks_the_event_loop(sp_conn):
    sp_conn.config(processing_seconds=1.0)
    report_id = await create_report(sp_conn)
    trigger = ReportProcessingTrigger(report_id, poll_interval=0.05, deadline=time.time() + 30)
    gaps = []

    async def heartbeat():
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    event = await first_event(rebuilt(trigger))
    beat.cancel()

    assert event["report"]["processingStatus"] == "DONE"
    assert len(gaps) > 20
    # A blocking HTTP call or sleep would stall the heartbeat for a whole poll or request.
    assert max(gaps) < 0.25, f"event loop stalled for {max(gaps):.3f}s"


async def test_unrecoverable_error_becomes_an_error_event(sp_conn):
    event = await first_event(rebuilt(ReportProcessingTrigger("999999999999", poll_interval=0.1)))
    assert event["status"] == "error"
    assert event["report_id"] == "999999999999"
    assert "HTTP 404" in event["message"]
