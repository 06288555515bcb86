"""Reading SP-API success responses: the JSON object an operation returns, or a typed error saying it did not."""

from __future__ import annotations

from typing import Any

import httpx

from .errors import SellingPartnerError
from .operations import Operation


def json_object(op: Operation, response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise unexpected(op, response, "the response body is not a JSON object")
    return body


def unexpected(op: Operation, response: httpx.Response, message: str) -> SellingPartnerError:
    # The message names what is missing, never the body: a success body may carry a token.
    return SellingPartnerError(
        response.status_code,
        "UnexpectedResponse",
        message,
        op.name,
        request_id=response.headers.get("x-amzn-RequestId"),
    )
