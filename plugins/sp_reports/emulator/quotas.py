"""Per-operation token buckets with the usage plans documented in the Reports 2021-06-30, Tokens 2021-03-01 and
Notifications v1 models."""

from __future__ import annotations

from dataclasses import dataclass

# operationId -> (rate in requests per second, burst), from each operation's "Usage Plan" table.
OPERATION_QUOTAS: dict[str, tuple[float, int]] = {
    "getReports": (0.0222, 10),
    "createReport": (0.0167, 15),
    "cancelReport": (0.0222, 10),
    "getReport": (2.0, 15),
    "getReportSchedules": (0.0222, 10),
    "createReportSchedule": (0.0222, 10),
    "cancelReportSchedule": (0.0222, 10),
    "getReportSchedule": (0.0222, 10),
    "getReportDocument": (0.0167, 15),
}

# Notifications v1: every operation's usage plan is 1 request per second, burst 5.
NOTIFICATION_QUOTAS: dict[str, tuple[float, int]] = dict.fromkeys(("createDestination", "getDestinations", "getDestination", "deleteDestination", "createSubscription", "getSubscription", "getSubscriptionById", "deleteSubscriptionById"), (1.0, 5))  # fmt: skip

# Tokens 2021-03-01 (tokens_2021-03-01.json), metered per seller like the Reports API.
TOKENS_QUOTAS: dict[str, tuple[float, int]] = {"createRestrictedDataToken": (1.0, 10)}

ALL_QUOTAS = {**OPERATION_QUOTAS, **NOTIFICATION_QUOTAS, **TOKENS_QUOTAS}


@dataclass
class TokenBucket:
    rate: float
    burst: int
    tokens: float
    updated: float

    def refill(self, now: float, speed: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate * speed)
        self.updated = now

    def take(self, now: float, speed: float) -> bool:
        self.refill(now, speed)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Quotas:
    """One full bucket per operation; `speed` is passed on every call so runtime changes apply at once."""

    def __init__(self, now: float) -> None:
        self.reset(now)

    def reset(self, now: float) -> None:
        self.buckets = {
            op: TokenBucket(rate=rate, burst=burst, tokens=float(burst), updated=now)
            for op, (rate, burst) in ALL_QUOTAS.items()
        }

    def take(self, operation: str, now: float, speed: float) -> bool:
        return self.buckets[operation].take(now, speed)

    def settle(self, now: float, speed: float) -> None:
        """Account the time elapsed so far at the old speed before the speed changes."""
        for bucket in self.buckets.values():
            bucket.refill(now, speed)

    @staticmethod
    def limit_header(operation: str, speed: float) -> str:
        rate = ALL_QUOTAS[operation][0] * speed
        return f"{rate:.6g}"
