"""Restricted Data Tokens against the emulator (real HTTP on 127.0.0.1): restricted documents download with a token
naming them; tokens are cached process-wide and minted 50 documents to a token; no token ever reaches a log line,
a repr or an error."""

from __future__ import annotations

import asyncio
import gzip
import io
import logging

import httpx
import pytest

from sp_reports.client import (
    TOKEN_CACHE,
    AsyncSellingPartnerClient,
    AuthError,
    Credentials,
    RestrictedDataToken,
    SellingPartnerClient,
)
from sp_reports.client.restricted import document_resource
from sp_reports.emulator import testing

SPEED = 200.0
INVOICING = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING"
US = "ATVPDKIKX0DER"
RDT_PREFIX = "Atz.sprdt|"  # what the emulator's tokens look like
PII = ("buyer-name", "buyer-email", "ship-address-1", "bill-address-1")


@pytest.fixture(scope="module")
def emulator():
    with testing.running_emulator(speed=SPEED, processing_seconds=0, seed=11, rows_per_report=3) as running:
        yield running


@pytest.fixture
def emu(emulator):
    emulator.reset(config=True)
    return emulator


def client_for(emu, scale_quotas: float = SPEED) -> AsyncSellingPartnerClient:
    # The client's own waits are the conftest's instant ones: these tests count calls, not time.
    credentials = Credentials(**emu.credentials)
    return AsyncSellingPartnerClient(
        credentials, endpoint=emu.base_url, lwa_endpoint=emu.lwa_url, scale_quotas=scale_quotas
    )


def restricted_documents(emu, n: int) -> list[str]:
    """n DONE restricted reports' document ids, created behind the client's back (the setup is not under test)."""
    emu.config(enforce_quotas=False)
    with httpx.Client(base_url=emu.base_url, headers={"x-amz-access-token": emu.access_token()}) as api:
        ids = [
            api.post("/reports/2021-06-30/reports", json={"reportType": INVOICING, "marketplaceIds": [US]}).json()[
                "reportId"
            ]
            for _ in range(n)
        ]
        return [api.get(f"/reports/2021-06-30/reports/{i}").json()["reportDocumentId"] for i in ids]


async def download(client: AsyncSellingPartnerClient, document_id: str, **kwargs) -> bytes:
    sink = io.BytesIO()
    await client.download_document(document_id, sink, **kwargs)
    data = sink.getvalue()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def token_calls(emu) -> int:
    return emu.stats()["calls"]["createRestrictedDataToken"]


async def test_a_restricted_document_downloads_with_a_token_naming_it(emu):
    async with client_for(emu) as client:
        report_id = await client.create_report(INVOICING, [US])
        report = await client.get_report(report_id)
        assert report["processingStatus"] == "DONE"
        with pytest.raises(AuthError) as refused:  # the LWA token is not enough
            await client.get_report_document(report["reportDocumentId"])
        text = await download(client, report["reportDocumentId"], restricted=True)
    assert refused.value.status == 403 and refused.value.code == "Unauthorized"
    header, *rows = text.decode("utf-8").splitlines()
    assert set(PII) <= set(header.split("\t")) and len(rows) == 3
    assert token_calls(emu) == 1


async def test_a_cached_token_is_reused_by_every_client_of_the_seller(emu):
    (document_id,) = restricted_documents(emu, 1)
    async with client_for(emu) as first, client_for(emu) as second:
        one = await download(first, document_id, restricted=True)
        two = await download(first, document_id, restricted=True)
        three = await download(second, document_id, restricted=True)
    assert one == two == three
    assert token_calls(emu) == 1
    assert emu.stats()["by_operation_status"]["getReportDocument"] == {"200": 3}


async def test_documents_are_covered_fifty_to_a_token(emu):
    documents = restricted_documents(emu, 120)
    async with client_for(emu, scale_quotas=10_000) as client:
        assert await client.prefetch_restricted_documents(documents) == 3
        texts = await asyncio.gather(*(download(client, d, restricted=True) for d in documents))
        assert await client.prefetch_restricted_documents(documents) == 0  # all still cached
    assert all(text.startswith(b"amazon-order-id\t") for text in texts)
    assert token_calls(emu) == 3  # ceil(120 / 50), none more for the 120 downloads
    assert emu.stats()["by_operation_status"]["getReportDocument"] == {"200": 120}


async def test_a_rejected_cached_token_is_replaced_once(emu):
    mine, other = restricted_documents(emu, 2)
    async with client_for(emu) as client:
        wrong = await client.create_restricted_data_token([document_resource(other)])
        TOKEN_CACHE.put(client._restricted.key(document_resource(mine)), wrong.token, 3600)
        await download(client, mine, restricted=True)
    assert token_calls(emu) == 2
    assert emu.stats()["by_operation_status"]["getReportDocument"] == {"403": 1, "200": 1}


async def test_resources_are_checked_before_anything_is_sent(emu):
    async with client_for(emu) as client:
        for resources in ([], [document_resource(f"D{i}") for i in range(51)], [("PATCH", "/x")], [("GET", "x")]):
            with pytest.raises(ValueError):
                await client.create_restricted_data_token(resources)
    assert token_calls(emu) == 0


async def test_no_token_reaches_logs_reprs_or_errors(emu, caplog):
    caplog.set_level(logging.DEBUG)
    mine, other = restricted_documents(emu, 2)
    async with client_for(emu) as client:
        minted = await client.create_restricted_data_token([document_resource(mine)])
        await download(client, mine, restricted=True)
        await client.prefetch_restricted_documents([other])
        # A cached token refused (replaced), and a restricted call refused for good: Amazon's words, never a token.
        TOKEN_CACHE.put(client._restricted.key(document_resource(other)), minted.token, 3600)
        await download(client, other, restricted=True)
        with pytest.raises(AuthError) as refused:
            await client.get_report_document("amzn1.spdoc.1.4.na.not-mine", restricted=True)
    assert refused.value.status == 403
    assert isinstance(minted, RestrictedDataToken) and minted.token.startswith(RDT_PREFIX)
    assert minted.resources == (document_resource(mine),) and "'***'" in repr(minted)
    assert "Downloaded document" in caplog.text  # the downloads were logged ...
    for text in (repr(minted), str(minted), str(refused.value), repr(refused.value), caplog.text):
        assert RDT_PREFIX not in text  # ... but none of the tokens
    assert token_calls(emu) == 4


def test_the_blocking_client_has_the_restricted_methods(emu):
    documents = restricted_documents(emu, 2)
    with SellingPartnerClient(
        Credentials(**emu.credentials), endpoint=emu.base_url, lwa_endpoint=emu.lwa_url, scale_quotas=SPEED
    ) as client:
        assert client.prefetch_restricted_documents(documents) == 1
        sink = io.BytesIO()
        assert client.download_document(documents[0], sink, restricted=True).size == len(sink.getvalue()) > 0
        token = client.create_restricted_data_token([document_resource(documents[1])])
    assert token.resources == (document_resource(documents[1]),)
    assert token_calls(emu) == 2
