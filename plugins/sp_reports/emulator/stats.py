"""Call and response counters, so tests can prove how often a client called each operation."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from .quotas import OPERATION_QUOTAS

OPERATIONS = (*OPERATION_QUOTAS, "lwaToken", "downloadDocument")


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: Counter[str] = Counter({op: 0 for op in OPERATIONS})
        self.responses: Counter[str] = Counter()
        self.by_operation_status: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def call(self, operation: str) -> None:
        self.calls[operation] += 1

    def response(self, operation: str, status: int) -> None:
        self.responses[str(status)] += 1
        self.by_operation_status[operation][str(status)] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "responses": dict(self.responses),
            "by_operation_status": {op: dict(counts) for op, counts in self.by_operation_status.items()},
        }
