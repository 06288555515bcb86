"""Call and response counters, so tests can prove how often a client called each operation."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from .quotas import ALL_QUOTAS

OPERATIONS = (*ALL_QUOTAS, "lwaToken", "downloadDocument")
# Notification deliveries, counted apart from `calls` (nobody called anything):
# published = notifications sent at least once, duplicated = extra copies sent,
# dropped = never sent (notification_drop_rate), failed = SQS refused them on every attempt.
NOTIFICATION_COUNTERS = (
    "notificationsPublished",
    "notificationsDuplicated",
    "notificationsDropped",
    "notificationsFailed",
)


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: Counter[str] = Counter(dict.fromkeys(OPERATIONS, 0))
        self.responses: Counter[str] = Counter()
        self.by_operation_status: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.notifications: Counter[str] = Counter(dict.fromkeys(NOTIFICATION_COUNTERS, 0))
        # Per selling partner (calls with a seller's access token, whatever their outcome; grantless
        # calls and calls without a valid token are in the totals only).
        self.calls_by_seller: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.by_seller_status: defaultdict[str, defaultdict[str, Counter[str]]] = defaultdict(
            lambda: defaultdict(Counter)
        )

    def call(self, operation: str) -> None:
        self.calls[operation] += 1

    def response(self, operation: str, status: int, seller_id: str | None = None) -> None:
        self.responses[str(status)] += 1
        self.by_operation_status[operation][str(status)] += 1
        if seller_id is not None:
            self.calls_by_seller[seller_id][operation] += 1
            self.by_seller_status[seller_id][operation][str(status)] += 1

    def notification(self, counter: str, n: int = 1) -> None:
        self.notifications[counter] += n

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "responses": dict(self.responses),
            "by_operation_status": {op: dict(counts) for op, counts in self.by_operation_status.items()},
            "notifications": dict(self.notifications),
            "calls_by_seller": {seller: dict(calls) for seller, calls in self.calls_by_seller.items()},
            "by_seller_status": {
                seller: {op: dict(counts) for op, counts in ops.items()}
                for seller, ops in self.by_seller_status.items()
            },
        }
