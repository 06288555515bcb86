"""Quota buckets shared by every process of the fleet, in Redis.

Amazon meters each operation per application and selling partner, not per process: two Celery workers and a
triggerer that each keep their own ``TokenBucket`` together spend up to three bursts of a quota that has one.
``SharedBuckets`` keeps the bucket in Redis instead, under the same key the in-process registry uses
(endpoint, client id, selling partner, operation, scale), and takes a token with one atomic server-side step:
``RESERVE`` below, a token bucket in Lua that lets the balance go negative and returns how long the caller must
wait, exactly like ``TokenBucket.reserve()``. Callers therefore queue in arrival order across the fleet; each
sleeps its own wait client-side, holding no Redis connection. The script reads Redis's clock (``TIME``), so the
hosts' clocks never matter, and every key expires a little after its bucket would be full again.

A rate Amazon states in ``x-amzn-RateLimit-Limit`` is stored in the bucket's hash, so every process uses it;
a 429 drains the shared bucket.

Redis is a helper, never a dependency of a task: when it cannot be reached (or errs), every method returns
``None``/``False`` and the caller uses its in-process bucket; one WARNING names the URL (credentials redacted),
Redis is tried again after ``cooldown`` seconds, and one INFO line says when it is back.

One ``redis.asyncio`` client (a small blocking pool) per event loop: a triggerer's loop shares one, and the
clients of closed loops (a finished sync client's) are dropped. ``redis`` is imported on first use, so a
process without a shared store never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from .quota_store import BucketActions, Outage, bucket_name
from .redaction import redact_url

DEFAULT_PREFIX = "sp-reports:quota:"

# KEYS[1]: the bucket's hash {tokens, ts (Redis time, microseconds), rate}.
# ARGV: action (reserve | refund | drain | set_rate), rate (used when the bucket has none yet; the new rate for
# set_rate), burst. Returns {wait seconds, the bucket's rate}, as strings (Redis turns Lua numbers into integers).
RESERVE = """
if redis.replicate_commands then redis.replicate_commands() end  -- TIME before a write (Redis < 5)
local key, action = KEYS[1], ARGV[1]
local given_rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', key, 'tokens', 'ts', 'rate')
local rate = tonumber(state[3]) or given_rate
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) / 1000000 * rate)
local wait = 0
if action == 'reserve' then
  tokens = tokens - 1
  if tokens < 0 then wait = -tokens / rate end
elseif action == 'refund' then
  tokens = math.min(burst, tokens + 1)
elseif action == 'drain' then
  tokens = math.min(tokens, 0)
elseif action == 'set_rate' then
  rate = given_rate
else
  return redis.error_reply('unknown action ' .. tostring(action))
end
redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.0f', now),
           'rate', string.format('%.17g', rate))
-- Gone once the bucket would be full again (plus a margin): an expired bucket and a full one are the same.
redis.call('PEXPIRE', key, math.ceil((burst - tokens) / rate * 1000) + 5000)
return {string.format('%.17g', wait), string.format('%.17g', rate)}
"""


class SharedBuckets(BucketActions):
    """Token buckets in Redis at ``url``, shared by every process that names the same Redis and ``prefix``.

    ``reserve``/``refund``/``drain``/``set_rate`` take the in-process registry's key and the bucket's default
    ``rate`` (requests per second) and ``burst``; each is one ``EVALSHA`` of ``RESERVE``. A ``None`` or
    ``False`` answer means Redis was not usable: use the process's own bucket for this call.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 0.5,
        cooldown: float = 30.0,
        max_connections: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0 or cooldown < 0 or max_connections < 1:
            raise ValueError("timeout must be > 0, cooldown >= 0 and max_connections >= 1")
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.cooldown = cooldown
        self.max_connections = max_connections
        self.clock = clock
        self._by_loop: dict[asyncio.AbstractEventLoop, tuple[Any, Any]] = {}
        self._mutex = threading.Lock()
        self._outage = Outage(f"Redis at {self.redacted_url}", "the fleet", cooldown, lambda: self.clock())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.redacted_url!r}, prefix={self.prefix!r})"

    @property
    def redacted_url(self) -> str:
        """The URL without user name and password (fit for logs)."""
        return redact_url(self.url)

    @property
    def available(self) -> bool:
        """False while a failure's cooldown lasts."""
        return self._outage.available

    def redis_key(self, key: Hashable) -> str:
        """``{prefix}{operation}:{sha256 of the whole key}``: the operation readable, nothing secret spelled out."""
        return self.prefix + bucket_name(key)

    async def aclose_loop(self) -> None:
        """Close the connections of the running loop (a loop about to close, e.g. a sync client's)."""
        with self._mutex:
            entry = self._by_loop.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                await entry[0].aclose()

    async def _run(self, action: str, key: Hashable, rate: float, burst: int) -> tuple[float, float] | None:
        if not self.available:
            return None
        try:
            client, script = self._client()
            async with asyncio.timeout(self.timeout * 4):  # the socket timeouts, plus a wait for a pooled connection
                answer = await script(keys=[self.redis_key(key)], args=[action, repr(float(rate)), int(burst)],
                                      client=client)  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Redis is a helper: whatever went wrong, the caller's own bucket serves
            self._outage.failed(exc)
            return None
        self._outage.succeeded()
        wait, bucket_rate = answer
        return float(wait), float(bucket_rate)

    def _client(self) -> tuple[Any, Any]:
        loop = asyncio.get_running_loop()
        with self._mutex:
            for closed in [other for other in self._by_loop if other.is_closed()]:
                del self._by_loop[closed]
            entry = self._by_loop.get(loop)
            if entry is None:
                from redis.asyncio import BlockingConnectionPool, Redis
                from redis.asyncio.retry import Retry
                from redis.backoff import NoBackoff

                # No retries inside redis-py: a failure falls back at once, and the cooldown does the rest.
                no_retry = Retry(NoBackoff(), 0)
                pool = BlockingConnectionPool.from_url(
                    self.url, max_connections=self.max_connections, timeout=self.timeout * 2,
                    socket_timeout=self.timeout, socket_connect_timeout=self.timeout, retry=no_retry,
                )  # fmt: skip
                client = Redis(connection_pool=pool, retry=no_retry)
                entry = self._by_loop[loop] = (client, client.register_script(RESERVE))
            return entry


_STORES: dict[str, SharedBuckets] = {}
_STORES_MUTEX = threading.Lock()


def shared_buckets(url: str | None) -> SharedBuckets | None:
    """The process's one ``SharedBuckets`` for ``url`` (None: no shared store), so every client of the process
    shares its pools, its fallback state and its single warning."""
    if url is None:
        return None
    with _STORES_MUTEX:
        store = _STORES.get(url)
        if store is None:
            store = _STORES[url] = SharedBuckets(url)
        return store
