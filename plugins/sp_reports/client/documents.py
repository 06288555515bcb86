"""Streaming a report document from its pre-signed URL into a caller's sink."""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import DocumentDownloadError
from .redaction import install_httpx_log_redaction, redact_url
from .retry import RetryPolicy

logger = logging.getLogger("sp_reports.client")

OPERATION = "downloadDocument"
CHUNK_SIZE = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"

install_httpx_log_redaction()


@dataclass(frozen=True)
class DocumentDownload:
    document_id: str
    compressed: bool  # the body starts with gzip's magic bytes, whatever compressionAlgorithm claimed
    content_type: str | None  # the Content-Type header as served, e.g. "text/plain;charset=Cp1252"
    charset: str | None  # its charset parameter verbatim ("Cp1252", "windows-31j"); None if absent
    size: int  # bytes written to the sink
    sha256: str  # hex digest of those bytes


class _Retry(Exception):
    """One download attempt failed in a way a later attempt may not."""

    def __init__(self, reason: str, fresh_url: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fresh_url = fresh_url


class _Sink:
    """The caller's sink, rewound to where it started when an attempt must be redone."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        seekable = getattr(sink, "seekable", None)
        self._start = sink.tell() if callable(seekable) and seekable() else None
        self.dirty = False

    async def write(self, chunk: bytes) -> None:
        self.dirty = True
        await _maybe_await(self._sink.write(chunk))

    async def rewind(self, document_id: str, cause: BaseException) -> None:
        if not self.dirty:
            return
        if self._start is None:
            raise DocumentDownloadError(
                None,
                "SinkNotRewindable",
                f"document {document_id}: the download must restart but bytes were already written and the "
                "sink is not seekable (a retry needs seekable(), seek() and truncate())",
                OPERATION,
            ) from cause
        await _maybe_await(self._sink.seek(self._start))
        await _maybe_await(self._sink.truncate())
        self.dirty = False


async def download_document(
    http: httpx.AsyncClient,
    get_report_document: Callable[[str], Awaitable[dict[str, Any]]],
    document_id: str,
    sink: Any,
    policy: RetryPolicy,
) -> DocumentDownload:
    """See ``AsyncSellingPartnerClient.download_document``."""
    out = _Sink(sink)
    url: str | None = None
    for attempt in range(1, policy.max_attempts + 1):
        if url is None:
            url = _document_url(document_id, await get_report_document(document_id))
        try:
            return await _stream(http, url, document_id, out)
        except _Retry as exc:
            if attempt == policy.max_attempts:
                raise DocumentDownloadError(
                    None,
                    "DownloadFailed",
                    f"document {document_id} from {redact_url(url)}: {exc.reason} (after {attempt} attempts)",
                    OPERATION,
                ) from exc.__cause__
            await out.rewind(document_id, exc)
            if exc.fresh_url:
                # Pre-signed URLs live 5 minutes; a new one costs a getReportDocument, no backoff needed.
                logger.warning(
                    "%s: %s for document %s; fetching a fresh URL (attempt %d/%d)",
                    OPERATION,
                    exc.reason,
                    document_id,
                    attempt,
                    policy.max_attempts,
                )
                url = None
            else:
                await policy.wait_before_retry(OPERATION, exc.reason, attempt, policy.backoff(attempt))
    raise AssertionError("unreachable")


async def _stream(http: httpx.AsyncClient, url: str, document_id: str, sink: _Sink) -> DocumentDownload:
    hasher = hashlib.sha256()
    size = 0
    head = b""
    # The storage host is not SP-API: no access token goes there (the URL carries its own
    # signature). "identity" asks for the stored bytes, so gzip stays gzip and sizes match.
    try:
        async with http.stream("GET", url, headers={"accept-encoding": "identity"}) as response:
            status = response.status_code
            if status == 403:
                raise _Retry("HTTP 403 (the pre-signed URL has probably expired)", fresh_url=True)
            if status == 429 or status >= 500:
                raise _Retry(f"HTTP {status}")
            if not response.is_success:
                raise DocumentDownloadError(
                    status, None, f"document {document_id} from {redact_url(url)}: {response.reason_phrase}", OPERATION
                )
            expected = _content_length(response)
            content_type = response.headers.get("content-type")
            # aiter_raw: never decode Content-Encoding; the sink gets the bytes exactly as served.
            async for chunk in response.aiter_raw(CHUNK_SIZE):
                if len(head) < 2:
                    head += chunk[: 2 - len(head)]
                hasher.update(chunk)
                size += len(chunk)
                await sink.write(chunk)
    except httpx.TransportError as exc:
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
            raise DocumentDownloadError(
                None, type(exc).__name__, f"document {document_id} from {redact_url(url)}: {exc}", OPERATION
            ) from exc
        raise _Retry(f"{type(exc).__name__} after {size} bytes") from exc
    if expected is not None and size != expected:
        raise _Retry(f"body has {size} bytes but Content-Length said {expected}")
    logger.info(
        "Downloaded document %s: %d bytes, %s, from %s",
        document_id,
        size,
        "gzip" if head == GZIP_MAGIC else "not compressed",
        redact_url(url),
    )
    return DocumentDownload(
        document_id=document_id,
        compressed=head == GZIP_MAGIC,
        content_type=content_type,
        charset=charset_of(content_type),
        size=size,
        sha256=hasher.hexdigest(),
    )


def charset_of(content_type: str | None) -> str | None:
    """The charset parameter, verbatim: Amazon serves Java names such as "Cp1252" and "windows-31j",
    and mapping them to Python codecs is the parser's business."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _document_url(document_id: str, document: dict[str, Any]) -> str:
    url = document.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise DocumentDownloadError(
            None, "NoUrl", f"getReportDocument({document_id}) returned no usable url", OPERATION
        )
    return url


def _content_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _maybe_await(result: Any) -> Any:
    # Sinks may be plain files or async file objects (e.g. aiofiles); both are accepted.
    return await result if inspect.isawaitable(result) else result
