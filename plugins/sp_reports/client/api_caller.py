"""The single request path every SP-API operation goes through: quota, auth, send, retry, errors."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .auth import LwaAuth
from .errors import NetworkError, OutcomeUnknownError, error_from_response, says_token_expired
from .operations import Operation
from .quota_store import QuotaStore
from .ratelimit import BUCKETS, BucketRegistry, TokenBucket, rate_from_headers
from .retry import RetryPolicy, retry_after_seconds

# The request certainly never reached Amazon: safe to retry even a non-idempotent request.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Retrying cannot help: the request itself is malformed.
_HOPELESS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


class AccessTokenSource(Protocol):
    """Where a call's ``x-amz-access-token`` comes from: the LWA token (the default), or a Restricted Data Token."""

    async def token(self) -> tuple[str, bool]:
        """The token, and whether it came from a cache (a cached one may have been revoked: worth one refresh)."""
        ...

    def invalidate(self, token: str) -> None:
        """Amazon rejected ``token``: the next ``token()`` gets a fresh one."""
        ...


@dataclass(frozen=True)
class _LwaToken:
    auth: LwaAuth
    scope: str | None

    async def token(self) -> tuple[str, bool]:
        return await self.auth.access_token(self.scope)

    def invalidate(self, token: str) -> None:
        self.auth.invalidate(token, self.scope)


@dataclass(repr=False, eq=False)  # never prints its auth; compared by identity
class ApiCaller:
    """Sends one SP-API operation on behalf of a client: waits for its quota, signs it with an LWA access
    token, retries what may be retried, and turns Amazon's error responses into typed errors."""

    http: httpx.AsyncClient
    auth: LwaAuth
    endpoint: str
    client_id: str
    # Names the selling partner in quota keys without holding a secret (the refresh token's sha256: each
    # authorization is one selling partner).
    selling_partner: str
    policy: RetryPolicy
    scale_quotas: float = 1.0
    buckets: BucketRegistry = BUCKETS
    # Buckets shared with other processes (Redis: client/shared_quota.py, files: client/file_quota.py); None, or
    # the store unusable: the process's ``buckets``.
    quota_store: QuotaStore | None = None

    def quota_key(self, op: Operation) -> tuple[str, str, str | None, str, float]:
        # Amazon meters per application and selling partner (grantless operations per application only), so
        # two sellers of one application never throttle each other. The scale is part of the key so a test's
        # scaled quotas never leak into a real client.
        selling_partner = None if op.grantless_scope else self.selling_partner
        return (self.endpoint, self.client_id, selling_partner, op.name, self.scale_quotas)

    def bucket(self, op: Operation) -> TokenBucket:
        # One token short of Amazon's burst: requests leave here exactly one refill apart once the burst
        # is spent, and network jitter can bunch two of them up at Amazon's end, which then finds its
        # bucket a fraction of a token short (a 429). The spare token absorbs that.
        return self.buckets.get(self.quota_key(op), op.rate * self.scale_quotas, max(1, op.burst - 1))

    async def call(
        self,
        op: Operation,
        path_params: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        *,
        quota_reserved: bool = False,
        access_token: AccessTokenSource | None = None,
    ) -> httpx.Response:
        """Send ``op`` until it succeeds or fails for good; returns the 2xx response or raises a
        ``SellingPartnerError`` subclass. ``quota_reserved``: the first attempt's token was taken by ``reserve``
        earlier (and its wait is over); every later attempt takes its own.

        * 429: wait (Retry-After, else one bucket refill) and retry.
        * 5xx and network errors: full-jitter exponential backoff and retry; a non-idempotent
          request whose response was lost raises ``OutcomeUnknownError`` instead.
        * 401/403 with a cached token (or one Amazon says expired): refresh the token, retry once.
        All of these share ``max_attempts``, except the single token refresh, which is extra.

        ``access_token`` replaces the LWA token (of the seller, or the operation's grantless scope), e.g. with a
        Restricted Data Token for a restricted operation; it is refreshed the same way.
        """
        url = self.endpoint + op.resource_path(path_params)
        tokens = access_token or _LwaToken(self.auth, op.grantless_scope)
        params = {k: v for k, v in (params or {}).items() if v is not None}
        quota = self._quota(op, reserved=quota_reserved)
        policy = self.policy
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= policy.max_attempts
            # The access token first: a quota token taken before a slow LWA exchange would be spent
            # late, bunching this request up with the ones scheduled after it.
            token, from_cache = await tokens.token()
            await self._take_token(quota)
            request = self.http.build_request(
                op.method, url, params=params, json=json, headers={"x-amz-access-token": token}
            )
            try:
                response = await self.http.send(request)
            except httpx.TransportError as exc:
                reason = type(exc).__name__
                if not op.idempotent and not isinstance(exc, _NOT_SENT):
                    raise OutcomeUnknownError(
                        None,
                        reason,
                        f"the request was sent but no response arrived ({exc or 'no detail'}); Amazon may or may not "
                        "have accepted it, so it is not resent: list recent reports to find out",
                        op.name,
                    ) from exc
                if last or isinstance(exc, _HOPELESS):
                    raise NetworkError(
                        None, reason, f"{exc or 'no detail'} (after {attempt} attempts)", op.name
                    ) from exc
                await policy.wait_before_retry(op.name, reason, attempt, policy.backoff(attempt))
                continue

            await self._adjust_rate(quota, response)
            status = response.status_code
            if response.is_success:
                return response
            if status in (401, 403) and not refreshed and (from_cache or says_token_expired(response)):
                # The cached token may have been revoked or expired early: one fresh token, one retry.
                tokens.invalidate(token)
                refreshed = True
                await policy.wait_before_retry(op.name, f"HTTP {status} (refreshing the access token)", attempt, 0.0)
                attempt -= 1
                continue
            if status == 429 and not last:
                await quota.drain()
                wait = retry_after_seconds(response)
                await policy.wait_before_retry(
                    op.name, "HTTP 429", attempt, quota.refill_time if wait is None else wait
                )
                continue
            if status >= 500 and not last:
                wait = retry_after_seconds(response)
                await policy.wait_before_retry(
                    op.name, f"HTTP {status}", attempt, policy.backoff(attempt) if wait is None else wait
                )
                continue
            raise error_from_response(op.name, response)

    async def reserve(self, op: Operation) -> float:
        """Take one token of ``op`` now, for a request sent later (``call(..., quota_reserved=True)``); returns the
        seconds until it is due."""
        return await self._quota(op).reserve()

    def _quota(self, op: Operation, reserved: bool = False) -> _Quota:
        return _Quota(self.quota_key(op), self.bucket(op), self.quota_store, reserved)

    async def _take_token(self, quota: _Quota) -> None:
        wait = await quota.reserve()
        try:
            await self.policy.sleep(wait)
        except asyncio.CancelledError:
            await quota.refund()
            raise

    async def _adjust_rate(self, quota: _Quota, response: httpx.Response) -> None:
        # The header states the rate the server actually applies, so it is used as is, not
        # multiplied by scale_quotas (a sped-up emulator already reports its scaled rate).
        rate = rate_from_headers(response.headers)
        if rate is not None:
            await quota.set_rate(rate)


