"""Deferrable wait for an SP-API report to reach a terminal processing status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from sp_reports.client import SellingPartnerError
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.outcome import TERMINAL_STATUSES


class ReportProcessingTrigger(BaseTrigger):
    """Polls ``getReport`` until ``processingStatus`` is CANCELLED, DONE or FATAL.

    Everything it needs is in its JSON kwargs, and the deadline is an absolute epoch time, so a
    triggerer restart rebuilds it and carries on with the same deadline. It yields exactly one event:

    * ``{"status": "terminal", "report": <Report>}``
    * ``{"status": "timeout", "report_id": ..., "last_status": ..., "waited_seconds": ...}``
    * ``{"status": "error", "report_id": ..., "message": ...}`` (an error the client could not retry away)
    """

    def __init__(
        self,
        report_id: str,
        selling_partner_conn_id: str = SellingPartnerHook.default_conn_name,
        poll_interval: float = 30.0,
        deadline: float | None = None,
        started_at: float | None = None,
        cancel_on_kill: bool = True,
    ) -> None:
        super().__init__()
        self.report_id = report_id
        self.selling_partner_conn_id = selling_partner_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.started_at = started_at if started_at is not None else time.time()
        self.cancel_on_kill = cancel_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "report_id": self.report_id,
                "selling_partner_conn_id": self.selling_partner_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "started_at": self.started_at,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        client = await SellingPartnerHook(self.selling_partner_conn_id).aget_async_client()
        try:
            while True:
                checked = await self.check(client)
                if isinstance(checked, TriggerEvent):
                    yield checked
                    return
                self.log.info("Report %s is %s; checking again in %.0fs", self.report_id, checked, self.poll_interval)
                now = time.time()
                wait = self.poll_interval if self.deadline is None else min(self.poll_interval, self.deadline - now)
                await asyncio.sleep(max(wait, 0.0))
        finally:
            await client.aclose()

    async def check(self, client: Any) -> TriggerEvent | str:
        """One getReport: the event to yield (terminal, error, or timeout once past the deadline), else
        the report's current processingStatus."""
        try:
            report = await client.get_report(self.report_id)
        except SellingPartnerError as exc:
            return TriggerEvent({"status": "error", "report_id": self.report_id, "message": str(exc)})
        status = report["processingStatus"]
        if status in TERMINAL_STATUSES:
            return TriggerEvent({"status": "terminal", "report": report})
        now = time.time()
        if self.deadline is not None and now >= self.deadline:
            return TriggerEvent({"status": "timeout", "report_id": self.report_id, "last_status": status,
                                 "waited_seconds": round(now - self.started_at)})
        return status

    async def on_kill(self) -> None:
        """The user killed the deferred task: a report still waiting in Amazon's queue is cancelled.

        Only IN_QUEUE reports can be cancelled (Amazon refuses the rest), and a triggerer restart
        does not call this, so an in-flight report survives deploys.
        """
        if not self.cancel_on_kill:
            return
        client = await SellingPartnerHook(self.selling_partner_conn_id).aget_async_client()
        try:
            report = await client.get_report(self.report_id)
            if report["processingStatus"] == "IN_QUEUE":
                await client.cancel_report(self.report_id)
                self.log.info("Cancelled report %s, which was still IN_QUEUE", self.report_id)
        finally:
            await client.aclose()
