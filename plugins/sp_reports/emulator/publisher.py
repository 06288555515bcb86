"""The ticker: a daemon thread that makes time pass without requests. It runs report schedules
and Amazon's settlements, and sends one REPORT_PROCESSING_FINISHED notification per finished
report to the subscribed SQS queue.

Report statuses follow lazily from the clock (state.py), so the ticker looks when the next one
is due instead of polling blindly. SQS calls happen here, outside the emulator's lock, so a slow
queue never stalls the HTTP event loop.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .notifications_api import REPORT_PROCESSING_FINISHED, report_notification

if TYPE_CHECKING:
    from .runtime import Emulator

log = logging.getLogger(__name__)

# Longest sleep between ticks: bounds how late an unforeseen change (cancelReport, a config
# change) is noticed. Foreseen events (a report finishing, a schedule firing) wake it on time.
MAX_TICK_SECONDS = 0.05
MIN_TICK_SECONDS = 0.002
# A message SQS refused is retried on later ticks for this long, then counted as failed.
DELIVERY_DEADLINE_SECONDS = 30.0
RETRY_SECONDS = 0.5


@dataclass
class Delivery:
    arn: str
    body: str
    copies: int  # 2 when the notification is duplicated
    generation: int
    give_up_at: float
    next_try: float = 0.0
    attempts: int = 0
    sent: int = 0  # copies already accepted by SQS, so a retry never sends a third one


class SqsSender:
    """boto3 SQS clients per (endpoint, region) and queue URLs per ARN, all made in the ticker thread."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str | None, str], Any] = {}
        self._urls: dict[tuple[str | None, str], str] = {}

    def send(self, endpoint: str | None, arn: str, body: str) -> None:
        client = self._client(endpoint, arn.split(":")[3])
        client.send_message(QueueUrl=self.queue_url(endpoint, arn), MessageBody=body)

    def knows(self, endpoint: str | None, arn: str) -> bool:
        return (endpoint, arn) in self._urls

    def queue_url(self, endpoint: str | None, arn: str) -> str:
        key = (endpoint, arn)
        if key not in self._urls:
            _, _, _, region, account, name = arn.split(":", 5)
            client = self._client(endpoint, region)
            self._urls[key] = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self._urls[key]

    def _client(self, endpoint: str | None, region: str) -> Any:
        key = (endpoint, region)
        if key not in self._clients:
            import boto3
            from botocore.config import Config

            options: dict[str, Any] = {}
            if endpoint is not None:
                # A local SQS (moto_server) accepts any credentials; real ones are used when set.
                options = {
                    "endpoint_url": endpoint,
                    "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                    "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                    "aws_session_token": os.environ.get("AWS_SESSION_TOKEN"),
                }
            # Short timeouts and no botocore retries: the ticker retries itself and must keep ticking.
            config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
            self._clients[key] = boto3.session.Session().client("sqs", region_name=region, config=config, **options)
        return self._clients[key]


class Ticker:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.sender = SqsSender()
        self.outbox: list[Delivery] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sp-api-emulator-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.tick()
            except Exception:  # the ticker must outlive an emulator bug; the next tick tries again
                log.exception("emulator ticker failed")
                wait = MAX_TICK_SECONDS
            self._stop.wait(wait)

    def tick(self) -> float:
        """One round; returns how long to sleep before the next."""
        emu = self.emu
        with emu.lock:
            now = emu.clock()
            config, generation = emu.config, emu.generation
            emu.advance(now)
            self._collect(now)
            # Resolving a queue URL (and building the boto3 client) takes a while the first time;
            # doing it as soon as a destination exists keeps the first notification prompt.
            unresolved = [
                d.arn for d in emu.notifications.destinations.values() if not self.sender.knows(config.sqs_endpoint_url, d.arn)
            ]  # fmt: skip
            next_due = min([t for a in emu.accounts.values() if (t := a.store.next_due()) is not None], default=None)
        for arn in unresolved:
            try:
                self.sender.queue_url(config.sqs_endpoint_url, arn)
            except Exception:  # noqa: BLE001 - the queue may not exist yet: the first delivery tries again
                pass
        self._deliver(config.sqs_endpoint_url, generation)
        retries = [d.next_try for d in self.outbox]
        upcoming = min([t for t in (next_due, *retries) if t is not None], default=None)
        if upcoming is None:
            return MAX_TICK_SECONDS
        return min(MAX_TICK_SECONDS, max(MIN_TICK_SECONDS, upcoming - emu.clock()))

    def _collect(self, now: float) -> None:
        """Queue a notification for every report that finished, if someone is subscribed."""
        emu, config = self.emu, self.emu.config
        finished = [(a.key, r) for a in emu.accounts.values() for r in a.store.take_finished(now)]
        for account, report in sorted(finished, key=lambda item: item[1].finished_at()):
            target = emu.notifications.destination_for(REPORT_PROCESSING_FINISHED, account)
            if target is None:
                continue  # Amazon notifies the subscriptions that exist when the report finishes
            subscription, destination = target
            # Per-report dice: whether a report's notification is dropped or doubled does not depend
            # on what else happened in the run.
            dice = random.Random(f"{config.seed}:{report.content_key}:notification")
            notification_id = str(uuid.UUID(int=dice.getrandbits(128), version=4))
            if dice.random() < config.notification_drop_rate:
                emu.stats.notification("notificationsDropped")
                continue
            copies = 2 if dice.random() < config.notification_duplicate_rate else 1
            body = json.dumps(report_notification(report, subscription, config, notification_id, now))
            self.outbox.append(Delivery(destination.arn, body, copies, emu.generation, now + DELIVERY_DEADLINE_SECONDS))

    def _deliver(self, endpoint: str | None, generation: int) -> None:
        now, kept = self.emu.clock(), []
        for delivery in self.outbox:
            if delivery.generation != generation:
                continue  # gathered before a reset
            if delivery.next_try > now:
                kept.append(delivery)
                continue
            if not self._send(endpoint, delivery, now):
                kept.append(delivery)
        self.outbox = kept

    def _send(self, endpoint: str | None, delivery: Delivery, now: float) -> bool:
        """True when the delivery is finished with (sent, or given up)."""
        delivery.attempts += 1
        try:
            while delivery.sent < delivery.copies:
                self.sender.send(endpoint, delivery.arn, delivery.body)
                delivery.sent += 1
        except Exception as error:  # noqa: BLE001 - any failure is retried until give_up_at, then counted
            if now < delivery.give_up_at:
                delivery.next_try = now + RETRY_SECONDS
                return False
            # The ARN and error name only: boto3 messages may quote request details.
            log.warning("giving up on a notification for %s after %d attempts: %s", delivery.arn, delivery.attempts,
                        type(error).__name__)  # fmt: skip
            with self.emu.lock:
                self._count(delivery.generation, "notificationsFailed")
            return True
        with self.emu.lock:
            self._count(delivery.generation, "notificationsPublished")
            if delivery.copies > 1:
                self._count(delivery.generation, "notificationsDuplicated", delivery.copies - 1)
        return True

    def _count(self, generation: int, counter: str, n: int = 1) -> None:
        if generation == self.emu.generation:  # stats of a run before a reset stay reset
            self.emu.stats.notification(counter, n)