class _Quota:
    """One operation's quota for one call: the shared bucket when a store is configured and answering, else (and
    always as the fallback) the process's own ``TokenBucket``.

    The shared bucket is used again by each reservation once the store answers; drain, refund and a new rate go
    where the last token came from (a rate also to the process's bucket, so a fallback starts right). A call whose
    first token was ``reserved`` earlier takes none for its first attempt; that token came from the store when
    there is one (the reservation's own fallback cannot be known any more, and draining the store errs on the
    side of fewer requests).
    """

    def __init__(self, key: tuple[str, str, str | None, str, float], bucket: TokenBucket,
                 store: QuotaStore | None, reserved: bool = False) -> None:  # fmt: skip
        self.key = key
        self.bucket = bucket
        self.store = store
        self.reserved = reserved
        self.from_store = reserved and store is not None  # where the last token came from
        self.shared_rate: float | None = None  # the shared bucket's rate, when the last token told it

    async def reserve(self) -> float:
        if self.reserved:
            self.reserved = False
            return 0.0
        reserved = None
        if self.store is not None:
            reserved = await self.store.reserve(self.key, self.bucket.rate, self.bucket.burst)
        self.from_store = reserved is not None
        if reserved is None:
            self.shared_rate = None
            return self.bucket.reserve()
        wait, self.shared_rate = reserved
        return wait

    async def refund(self) -> None:
        if self.store is None or not self.from_store:
            self.bucket.refund()
        else:  # if the store went away meanwhile the token stays spent: that errs on the side of fewer requests
            await self.store.refund(self.key, self.stored_rate, self.bucket.burst)

    async def drain(self) -> None:
        self.bucket.drain()
        if self.store is not None and self.from_store:
            await self.store.drain(self.key, self.stored_rate, self.bucket.burst)

    async def set_rate(self, rate: float) -> None:
        if rate != self.bucket.rate:
            self.bucket.set_rate(rate)
        store = self.store if self.from_store and rate != self.shared_rate else None
        if store is not None and await store.set_rate(self.key, rate, self.bucket.burst):
            self.shared_rate = rate

    @property
    def stored_rate(self) -> float:
        """The shared bucket's rate as far as known (the store keeps its own; this one counts for a new bucket)."""
        return self.bucket.rate if self.shared_rate is None else self.shared_rate

    @property
    def refill_time(self) -> float:
        """Seconds for one token to come back, at the rate of the bucket the last token came from."""
        return self.bucket.refill_time if self.shared_rate is None else 1.0 / self.shared_rate
