"""One SQS long poll per queue per triggerer, shared by every report waiting on that queue's notifications.

A trigger each polling the queue would be a thousand SQS clients (each loading botocore's models) and a
thousand long polls handing each other's messages back and forth. Here one task receives, deletes the
notifications of reports this process waits for, wakes their waiters, and releases the rest at once
for whoever else consumes the queue (another triggerer, the notifications DAG).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from sp_reports.notification_messages import NotificationError, parse_notification

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 20  # SQS's longest receive wait
# After a batch of nothing but other consumers' messages: they are visible again at once, and receiving
# them straight back would spin.
FOREIGN_BATCH_PAUSE = 1.0
ERROR_PAUSE = 5.0


class QueueListener:
    """Receives from one queue while anyone waits on it; ``waiting(report_id)`` gives an ``asyncio.Event``
    set when that report's notification arrives."""

    def __init__(self, queue_url: str, aws_conn_id: str | None) -> None:
        self.queue_url = queue_url
        self.aws_conn_id = aws_conn_id
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task | None = None

    @contextlib.contextmanager
    def waiting(self, report_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(report_id, set()).add(event)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._receive_while_awaited(), name=f"sqs-listener {self.queue_url}"
            )
        try:
            yield event
        finally:
            waiters = self._waiters.get(report_id, set())
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(report_id, None)

    async def _receive_while_awaited(self) -> None:
        from airflow.providers.amazon.aws.hooks.sqs import SqsHook

        try:
            async with await SqsHook(aws_conn_id=self.aws_conn_id).get_async_conn() as sqs:
                while True:
                    if not self._waiters:
                        # Decided synchronously, so a waiter arriving while this client closes starts a new task.
                        self._task = None
                        return
                    try:
                        mine = await self._receive(sqs)
                    except Exception:
                        log.warning(
                            "Receiving from %s failed; trying again in %.0fs",
                            self.queue_url,
                            ERROR_PAUSE,
                            exc_info=True,
                        )
                        await asyncio.sleep(ERROR_PAUSE)
                        continue
                    if mine is False:
                        await asyncio.sleep(FOREIGN_BATCH_PAUSE)
        except Exception:
            log.warning(
                "The SQS listener of %s stopped; waits fall back to polling getReport", self.queue_url, exc_info=True
            )
            self._task = None

    async def _receive(self, sqs: Any) -> bool | None:
        """One long poll. True if a waited-for notification came, False if only others' messages came,
        None if nothing came."""
        response = await sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=LONG_POLL_SECONDS
        )
        messages = response.get("Messages", [])
        found = False
        for message in messages:
            try:
                report_id = parse_notification(message.get("Body", ""))["report_id"]
            except NotificationError:
                report_id = None
            if report_id in self._waiters:
                await sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                for event in self._waiters[report_id]:
                    event.set()
                found = True
            else:
                await sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        return found if messages else None


_LISTENERS: dict[asyncio.AbstractEventLoop, dict[tuple, QueueListener]] = {}


def queue_listener(queue_url: str, aws_conn_id: str | None) -> QueueListener:
    """This event loop's listener of the queue (a triggerer has one loop; closed loops' are dropped)."""
    for closed in [loop for loop in _LISTENERS if loop.is_closed()]:
        del _LISTENERS[closed]
    listeners = _LISTENERS.setdefault(asyncio.get_running_loop(), {})
    key = (queue_url, aws_conn_id)
    if key not in listeners:
        listeners[key] = QueueListener(queue_url, aws_conn_id)
    return listeners[key]
