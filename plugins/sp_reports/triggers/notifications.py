"""Deferrable wait for a report's REPORT_PROCESSING_FINISHED notification, with slow polling as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from airflow.triggers.base import TriggerEvent

from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.triggers.base import ReportWaitTrigger
from sp_reports.triggers.sqs_listener import queue_listener


class ReportNotificationTrigger(ReportWaitTrigger):
    """Waits for this report's notification on the SQS queue Amazon notifies (through the process's one
    listener of that queue, ``sqs_listener``); every ``fallback_poll_interval`` seconds (counted from
    ``started_at``, so a restarted trigger whose notification went missing polls at once) it asks getReport
    instead, in case the notification was lost or taken by another consumer.

    Yields the same events as ``ReportProcessingTrigger``; once notified, one getReport call fetches the
    whole report (the notification does not carry its marketplaces or dates).
    """

    serialized_fields = (
        *(f if f != "poll_interval" else "fallback_poll_interval" for f in ReportWaitTrigger.serialized_fields),
        "queue_url",
        "aws_conn_id",
    )

    def __init__(
        self,
        report_id: str,
        queue_url: str,
        aws_conn_id: str | None = "aws_default",
        fallback_poll_interval: float = 900.0,
        selling_partner_conn_id: str = SellingPartnerHook.default_conn_name,
        deadline: float | None = None,
        started_at: float | None = None,
        cancel_on_kill: bool = True,
        stuck_at: float | None = None,
    ) -> None:
        super().__init__(
            report_id, selling_partner_conn_id, fallback_poll_interval, deadline, started_at, cancel_on_kill, stuck_at
        )
        self.queue_url = queue_url
        self.aws_conn_id = aws_conn_id

    @property
    def fallback_poll_interval(self) -> float:
        """The base's ``poll_interval``: here only the fallback to a missed notification."""
        return self.poll_interval

    async def run(self) -> AsyncIterator[TriggerEvent]:
        with queue_listener(self.queue_url, self.aws_conn_id).waiting(self.report_id) as notified:
            wait = self._bounded(self.started_at + self.poll_interval - time.time())
            while True:
                if wait > 0:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(notified.wait(), wait)
                # Notified, the fallback poll is due, or the deadline: getReport says where the report stands.
                checked = await self.check()
                if isinstance(checked, TriggerEvent):
                    yield checked
                    return
                notified.clear()
                wait = checked
                self.log.info(
                    "Report %s is %s; waiting for its notification (next poll in %.0fs)",
                    self.report_id,
                    self._last_status,
                    wait,
                )
