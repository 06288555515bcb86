"""download_document: streaming, gzip detection, charset, fresh URLs, restarts, bounded memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import tracemalloc

import httpx
import pytest

from sp_reports.client import DocumentDownload, DocumentDownloadError, redact_url
from sp_reports.client.documents import CHUNK_SIZE, charset_of

TSV = "sku\tprice\nÄ-1\t9.99\n".encode("cp1252")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_gzip_detected_by_magic_bytes_though_not_labelled(amazon, client):
    body = gzip.compress(TSV)
    amazon.document("D1", body, headers={"content-type": "text/plain;charset=Cp1252"})  # no compressionAlgorithm
    sink = io.BytesIO()
    result = await client.download_document("D1", sink)
    assert result == DocumentDownload("D1", True, "text/plain;charset=Cp1252", "Cp1252", len(body), sha(body))
    assert sink.getvalue() == body  # gzip stays gzip


async def test_plain_body_labelled_gzip_is_not_compressed(amazon, client):
    amazon.document("D1", TSV, headers={"content-type": "text/tab-separated-values; charset=windows-31j"},
                    compression="GZIP")
    sink = io.BytesIO()
    result = await client.download_document("D1", sink)
    assert (result.compressed, result.charset, result.size, result.sha256) == (False, "windows-31j", len(TSV), sha(TSV))
    assert sink.getvalue() == TSV


async def test_no_content_type_and_empty_body(amazon, client):
    amazon.document("D1", b"")
    result = await client.download_document("D1", io.BytesIO())
    assert (result.compressed, result.content_type, result.charset, result.size) == (False, None, None, 0)


@pytest.mark.parametrize(("header", "charset"), [
    ("text/plain;charset=Cp1252", "Cp1252"),
    ('text/plain; Charset="UTF-8"', "UTF-8"),
    ("text/plain", None),
    ("text/plain; charset=", None),
    (None, None),
])
def test_charset_parsing(header, charset):
    assert charset_of(header) == charset


async def test_storage_request_carries_no_sp_api_token(amazon, client):
    amazon.document("D1", TSV)
    await client.download_document("D1", io.BytesIO())
    (storage,) = amazon.storage_requests
    assert "x-amz-access-token" not in storage.headers
    assert storage.headers["accept-encoding"] == "identity"  # the stored bytes, not a re-encoding
    assert storage.url.params["X-Amz-Signature"].startswith("deadbeef")
    assert "x-amz-access-token" in amazon.document_requests[0].headers


async def test_content_encoding_is_not_undone(amazon, client):
    body = gzip.compress(TSV)
    amazon.document("D1", body, headers={"content-encoding": "gzip"})
    sink = io.BytesIO()
    result = await client.download_document("D1", sink)
    assert result.compressed and sink.getvalue() == body


async def test_expired_url_gets_a_fresh_one(amazon, client, sleeps):
    amazon.document("D1", TSV)
    expired = httpx.Response(403, text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
    amazon.queue("GET", "/D1", expired)
    sink = io.BytesIO()
    result = await client.download_document("D1", sink)
    assert result.size == len(TSV) and sink.getvalue() == TSV
    assert len(amazon.document_requests) == 2
    first, second = (r.url.params["X-Amz-Signature"] for r in amazon.storage_requests)
    assert first != second
    assert sleeps == []  # no backoff needed for a new URL


async def test_always_expired_gives_up(amazon, make_client):
    client = make_client(max_attempts=3)
    amazon.document("D1")
    amazon.route("GET", "/D1", httpx.Response(403))
    with pytest.raises(DocumentDownloadError) as info:
        await client.download_document("D1", io.BytesIO())
    assert len(amazon.document_requests) == 3
    assert "after 3 attempts" in str(info.value)


def failing_stream(prefix: bytes, error: Exception):
    async def stream():
        yield prefix
        raise error

    return httpx.Response(200, content=stream())


async def test_network_error_mid_stream_restarts_and_rewinds_sink(amazon, client, sleeps):
    body = bytes(range(256)) * 2000
    amazon.document("D1", body)
    amazon.queue("GET", "/D1", failing_stream(body[:100_000], httpx.ReadError("connection reset")))
    sink = io.BytesIO()
    sink.write(b"kept-prefix:")  # the sink is rewound to where the download started, not to 0
    result = await client.download_document("D1", sink)
    assert sink.getvalue() == b"kept-prefix:" + body
    assert (result.size, result.sha256) == (len(body), sha(body))
    assert len(amazon.storage_requests) == 2
    assert len(amazon.document_requests) == 1  # the URL was still good
    assert len(sleeps) == 1  # backoff before the restart


async def test_mid_stream_failure_with_unseekable_sink(amazon, client):
    class WriteOnly:
        def __init__(self):
            self.data = b""

        def write(self, chunk):
            self.data += chunk

    amazon.document("D1", TSV)
    # More than one chunk, so bytes reached the sink before the failure.
    amazon.queue("GET", "/D1", failing_stream(b"x" * (CHUNK_SIZE + 10), httpx.ReadError("reset")))
    with pytest.raises(DocumentDownloadError, match="not seekable"):
        await client.download_document("D1", WriteOnly())


async def test_unseekable_sink_is_fine_when_nothing_was_written(amazon, client):
    class WriteOnly:
        data = b""

        def write(self, chunk):
            self.data += chunk

    amazon.document("D1", TSV)
    amazon.queue("GET", "/D1", httpx.Response(503), httpx.ConnectError("refused"))
    sink = WriteOnly()
    await client.download_document("D1", sink)
    assert sink.data == TSV


async def test_async_sink(amazon, client):
    class AsyncSink:
        def __init__(self):
            self.buffer = io.BytesIO()

        async def write(self, chunk):
            self.buffer.write(chunk)

    amazon.document("D1", TSV)
    sink = AsyncSink()
    await client.download_document("D1", sink)
    assert sink.buffer.getvalue() == TSV


async def test_content_length_mismatch(amazon, make_client, fake):
    client = make_client(max_attempts=2)
    amazon.document("D1")
    amazon.route("GET", "/D1", lambda request: fake.stored(TSV, {"content-length": "9999"}))
    with pytest.raises(DocumentDownloadError, match="Content-Length said 9999"):
        await client.download_document("D1", io.BytesIO())


async def test_storage_404_fails_at_once_without_the_signature(amazon, client, fake):
    amazon.document("D1")
    amazon.route("GET", "/D1", httpx.Response(404))
    with pytest.raises(DocumentDownloadError) as info:
        await client.download_document("D1", io.BytesIO())
    assert info.value.status == 404
    assert f"https://{fake.STORAGE_HOST}/D1" in str(info.value)
    assert fake.SIGNATURE not in str(info.value) and "X-Amz" not in str(info.value)
    assert len(amazon.storage_requests) == 1


async def test_large_body_streams_with_bounded_memory(amazon, client):
    total_chunks, piece = 512, bytes(range(256)) * 256  # 64 KiB pieces, 32 MiB in all
    produced = 0
    expected = hashlib.sha256()
    for _ in range(total_chunks):
        expected.update(piece)

    async def body():
        nonlocal produced
        for _ in range(total_chunks):
            produced += 1
            yield piece

    class CountingSink:
        def __init__(self):
            self.writes = []  # (bytes in this write, pieces produced so far)

        def write(self, chunk):
            self.writes.append((len(chunk), produced))

    amazon.document("D1")
    amazon.route("GET", "/D1", lambda request: httpx.Response(200, content=body()))
    sink = CountingSink()
    tracemalloc.start()
    try:
        result = await client.download_document("D1", sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == total_chunks * len(piece)
    assert result.sha256 == expected.hexdigest()
    assert max(size for size, _ in sink.writes) <= CHUNK_SIZE
    # Written as it arrives: the first write happened before the server had produced much.
    assert sink.writes[0][1] <= 2
    assert len(sink.writes) >= total_chunks
    assert peak < 4 * 1024 * 1024  # a few chunks, never the 32 MiB body


async def test_httpx_request_log_lines_lose_the_signature(amazon, client, caplog, fake):
    caplog.set_level(logging.DEBUG)
    # Explicitly: Airflow's logging setup (imported by other tests) may have quieted httpx.
    caplog.set_level(logging.DEBUG, logger="httpx")
    amazon.document("D1", TSV)
    await client.download_document("D1", io.BytesIO())
    assert f"GET https://{fake.STORAGE_HOST}/D1 " in caplog.text  # httpx's line is still there...
    assert fake.SIGNATURE not in caplog.text  # ...without the query string
    assert "X-Amz-Signature" not in caplog.text


def test_redact_url():
    url = "https://user:pw@bucket.s3.amazonaws.com/a/b.txt?X-Amz-Signature=abc&X-Amz-Expires=300#frag"
    assert redact_url(url) == "https://bucket.s3.amazonaws.com/a/b.txt"
    assert redact_url(httpx.URL(url)) == "https://bucket.s3.amazonaws.com/a/b.txt"
