"""What a quota store shared between processes offers the client (``api_caller._Quota``), Redis for a fleet
(``shared_quota.SharedBuckets``) or files for one machine (``file_quota.FileBuckets``), and what both share: the
bucket's name and how an unusable store is reported and tried again."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Protocol, runtime_checkable

logger = logging.getLogger("sp_reports.client")


@runtime_checkable
class QuotaStore(Protocol):
    """Token buckets shared by the processes that name the same store, by the in-process registry's key.

    ``rate`` (requests per second) and ``burst`` are the bucket's defaults, used when the store holds no bucket
    for ``key`` yet. A ``None`` or ``False`` answer means the store was not usable: the caller uses its
    process's own bucket for that call.
    """

    @property
    def available(self) -> bool:
        """False while the store is considered unusable (a failure's cooldown)."""
        ...

    async def reserve(self, key: Hashable, rate: float, burst: int) -> tuple[float, float] | None:
        """Take a token: ``(seconds to wait before using it, the bucket's rate)``, or None."""
        ...

    async def refund(self, key: Hashable, rate: float, burst: int) -> bool:
        """Give back a reservation that was not used."""
        ...

    async def drain(self, key: Hashable, rate: float, burst: int) -> bool:
        """Amazon said 429: the bucket is empty, whatever it held."""
        ...

    async def set_rate(self, key: Hashable, rate: float, burst: int) -> bool:
        """Amazon stated ``rate`` (``x-amzn-RateLimit-Limit``): every process uses it from now on."""
        ...

    async def aclose_loop(self) -> None:
        """Release what the running event loop holds (the loop is about to close)."""
        ...


class BucketActions:
    """``QuotaStore``'s four bucket methods, each one ``_run`` of an action (``reserve``, ``refund``, ``drain``,
    ``set_rate``) that answers ``(wait, the bucket's rate)`` or None (the store was not usable)."""

    async def _run(self, action: str, key: Hashable, rate: float, burst: int) -> tuple[float, float] | None:
        raise NotImplementedError

    async def reserve(self, key: Hashable, rate: float, burst: int) -> tuple[float, float] | None:
        """Take a token: ``(seconds to wait before using it, the bucket's rate)``, or None (use your own)."""
        return await self._run("reserve", key, rate, burst)

    async def refund(self, key: Hashable, rate: float, burst: int) -> bool:
        """Give back a reservation that was not used (the waiter was cancelled)."""
        return await self._run("refund", key, rate, burst) is not None

    async def drain(self, key: Hashable, rate: float, burst: int) -> bool:
        """Amazon said 429: the shared bucket is empty, whatever it held."""
        return await self._run("drain", key, rate, burst) is not None

    async def set_rate(self, key: Hashable, rate: float, burst: int) -> bool:
        """Amazon stated ``rate`` (``x-amzn-RateLimit-Limit``): every process uses it from now on."""
        return await self._run("set_rate", key, rate, burst) is not None


def bucket_name(key: Hashable) -> str:
    """``{operation}:{sha256 of the whole key}``: the operation readable, nothing secret (the selling partner's
    token hash, the client id) spelled out."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:32]
    operation = key[3] if isinstance(key, tuple) and len(key) > 3 else "bucket"
    return f"{operation}:{digest}"


class Outage:
    """A store's health: a failure is logged once (WARNING) and the store is left alone for ``cooldown`` seconds
    (every caller uses its own bucket meanwhile); the first success after it is logged once (INFO).

    ``store`` names the store in those lines (never with a password); ``sharers`` says who shares it again.
    """

    def __init__(self, store: str, sharers: str, cooldown: float, clock: Callable[[], float]) -> None:
        self.store = store
        self.sharers = sharers
        self.cooldown = cooldown
        self.clock = clock
        self._down_until: float | None = None  # set while the store is considered unusable
        self._mutex = threading.Lock()

    @property
    def available(self) -> bool:
        with self._mutex:
            return self._down_until is None or self.clock() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        with self._mutex:
            first = self._down_until is None
            self._down_until = self.clock() + self.cooldown
        if first:
            logger.warning(
                "SP-API quotas: %s is unusable (%s: %s); using this process's own quota buckets, "
                "trying again every %gs",
                self.store, type(exc).__name__, exc or "no detail", self.cooldown,
            )  # fmt: skip

    def succeeded(self) -> None:
        with self._mutex:
            was_down = self._down_until is not None
            self._down_until = None
        if was_down:
            logger.info("SP-API quotas: %s is back; quota buckets are shared by %s again", self.store, self.sharers)
