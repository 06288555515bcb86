"""Pre-signed, expiring document URLs and the S3-like endpoint that serves them."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from .documents import served_bytes

if TYPE_CHECKING:
    from .runtime import Emulator
    from .state import Report

router = APIRouter()
DOCUMENT_CACHE_SIZE = 8  # generated documents kept in memory for repeated downloads
SIGNATURE = "X-Amz-Signature"
# Millisecond X-Amz-Date (real S3 uses seconds) so sub-second lifetimes at high speed stay exact.
DATE_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def _amz_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(DATE_FORMAT)[:-4] + "Z"


def _parse_amz_date(value: str) -> float:
    return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC).timestamp()


def _signature(key: bytes, document_id: str, params: dict[str, str]) -> str:
    canonical = document_id + "\n" + "&".join(f"{k}={params[k]}" for k in sorted(params) if k != SIGNATURE)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def presigned_url(emu: Emulator, request: Request, document_id: str, gzip_encoding: bool) -> str:
    config, now = emu.config, emu.clock()
    base = (config.public_base_url or str(request.base_url)).rstrip("/")
    params = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"EMULATORACCESSKEY/{datetime.fromtimestamp(now, UTC):%Y%m%d}/us-east-1/s3/aws4_request",
        "X-Amz-Date": _amz_date(now),
        "X-Amz-Expires": f"{config.url_ttl_seconds / config.speed:.6g}",
        "X-Amz-SignedHeaders": "host",
    }
    if gzip_encoding:
        params["response-content-encoding"] = "gzip"
    params[SIGNATURE] = _signature(emu.signing_key, document_id, params)
    return f"{base}/_documents/{quote(document_id)}?{urlencode(params)}"


def s3_error(status: int, code: str, message: str, **extra: str) -> Response:
    fields = {"Code": code, "Message": message, **extra, "RequestId": uuid.uuid4().hex[:16].upper()}
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{body}</Error>',
        status_code=status,
        media_type="application/xml",
    )


@router.get("/_documents/{document_id}")
async def download(request: Request, document_id: str) -> Response:
    emu: Emulator = request.app.state.emulator
    emu.stats.call("downloadDocument")
    response = _download(emu, request, document_id)
    emu.stats.response("downloadDocument", response.status_code)
    return response


def _download(emu: Emulator, request: Request, document_id: str) -> Response:
    params = dict(request.query_params)
    now = emu.clock()
    required = ("X-Amz-Date", "X-Amz-Expires", SIGNATURE)
    if any(name not in params for name in required):
        return s3_error(
            403,
            "AccessDenied",
            "Query-string authentication requires the X-Amz-Date, X-Amz-Expires and X-Amz-Signature parameters",
        )
    expected = _signature(emu.signing_key, document_id, params)
    if not hmac.compare_digest(expected, params[SIGNATURE]):
        return s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        )
    expires_at = _parse_amz_date(params["X-Amz-Date"]) + float(params["X-Amz-Expires"])
    if now > expires_at:
        return s3_error(
            403,
            "AccessDenied",
            "Request has expired",
            **{"X-Amz-Expires": params["X-Amz-Expires"], "Expires": _iso_z(expires_at), "ServerTime": _iso_z(now)},
        )
    report = emu.find_document(document_id)
    if report is None or not report.document_ready(now):
        return s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=document_id)

    data, content_type = _cached_bytes(emu, document_id, report)
    etag = hashlib.md5(data).hexdigest()
    # A truncated gzip stream is what a flaky transfer leaves behind: well-formed HTTP, corrupt content.
    if emu.roll(emu.config.truncate_rate):
        data = data[: max(1, int(len(data) * emu.faults.uniform(0.2, 0.9)))]
    headers = {"Content-Type": content_type, "Content-Length": str(len(data)), "ETag": f'"{etag}"'}
    if params.get("response-content-encoding") == "gzip" and report.gzip_served:
        headers["Content-Encoding"] = "gzip"
    return StreamingResponse(_chunks(data, emu.config.download_chunk_size), headers=headers)


def _cached_bytes(emu: Emulator, document_id: str, report: Report) -> tuple[bytes, str]:
    cache = emu.document_cache
    if document_id in cache:
        cache.move_to_end(document_id)
        return cache[document_id]
    cache[document_id] = served_bytes(report)
    while len(cache) > DOCUMENT_CACHE_SIZE:
        cache.popitem(last=False)
    return cache[document_id]


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def _iso_z(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
