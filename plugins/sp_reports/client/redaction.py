"""Keeping pre-signed URLs' signatures out of logs and messages."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import httpx


def redact_url(url: str | httpx.URL) -> str:
    """``url`` without its query string, fragment and user info.

    A report document URL is pre-signed: whoever holds its query string can download the
    report until it expires, so only scheme, host and path are fit for logs and errors.
    """
    parts = urlsplit(str(url))
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class _RedactHttpxUrls(logging.Filter):
    """Rewrites httpx's own ``HTTP Request: GET <url> ...`` INFO lines to use redacted URLs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args)
        return True


def install_httpx_log_redaction() -> None:
    """httpx logs every request's full URL at INFO on the ``httpx`` logger, and Airflow task logs
    run at INFO, so a document download would print its signed URL. A filter on that logger
    (rather than raising its level) keeps httpx's request lines, which are useful when debugging,
    minus the query strings. Filters on a logger apply before records propagate to any handler.
    Idempotent.
    """
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactHttpxUrls) for f in logger.filters):
        logger.addFilter(_RedactHttpxUrls())
