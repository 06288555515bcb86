"""Typed errors raised by the client, and their construction from SP-API error responses."""

from __future__ import annotations

from typing import Any

import httpx


class SellingPartnerError(Exception):
    """An SP-API call failed for good (after whatever retries applied).

    Attributes come from Amazon's ``ErrorList`` (the first error; all of them are in ``errors``)
    and the ``x-amzn-RequestId`` header, which Amazon support asks for. Messages never contain
    secrets or pre-signed URL query strings.
    """

    def __init__(
        self,
        status: int | None,
        code: str | None,
        message: str,
        operation: str,
        request_id: str | None = None,
        details: str | None = None,
    ) -> None:
        # Passing every field to Exception keeps the error picklable (Airflow may ship it across processes).
        super().__init__(status, code, message, operation, request_id, details)
        self.status = status
        self.code = code
        self.message = message
        self.operation = operation
        self.request_id = request_id
        self.details = details
        self.errors: list[dict[str, Any]] = []

    def __str__(self) -> str:
        what = " ".join(part for part in (f"HTTP {self.status}" if self.status else None, self.code) if part)
        text = (
            f"{self.operation} failed: {what}: {self.message}" if what else f"{self.operation} failed: {self.message}"
        )
        if self.details:
            text += f" [{self.details}]"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class AuthError(SellingPartnerError):
    """Login with Amazon refused the credentials (``code`` is LWA's, e.g. ``invalid_grant``), or
    SP-API still answered 401/403 after a fresh access token."""


class QuotaExceededError(SellingPartnerError):
    """HTTP 429 on every attempt."""


class NotFoundError(SellingPartnerError):
    """HTTP 404."""


class InvalidInputError(SellingPartnerError):
    """HTTP 400: Amazon rejected the request's content."""


class ConflictError(SellingPartnerError):
    """HTTP 409: the request conflicts with what exists (e.g. a second destination for one queue)."""


class ServerError(SellingPartnerError):
    """HTTP 5xx on every attempt."""


class NetworkError(SellingPartnerError):
    """No HTTP response (connection refused, timeout, reset ...) on every attempt."""


class OutcomeUnknownError(NetworkError):
    """A non-idempotent request (createReport) was sent but its response was lost.

    Amazon may or may not have accepted it; resubmitting could create a duplicate report, so the
    client does not retry. Find out by listing recent reports (``get_reports``) and resume from there.
    """


class DocumentDownloadError(SellingPartnerError):
    """Downloading a report document from its pre-signed URL failed."""


def is_transient(exc: SellingPartnerError) -> bool:
    """Whether asking again later may succeed: throttling, Amazon's or LWA's 5xx, no response at all.
    Everything else (4xx, refused credentials after a fresh token) needs a person or a new request."""
    if isinstance(exc, (QuotaExceededError, ServerError, NetworkError)):
        return True
    # LWA's own outages surface as AuthError too (it is the login that failed), without a 4xx verdict.
    return isinstance(exc, AuthError) and (exc.status is None or exc.status == 429 or exc.status >= 500)


_BY_STATUS: dict[int, type[SellingPartnerError]] = {
    400: InvalidInputError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    429: QuotaExceededError,
}


def error_class_for(status: int) -> type[SellingPartnerError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, SellingPartnerError)


def error_list(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``errors`` of an SP-API ``ErrorList`` body; empty when the body is something else."""
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [e for e in errors if isinstance(e, dict)]


def error_from_response(operation: str, response: httpx.Response) -> SellingPartnerError:
    errors = error_list(response)
    first = errors[0] if errors else {}
    cls = error_class_for(response.status_code)
    # Without an ErrorList (e.g. an HTML page from a load balancer) the reason phrase is the only
    # safe message: the body could be anything, including a copy of our request.
    err = cls(
        response.status_code,
        _str_or_none(first.get("code")),
        _str_or_none(first.get("message")) or response.reason_phrase or "no error message",
        operation,
        request_id=response.headers.get("x-amzn-RequestId"),
        details=_str_or_none(first.get("details")),
    )
    err.errors = errors
    return err


def says_token_expired(response: httpx.Response) -> bool:
    """Amazon answers an expired access token with 403 ``Unauthorized`` + "...token ... has expired"."""
    for error in error_list(response):
        text = f"{error.get('message', '')} {error.get('details', '')}".lower()
        if error.get("code") == "Unauthorized" and "expired" in text:
            return True
    return False


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
