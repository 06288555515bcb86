"""Client secret, refresh token, access tokens and URL signatures never reach logs, errors or reprs."""

from __future__ import annotations

import io
import logging

import httpx
import pytest

from sp_reports.client import Credentials, SellingPartnerError

BASE = "/reports/2021-06-30"


def test_credentials_repr_masks(fake):
    creds = Credentials("my-client-id", fake.CLIENT_SECRET, fake.REFRESH_TOKEN)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "my-client-id" in text
        assert fake.CLIENT_SECRET not in text and fake.REFRESH_TOKEN not in text


@pytest.mark.parametrize("field", ["client_id", "client_secret", "refresh_token"])
def test_credentials_validation_does_not_echo(field):
    values = {"client_id": "id", "client_secret": "secret", "refresh_token": "token"}
    values[field] = "" if field != "client_id" else None
    with pytest.raises(ValueError, match=field):
        Credentials(**values)


async def test_no_secret_anywhere_in_a_rough_session(amazon, make_client, caplog, fake):
    caplog.set_level(logging.DEBUG)
    # Explicitly: Airflow's logging setup (imported by other tests) may have quieted httpx.
    caplog.set_level(logging.DEBUG, logger="httpx")
    client = make_client(max_attempts=3)
    errors: list[BaseException] = []

    async def attempt(coro):
        try:
            return await coro
        except SellingPartnerError as exc:
            errors.append(exc)

    expired = fake.error_response(403, "Unauthorized", "Access to requested resource is denied.",
                                  "The access token you provided has expired.")
    amazon.queue("POST", f"{BASE}/reports", fake.error_response(429, "QuotaExceeded", "slow"), httpx.Response(503),
                 expired, httpx.Response(202, json={"reportId": "R1"}))
    await attempt(client.create_report("GET_X", ["M1"]))
    amazon.route("GET", f"{BASE}/reports/R1", fake.error_response(403, "Unauthorized", "denied"))
    await attempt(client.get_report("R1"))
    amazon.queue("POST", f"{BASE}/reports", httpx.ReadTimeout("timed out"))
    await attempt(client.create_report("GET_X", ["M1"]))

    body = b"x" * 200_000
    amazon.document("D1", body)
    amazon.queue("GET", "/D1", httpx.Response(403))

    async def broken():
        yield body[:100_000]
        raise httpx.ReadError("reset")

    amazon.queue("GET", "/D1", httpx.Response(200, stream=_Stream(broken())))
    await attempt(client.download_document("D1", io.BytesIO()))
    amazon.document("D2")
    amazon.route("GET", "/D2", httpx.Response(500))
    await attempt(client.download_document("D2", io.BytesIO()))

    amazon.lwa_replies.append(httpx.Response(401, json={"error": "invalid_client", "error_description": "Client authentication failed"}))
    from sp_reports.client import TOKEN_CACHE

    TOKEN_CACHE.clear()
    await attempt(client.get_report("R1"))

    assert len(errors) == 4
    assert len(amazon.tokens_issued) >= 2
    secrets = [fake.CLIENT_SECRET, fake.REFRESH_TOKEN, fake.SIGNATURE, *amazon.tokens_issued]
    texts = [caplog.text, repr(client), repr(client.credentials)]
    for exc in errors:
        while exc is not None:
            texts += [str(exc), repr(exc)]
            exc = exc.__cause__ or exc.__context__
    assert "HTTP Request" in caplog.text and "retrying" in caplog.text  # the logs were really captured
    for secret in secrets:
        for text in texts:
            assert secret not in text


class _Stream(httpx.AsyncByteStream):
    def __init__(self, gen):
        self._gen = gen

    async def __aiter__(self):
        async for chunk in self._gen:
            yield chunk
