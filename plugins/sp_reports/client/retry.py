"""Backoff arithmetic, Retry-After parsing, and the one place that logs and sleeps before a retry."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

logger = logging.getLogger("sp_reports.client")


async def sleep(seconds: float) -> None:
    """Every wait of the client (bucket, 429, backoff) goes through here, so tests patch this one name."""
    await asyncio.sleep(seconds)


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.backoff_base < 0 or self.backoff_cap < 0:
            raise ValueError("backoff_base and backoff_cap must be >= 0")

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))], so clients that failed
        together (a regional outage) do not come back together."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return self.rng.uniform(0.0, ceiling)

    async def wait_before_retry(self, operation: str, reason: str, attempt: int, seconds: float) -> None:
        logger.warning(
            "%s: %s on attempt %d/%d; retrying in %.2fs", operation, reason, attempt, self.max_attempts, seconds
        )
        await self.sleep(seconds)

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await sleep(seconds)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (it may be a number or an HTTP date); None if absent or unparsable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
