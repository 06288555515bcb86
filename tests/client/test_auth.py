"""Login with Amazon: exchange, caching, sharing, coalescing, refresh on expiry, failures."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest

from sp_reports.client import TOKEN_CACHE, AuthError, Credentials, TokenCache, USER_AGENT
from sp_reports.client.auth import LwaAuth
from sp_reports.client.retry import RetryPolicy

REPORT = {"reportId": "R1", "reportType": "T", "processingStatus": "DONE", "createdTime": "2024-01-01T00:00:00Z"}
GET_R1 = ("GET", "/reports/2021-06-30/reports/R1")


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


async def test_refresh_token_exchange_and_headers(amazon, client, credentials):
    amazon.route(*GET_R1, httpx.Response(200, json=REPORT))
    assert await client.get_report("R1") == REPORT

    (lwa,) = amazon.lwa_requests
    assert lwa.method == "POST"
    assert lwa.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(lwa) == {
        "grant_type": "refresh_token",
        "refresh_token": credentials.refresh_token,
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
    }
    (api,) = amazon.api_requests
    assert api.headers["x-amz-access-token"] == amazon.tokens_issued[0]
    assert api.headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("sp-reports/") and USER_AGENT.endswith("(Language=Python)")


async def test_lwa_endpoint_override(amazon, make_client):
    seen = []
    amazon.route(*GET_R1, httpx.Response(200, json=REPORT))

    async def handler(request):
        if request.url.path == "/auth/o2/token":
            seen.append(str(request.url))
            return httpx.Response(200, json={"access_token": "Atza|x", "expires_in": 3600})
        return await amazon.handle(request)

    client = make_client(lwa_endpoint="http://127.0.0.1:9999/auth/o2/token", transport=httpx.MockTransport(handler))
    await client.get_report("R1")
    assert seen == ["http://127.0.0.1:9999/auth/o2/token"]


async def test_token_is_cached_until_shortly_before_expiry(amazon, client, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(TOKEN_CACHE, "_clock", lambda: now[0])
    amazon.route(*GET_R1, httpx.Response(200, json=REPORT))
    amazon.expires_in = 3600

    await client.get_report("R1")
    now[0] += 3500  # within the hour, but the 60 s safety margin is not reached yet
    await client.get_report("R1")
    assert len(amazon.lwa_requests) == 1
    now[0] += 41  # 3541 s: less than a minute left, refresh now rather than risk a 403
    await client.get_report("R1")
    assert len(amazon.lwa_requests) == 2
    tokens = [r.headers["x-amz-access-token"] for r in amazon.api_requests]
    assert tokens == [amazon.tokens_issued[0], amazon.tokens_issued[0], amazon.tokens_issued[1]]


def test_token_cache_margin_for_short_lived_tokens():
    now = [0.0]
    cache = TokenCache(clock=lambda: now[0])
    cache.put("k", "t", expires_in=20)  # margin = min(60, 20/10) = 2 s
    now[0] = 17.9
    assert cache.get("k") == "t"
    now[0] = 18.0
    assert cache.get("k") is None


def test_token_cache_invalidate_only_the_rejected_token():
    cache = TokenCache()
    cache.put("k", "new", 3600)
    cache.invalidate("k", "old")  # a late 403 for a token someone already replaced
    assert cache.get("k") == "new"
    cache.invalidate("k", "new")
    assert cache.get("k") is None


async def test_cache_is_shared_across_client_instances(amazon, make_client, credentials):
    amazon.route(*GET_R1, httpx.Response(200, json=REPORT))
    for _ in range(3):
        await make_client().get_report("R1")
    assert len(amazon.lwa_requests) == 1

    other = Credentials(credentials.client_id, credentials.client_secret, "Atzr|another-seller")
    await make_client(credentials=other).get_report("R1")
    assert len(amazon.lwa_requests) == 2  # another selling partner: another token

    wrong_secret = Credentials(credentials.client_id, "not-the-secret", credentials.refresh_token)
    await make_client(credentials=wrong_secret).get_report("R1")
    assert len(amazon.lwa_requests) == 3  # never borrows the token minted with the right secret


async def test_concurrent_refreshes_coalesce(amazon, make_client):
    amazon.route(*GET_R1, httpx.Response(200, json=REPORT))
    amazon.lwa_delay = 0.05  # keep the first exchange in flight while the others arrive
    clients = [make_client() for _ in range(5)]
    await asyncio.gather(*(c.get_report("R1") for c in clients for _ in range(3)))
    assert len(amazon.lwa_requests) == 1
    assert {r.headers["x-amz-access-token"] for r in amazon.api_requests} == {amazon.tokens_issued[0]}


def test_coalescing_locks_survive_event_loops(amazon, credentials):
    """Locks are per event loop: a second loop (e.g. the sync face's) must not trip over a lock
    bound to the first, already closed loop."""
    from sp_reports.client import AsyncSellingPartnerClient

    amazon.route(*GET_R1, httpx.Response(200, json=REPORT))
    amazon.lwa_delay = 0.01

    async def burst():
        async with AsyncSellingPartnerClient(credentials, transport=amazon.transport) as client:
            await asyncio.gather(*(client.get_report("R1") for _ in range(4)))

    asyncio.run(burst())
    TOKEN_CACHE.clear()
    asyncio.run(burst())
    assert len(amazon.lwa_requests) == 2


async def test_expired_token_403_refreshes_once_and_retries(amazon, client, fake, caplog):
    expired = fake.error_response(403, "Unauthorized", "Access to requested resource is denied.",
                                  "The access token you provided has expired.")
    amazon.queue(*GET_R1, expired, httpx.Response(200, json=REPORT))
    assert await client.get_report("R1") == REPORT
    assert len(amazon.lwa_requests) == 2
    assert [r.headers["x-amz-access-token"] for r in amazon.api_requests] == amazon.tokens_issued
    assert "getReport: HTTP 403 (refreshing the access token) on attempt 1/6" in caplog.text


async def test_403_with_cached_token_refreshes_once_then_fails(amazon, client, fake):
    amazon.route(*GET_R1, httpx.Response(200, json=REPORT))
    await client.get_report("R1")  # token now cached
    denied = fake.error_response(403, "Unauthorized", "Access to requested resource is denied.")
    amazon.queue(*GET_R1, denied, denied)
    with pytest.raises(AuthError) as info:
        await client.get_report("R1")
    assert info.value.status == 403 and info.value.code == "Unauthorized"
    assert len(amazon.lwa_requests) == 2  # exactly one refresh
    assert len(amazon.api_requests) == 3


async def test_403_with_a_fresh_token_is_not_retried(amazon, client, fake):
    amazon.queue(*GET_R1, fake.error_response(403, "Unauthorized", "Access to requested resource is denied."))
    with pytest.raises(AuthError):
        await client.get_report("R1")
    assert len(amazon.lwa_requests) == 1
    assert len(amazon.api_requests) == 1


async def test_lwa_rejection_is_auth_error_with_lwa_code(amazon, client, fake):
    amazon.lwa_replies.append(httpx.Response(
        400, json={"error": "invalid_grant", "error_description": "The request has an invalid grant parameter : refresh_token"}
    ))
    with pytest.raises(AuthError) as info:
        await client.get_report("R1")
    err = info.value
    assert (err.status, err.code, err.operation) == (400, "invalid_grant", "LWA token exchange")
    assert str(err) == (
        "LWA token exchange failed: HTTP 400 invalid_grant: The request has an invalid grant parameter : refresh_token"
    )
    assert amazon.api_requests == []


async def test_lwa_error_echoing_a_secret_is_scrubbed(amazon, client, fake):
    amazon.lwa_replies.append(httpx.Response(
        401, json={"error": "invalid_client", "error_description": f"bad secret {fake.CLIENT_SECRET}"}
    ))
    with pytest.raises(AuthError) as info:
        await client.get_report("R1")
    assert fake.CLIENT_SECRET not in str(info.value)
    assert fake.CLIENT_SECRET not in repr(info.value)


async def test_lwa_transient_failures_are_retried(amazon, client, sleeps):
    amazon.route(*GET_R1, httpx.Response(200, json=REPORT))
    amazon.lwa_replies.extend([httpx.Response(503), httpx.ConnectError("refused")])
    assert await client.get_report("R1") == REPORT
    assert len(amazon.lwa_requests) == 3
    assert len(sleeps) == 2


async def test_grantless_token(amazon, credentials):
    async with httpx.AsyncClient(transport=amazon.transport) as http:
        auth = LwaAuth(credentials, http, "https://api.amazon.com/auth/o2/token", RetryPolicy())
        token = await auth.grantless_token("sellingpartnerapi::notifications")
        assert token == await auth.grantless_token("sellingpartnerapi::notifications")
    (lwa,) = amazon.lwa_requests
    assert form(lwa) == {
        "grant_type": "client_credentials",
        "scope": "sellingpartnerapi::notifications",
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
    }


async def test_grantless_token_via_client(amazon, client):
    token = await client.get_grantless_access_token("sellingpartnerapi::migration")
    assert token == amazon.tokens_issued[0]
    assert "scope=sellingpartnerapi%3A%3Amigration" in amazon.lwa_requests[0].content.decode()
