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

    def call(self, operation: str) -> None:
        self.calls[operation] += 1

    def response(self, operation: str, status: int) -> None:
        self.responses[str(status)] += 1
        self.by_operation_status[operation][str(status)] += 1

    def notification(self, counter: str, n: int = 1) -> None:
        self.notifications[counter] += n

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "responses": dict(self.responses),
            "by_operation_status": {op: dict(counts) for op, counts in self.by_operation_status.items()},
            "notifications": dict(self.notifications),
        }
