"""Login with Amazon (LWA): exchanging the refresh token (or client credentials) for access tokens."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import httpx

from .credentials import Credentials
from .errors import AuthError
from .retry import RetryPolicy, retry_after_seconds

OPERATION = "LWA token exchange"

# Refresh this long before Amazon's expiry (capped at a tenth of the lifetime for short-lived
# tokens), so a token never expires between our check and Amazon's.
EXPIRY_MARGIN_SECONDS = 60.0


@dataclass
class _Entry:
    token: str
    expires_at: float


class TokenCache:
    """Access tokens shared by every client in the process.

    Keys are (LWA endpoint, client id, sha256 of the client secret, sha256 of the refresh token)
    or, for grantless tokens, the same with "scope:" + scope instead of the refresh token: one
    token per selling partner authorisation, however many clients (e.g. triggers) use it. The
    secret is part of the key so that a client with a wrong (or rotated-out) secret never
    borrows a token minted with the right one: Airflow's "Test connection" must really test.

    Coalescing uses one asyncio.Lock per key *per event loop*: an asyncio.Lock belongs to the
    loop it is first used on, and the sync client runs its own loop (possibly in another thread),
    so a single global lock could end up bound to a loop that is closed or busy elsewhere. The
    per-loop table is weak, so closed loops take their locks with them. Two loops may therefore
    refresh the same key at the same time; both tokens are valid, so that is harmless.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[Hashable, _Entry] = {}
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )
        self._mutex = threading.Lock()  # guards the dicts; never held across an await

    def get(self, key: Hashable) -> str | None:
        with self._mutex:
            entry = self._entries.get(key)
            if entry is None or self._clock() >= entry.expires_at:
                return None
            return entry.token

    def put(self, key: Hashable, token: str, expires_in: float) -> None:
        margin = min(EXPIRY_MARGIN_SECONDS, expires_in / 10)
        with self._mutex:
            self._entries[key] = _Entry(token, self._clock() + expires_in - margin)

    def invalidate(self, key: Hashable, token: str) -> None:
        """Forget ``token`` unless someone already replaced it with a newer one."""
        with self._mutex:
            entry = self._entries.get(key)
            if entry is not None and entry.token == token:
                del self._entries[key]

    def lock(self, key: Hashable) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._mutex:
            locks = self._locks.setdefault(loop, {})
            return locks.setdefault(key, asyncio.Lock())

    def clear(self) -> None:
        with self._mutex:
            self._entries.clear()


TOKEN_CACHE = TokenCache()


class LwaAuth:
    """Mints and caches access tokens for one set of credentials."""

    def __init__(
        self,
        credentials: Credentials,
        http: httpx.AsyncClient,
        endpoint: str,
        policy: RetryPolicy,
        cache: TokenCache = TOKEN_CACHE,
    ) -> None:
        self._credentials = credentials
        self._http = http
        self._endpoint = endpoint
        self._policy = policy
        self._cache = cache
        self._app = (endpoint, credentials.client_id, credentials.client_secret_sha256)
        self._key = (*self._app, credentials.refresh_token_sha256)

    async def access_token(self, scope: str | None = None) -> tuple[str, bool]:
        """The access token and whether it came from the cache (False: just minted): the selling
        partner's, or with ``scope`` the application's grantless token for that scope."""
        if scope is None:
            grant = {"grant_type": "refresh_token", "refresh_token": self._credentials.refresh_token}
        else:
            grant = {"grant_type": "client_credentials", "scope": scope}
        return await self._token(self._key_for(scope), grant)

    def invalidate(self, token: str, scope: str | None = None) -> None:
        """Amazon rejected ``token``: the next ``access_token(scope)`` mints a new one."""
        self._cache.invalidate(self._key_for(scope), token)

    async def grantless_token(self, scope: str) -> str:
        """An application token for grantless operations (e.g. ``sellingpartnerapi::notifications``)."""
        token, _ = await self.access_token(scope)
        return token

    def _key_for(self, scope: str | None) -> Hashable:
        if scope is None:
            return self._key
        if not scope or not isinstance(scope, str):
            raise ValueError("scope must be a non-empty string")
        return (*self._app, f"scope:{scope}")

    async def _token(self, key: Hashable, grant: dict[str, str]) -> tuple[str, bool]:
        token = self._cache.get(key)
        if token is not None:
            return token, True
        async with self._cache.lock(key):
            # Whoever held the lock before us has probably just refreshed it.
            token = self._cache.get(key)
            if token is not None:
                return token, True
            token, expires_in = await self._exchange(grant)
            self._cache.put(key, token, expires_in)
            return token, False

    async def _exchange(self, grant: dict[str, str]) -> tuple[str, float]:
        form = {**grant, "client_id": self._credentials.client_id, "client_secret": self._credentials.client_secret}
        policy = self._policy
        for attempt in range(1, policy.max_attempts + 1):
            last = attempt == policy.max_attempts
            try:
                response = await self._http.post(self._endpoint, data=form, headers={"accept": "application/json"})
            except httpx.TransportError as exc:
                if last or isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
                    raise AuthError(
                        None, type(exc).__name__, _scrub(str(exc) or "network error", form), OPERATION
                    ) from exc
                await policy.wait_before_retry(OPERATION, type(exc).__name__, attempt, policy.backoff(attempt))
                continue
            if (response.status_code == 429 or response.status_code >= 500) and not last:
                wait = retry_after_seconds(response)
                wait = policy.backoff(attempt) if wait is None else wait
                await policy.wait_before_retry(OPERATION, f"HTTP {response.status_code}", attempt, wait)
                continue
            return self._parse(response, form)
        raise AssertionError("unreachable")

    def _parse(self, response: httpx.Response, form: dict[str, str]) -> tuple[str, float]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.is_success:
            token, expires_in = body.get("access_token"), body.get("expires_in", 3600)
            if isinstance(token, str) and token and isinstance(expires_in, (int, float)) and expires_in > 0:
                return token, float(expires_in)
            raise AuthError(
                response.status_code,
                "malformed_response",
                "LWA answered without a usable access_token/expires_in",
                OPERATION,
            )
        code = body.get("error") if isinstance(body.get("error"), str) else None
        description = body.get("error_description")
        message = description if isinstance(description, str) and description else response.reason_phrase
        raise AuthError(
            response.status_code,
            code,
            _scrub(message, form),
            OPERATION,
            request_id=response.headers.get("x-amzn-RequestId"),
        )


def _scrub(text: str, form: dict[str, str]) -> str:
    """Belt and braces: LWA does not echo secrets in its messages, but nothing guarantees that."""
    for name in ("client_secret", "refresh_token"):
        if form.get(name):
            text = text.replace(form[name], "***")
    return text
