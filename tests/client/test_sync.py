"""SellingPartnerClient: the blocking face for plain sync code."""

from __future__ import annotations

import asyncio
import inspect
import io
import threading

import httpx
import pytest

from sp_reports.client import AsyncSellingPartnerClient, NotFoundError, SellingPartnerClient

BASE = "/reports/2021-06-30"


@pytest.fixture
def sync_client(amazon, credentials):
    with SellingPartnerClient(credentials, transport=amazon.transport) as client:
        yield client


def test_methods_mirror_the_async_client():
    names = [n for n, f in inspect.getmembers(AsyncSellingPartnerClient, inspect.iscoroutinefunction)
             if not n.startswith("_") and n != "aclose"]
    # 9 Reports, cancel_if_in_queue, 6 Notifications, get_grantless_access_token, download_document, reserve_quota,
    # create_restricted_data_token, prefetch_restricted_documents
    assert len(names) == 21
    for name in names:
        method = getattr(SellingPartnerClient, name)
        assert not inspect.iscoroutinefunction(method)
        assert inspect.signature(method) == inspect.signature(getattr(AsyncSellingPartnerClient, name))


def test_workflow_from_plain_sync_code(amazon, sync_client, fake):
    amazon.route("POST", f"{BASE}/reports", httpx.Response(202, json={"reportId": "R1"}))
    amazon.route("GET", f"{BASE}/reports/R1", httpx.Response(200, json={
        "reportId": "R1", "reportType": "GET_X", "processingStatus": "DONE", "createdTime": "2024-01-01T00:00:00Z",
        "reportDocumentId": "D1",
    }))
    amazon.document("D1", b"a\tb\n")
    report_id = sync_client.create_report("GET_X", ["M1"])
    report = sync_client.get_report(report_id)
    sink = io.BytesIO()
    result = sync_client.download_document(report["reportDocumentId"], sink)
    assert sink.getvalue() == b"a\tb\n" and result.size == 4
    with pytest.raises(NotFoundError):
        sync_client.get_report_schedule("nope")


def test_refuses_to_run_inside_an_event_loop(sync_client):
    async def misuse():
        sync_client.get_report("R1")

    with pytest.raises(RuntimeError, match="use AsyncSellingPartnerClient"):
        asyncio.run(misuse())


def test_closed_client(amazon, credentials):
    client = SellingPartnerClient(credentials, transport=amazon.transport)
    client.close()
    client.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        client.get_report("R1")


def test_sync_clients_share_the_token_cache_across_loops_and_threads(amazon, credentials):
    amazon.route("GET", f"{BASE}/reports/R1", httpx.Response(200, json={}))
    amazon.lwa_delay = 0.01
    with SellingPartnerClient(credentials, transport=amazon.transport) as first:
        first.get_report("R1")
    failures = []

    def worker():
        try:
            with SellingPartnerClient(credentials, transport=amazon.transport) as client:
                client.get_report("R1")
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(amazon.lwa_requests) == 1


def test_one_client_used_from_several_threads(amazon, sync_client):
    amazon.route("GET", f"{BASE}/reports/R1", httpx.Response(200, json={"reportId": "R1"}))
    results = []
    threads = [threading.Thread(target=lambda: results.append(sync_client.get_report("R1"))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"reportId": "R1"}] * 5


def test_repr(sync_client, fake):
    assert repr(sync_client).startswith("SellingPartnerClient(endpoint='https://sellingpartnerapi-na.amazon.com'")
    assert fake.CLIENT_SECRET not in repr(sync_client)
