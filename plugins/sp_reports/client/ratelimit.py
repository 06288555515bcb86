"""Client-side token buckets mirroring SP-API usage plans.

Amazon meters each operation with a token bucket (rate per second, burst). Keeping our own copy
means we wait *before* sending instead of collecting 429s, and because the buckets are shared by
every client in the process (e.g. many triggers in one Airflow triggerer), concurrent callers
queue up fairly instead of stampeding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

import httpx

RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"


class TokenBucket:
    """A token bucket that hands out *reservations*.

    ``reserve()`` takes a token immediately, letting the balance go negative, and returns how
    long the caller must wait before using it. Waiters thus queue in call order, each computing
    its own wait once; no lock is held while sleeping and nothing here touches an event loop, so
    a bucket can be shared across loops and threads.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._rate = float(rate)
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self._mutex = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> int:
        return int(self._burst)

    @property
    def tokens(self) -> float:
        """Current balance (negative while callers are waiting on reservations)."""
        with self._mutex:
            self._refill()
            return self._tokens

    @property
    def refill_time(self) -> float:
        """Seconds for one token to come back."""
        return 1.0 / self._rate

    def reserve(self) -> float:
        """Take a token; return the seconds to wait before it may be used (0 if available now)."""
        with self._mutex:
            self._refill()
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    def refund(self) -> None:
        """Give back a reservation that was not used (the waiter was cancelled)."""
        with self._mutex:
            self._refill()
            self._tokens = min(self._burst, self._tokens + 1.0)

    def drain(self) -> None:
        """Amazon said 429, so its bucket is empty whatever ours thought: empty ours too."""
        with self._mutex:
            self._refill()
            self._tokens = min(self._tokens, 0.0)

    def set_rate(self, rate: float) -> None:
        with self._mutex:
            self._refill()  # the time elapsed so far earned tokens at the old rate
            self._rate = float(rate)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now


class BucketRegistry:
    """Process-wide buckets by key; the first caller's quota creates the bucket."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # for new buckets; tests swap in a virtual clock
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._mutex = threading.Lock()

    def get(self, key: Hashable, rate: float, burst: int) -> TokenBucket:
        with self._mutex:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(rate, burst, self.clock)
            return bucket

    def clear(self) -> None:
        with self._mutex:
            self._buckets.clear()


BUCKETS = BucketRegistry()


def rate_from_headers(headers: httpx.Headers) -> float | None:
    """The rate Amazon says it applied (``x-amzn-RateLimit-Limit: 0.0167``), if present and sane."""
    value = headers.get(RATE_LIMIT_HEADER)
    if not value:
        return None
    try:
        rate = float(value)
    except ValueError:
        return None
    return rate if 0 < rate < float("inf") else None
