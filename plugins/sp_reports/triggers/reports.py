"""Deferrable wait for an SP-API report to reach a terminal processing status, by polling getReport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from airflow.triggers.base import TriggerEvent

from sp_reports.triggers.base import ReportWaitTrigger


class ReportProcessingTrigger(ReportWaitTrigger):
    """Polls ``getReport`` every ``poll_interval`` seconds until ``processingStatus`` is CANCELLED, DONE or
    FATAL, or the deadline passes. Events and error handling: ``ReportWaitTrigger``.

    Every trigger of a triggerer shares one client per connection, so their polls share the process's
    getReport quota (2 per second, burst 15): with many waits, each is checked less often than
    ``poll_interval``, and none gets a 429.
    """

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            checked = await self.check()
            if isinstance(checked, TriggerEvent):
                yield checked
                return
            self.log.info("Report %s is %s; checking again in %.0fs", self.report_id, self._last_status, checked)
            await asyncio.sleep(checked)
