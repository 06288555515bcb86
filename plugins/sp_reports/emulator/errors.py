"""Amazon's ErrorList responses."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """Raised by operation handlers; becomes an ErrorList response with `status`."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def invalid_input(message: str, details: str | None = None) -> ApiError:
    return ApiError(400, "InvalidInput", message, details)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFound", message)


def error_body(code: str, message: str, details: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:  # Amazon sends some errors with an empty details string
        error["details"] = details
    return {"errors": [error]}


def error_response(status: int, code: str, message: str, details: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status)


def api_error_response(error: ApiError) -> JSONResponse:
    return error_response(error.status, error.code, error.message, error.details)
