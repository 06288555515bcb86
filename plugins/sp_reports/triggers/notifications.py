"""Deferrable wait for a report's REPORT_PROCESSING_FINISHED notification, with slow polling as the fallback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.amazon.aws.hooks.sqs import SqsHook
from airflow.triggers.base import TriggerEvent

from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.notifications import NotificationError, parse_notification
from sp_reports.triggers.reports import ReportProcessingTrigger

LONG_POLL_SECONDS = 20  # SQS's longest receive wait


class ReportNotificationTrigger(ReportProcessingTrigger):
    """Waits on the SQS queue Amazon notifies for this report's notification; every
    ``fallback_poll_interval`` seconds (counted from ``started_at``, so a restarted trigger whose
    notification went missing polls at once) it asks getReport instead, in case the notification was
    lost or taken by another consumer. Other reports' notifications are made visible again at once.

    Yields the same events as ``ReportProcessingTrigger``; once notified, one getReport call fetches
    the whole report (the notification does not carry its marketplaces or dates).
    """

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
    ) -> None:
        super().__init__(report_id, selling_partner_conn_id, fallback_poll_interval, deadline, started_at, cancel_on_kill)
        self.queue_url = queue_url
        self.aws_conn_id = aws_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()
        kwargs["fallback_poll_interval"] = kwargs.pop("poll_interval")
        return path, {**kwargs, "queue_url": self.queue_url, "aws_conn_id": self.aws_conn_id}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        client = await SellingPartnerHook(self.selling_partner_conn_id).aget_async_client()
        next_poll = self.started_at + self.poll_interval
        try:
            async with await SqsHook(aws_conn_id=self.aws_conn_id).get_async_conn() as sqs:
                while True:
                    now = time.time()
                    due = now >= next_poll or (self.deadline is not None and now >= self.deadline)
                    if not due:
                        until_deadline = (self.deadline - now) if self.deadline is not None else LONG_POLL_SECONDS
                        wait = min(LONG_POLL_SECONDS, next_poll - now, until_deadline)
                        if not await self._receive(sqs, max(1, int(wait))):
                            continue
                    else:
                        next_poll = now + self.poll_interval
                    # Notified, or the fallback poll is due: getReport says where the report stands.
                    checked = await self.check(client)
                    if isinstance(checked, TriggerEvent):
                        yield checked
                        return
                    self.log.info("Report %s is %s; waiting for its notification (next poll in %.0fs)",
                                  self.report_id, checked, next_poll - time.time())
        finally:
            await client.aclose()

    async def _receive(self, sqs: Any, wait_seconds: int) -> bool:
        """One long poll; True if this report's notification arrived (it is deleted, the rest released)."""
        response = await sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=min(wait_seconds, LONG_POLL_SECONDS))
        found = False
        for message in response.get("Messages", []):
            try:
                mine = parse_notification(message.get("Body", ""))["report_id"] == self.report_id
            except NotificationError:
                mine = False
            if mine:
                await sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                found = True
            else:
                await sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                    VisibilityTimeout=0)
        return found
