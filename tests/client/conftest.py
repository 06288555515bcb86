"""Fixtures for the client tests: a fake Amazon (LWA + SP-API + document storage) behind
httpx.MockTransport, instant sleeps, and clean process-wide caches."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sp_reports.client import BUCKETS, TOKEN_CACHE, AsyncSellingPartnerClient, Credentials
from sp_reports.client import retry as retry_module

CLIENT_SECRET = "super-secret-client-secret-value"
REFRESH_TOKEN = "Atzr|super-secret-refresh-token-value"
SIGNATURE = "deadbeefsignature0123456789"
LWA_URL = "https://api.amazon.com/auth/o2/token"
SP_HOST = "sellingpartnerapi-na.amazon.com"
STORAGE_HOST = "tortuga-prod-na.s3.amazonaws.com"

Reply = httpx.Response | Exception | Callable[[httpx.Request], Any]


class FakeAmazon:
    """Routes requests by host. LWA mints numbered tokens; SP-API and storage answers come from
    per-(method, path) queues (``queue``), falling back to ``default`` handlers."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.lwa_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []
        self.storage_requests: list[httpx.Request] = []
        self.tokens_issued: list[str] = []
        self.expires_in = 3600
        self.lwa_delay = 0.0
        self.lwa_replies: list[Reply] = []
        self.replies: dict[tuple[str, str], list[Reply]] = {}
        self.routes: dict[tuple[str, str], Reply] = {}
        self._counter = itertools.count(1)
        self.transport = httpx.MockTransport(self.handle)

    def queue(self, method: str, path: str, *replies: Reply) -> None:
        self.replies.setdefault((method, path), []).extend(replies)

    def route(self, method: str, path: str, reply: Reply) -> None:
        self.routes[(method, path)] = reply

    def document(self, document_id: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                 compression: str | None = None) -> None:
        """getReportDocument returns a freshly signed URL on each call; storage serves ``body``."""
        counter = itertools.count(1)

        def get_document(request: httpx.Request) -> httpx.Response:
            url = f"https://{STORAGE_HOST}/{document_id}?X-Amz-Expires=300&X-Amz-Signature={SIGNATURE}{next(counter)}"
            doc = {"reportDocumentId": document_id, "url": url}
            if compression:
                doc["compressionAlgorithm"] = compression
            return httpx.Response(200, json=doc)

        self.route("GET", f"/reports/2021-06-30/documents/{document_id}", get_document)
        if body is not None:
            self.route("GET", f"/{document_id}", lambda request: stored(body, headers))

    @property
    def document_requests(self) -> list[httpx.Request]:
        return [r for r in self.api_requests if r.url.path.startswith("/reports/2021-06-30/documents/")]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await request.aread()
        if str(request.url) == LWA_URL:
            self.lwa_requests.append(request)
            if self.lwa_delay:
                await asyncio.sleep(self.lwa_delay)
            if self.lwa_replies:
                return await _reply(self.lwa_replies.pop(0), request)
            token = f"Atza|access-token-{next(self._counter)}"
            self.tokens_issued.append(token)
            return httpx.Response(
                200, json={"access_token": token, "token_type": "bearer", "expires_in": self.expires_in,
                           "refresh_token": REFRESH_TOKEN}
            )
        if request.url.host == SP_HOST:
            self.api_requests.append(request)
        elif request.url.host == STORAGE_HOST:
            self.storage_requests.append(request)
        key = (request.method, request.url.path)
        if self.replies.get(key):
            return await _reply(self.replies[key].pop(0), request)
        if key in self.routes:
            return await _reply(self.routes[key], request)
        return httpx.Response(404, json={"errors": [{"code": "NotFound", "message": f"no fake for {key}"}]})


def stored(body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    """A storage response as a real transport delivers it: a stream. (``Response(content=...)``
    arrives already read, and a streamed read of it raises StreamConsumed.)"""
    headers = {"content-length": str(len(body)), **(headers or {})}
    return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))


async def _reply(reply: Reply, request: httpx.Request) -> httpx.Response:
    if isinstance(reply, Exception):
        raise reply
    if isinstance(reply, httpx.Response):
        return reply
    result = reply(request)
    return await result if asyncio.iscoroutine(result) else result


def error_response(status: int, code: str, message: str, details: str | None = None, **headers: str) -> httpx.Response:
    error = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return httpx.Response(status, json={"errors": [error]}, headers=headers)


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


@pytest.fixture(autouse=True)
def clean_process_state():
    TOKEN_CACHE.clear()
    BUCKETS.clear()
    yield
    TOKEN_CACHE.clear()
    BUCKETS.clear()


class VirtualClock:
    """Time that only moves when the client sleeps, so waits are exact and tests instant."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(autouse=True)
def sleeps(monkeypatch, clock) -> list[float]:
    """Every client wait is recorded and advances the quota buckets' virtual clock instead of
    sleeping. (Waits add up, which is exact for one caller; concurrent tests only look at the
    recorded waits.)"""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)
        clock.now += seconds
        await asyncio.sleep(0)

    monkeypatch.setattr(retry_module, "sleep", fake_sleep)
    monkeypatch.setattr(BUCKETS, "clock", clock)
    return recorded


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(client_id="amzn1.application-oa2-client.test", client_secret=CLIENT_SECRET,
                       refresh_token=REFRESH_TOKEN)


@pytest.fixture
def amazon() -> FakeAmazon:
    return FakeAmazon()


@pytest.fixture
async def make_client(amazon, credentials):
    clients: list[AsyncSellingPartnerClient] = []

    def make(**kwargs: Any) -> AsyncSellingPartnerClient:
        kwargs.setdefault("credentials", credentials)
        kwargs.setdefault("transport", amazon.transport)
        client = AsyncSellingPartnerClient(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client) -> AsyncSellingPartnerClient:
    return make_client()


@pytest.fixture
def fake() -> type:
    """Helpers for test modules (they cannot import conftest under importlib mode)."""

    class Helpers:
        FakeAmazon = FakeAmazon
        error_response = staticmethod(error_response)
        stored = staticmethod(stored)
        body_of = staticmethod(body_of)
        CLIENT_SECRET = CLIENT_SECRET
        REFRESH_TOKEN = REFRESH_TOKEN
        SIGNATURE = SIGNATURE
        LWA_URL = LWA_URL
        SP_HOST = SP_HOST
        STORAGE_HOST = STORAGE_HOST

    return Helpers
