"""The emulator's FastAPI application."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import api, auth, control, downloads, notifications_api, tokens_api
from .config import EmulatorConfig
from .errors import error_response
from .runtime import Emulator


class RequestIdMiddleware:
    """Adds `x-amzn-RequestId` to every response, as Amazon does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-amzn-requestid", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(config: EmulatorConfig | None = None, clock: Callable[[], float] = time.time) -> FastAPI:
    app = FastAPI(
        title="SP-API emulator (Reports 2021-06-30, Notifications v1, Tokens 2021-03-01)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.emulator = Emulator(config or EmulatorConfig(), clock=clock)
    for module in (auth, api, notifications_api, tokens_api, downloads, control):
        app.include_router(module.router)
    # The regional endpoints: the same SP-API routes under /na, /eu and /fe, where a seller token of
    # another region is refused and marketplaces must be the region's (api.endpoint_region). LWA,
    # document downloads and the control API stay unprefixed, like Amazon's global LWA and S3.
    for prefix in api.REGION_PREFIXES:
        for module in (api, notifications_api, tokens_api):
            app.include_router(module.router, prefix=prefix)
    app.add_middleware(RequestIdMiddleware)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        # Unrouted paths and methods answer in Amazon's ErrorList shape, not FastAPI's.
        code = "NotFound" if exc.status_code == 404 else "InvalidInput"
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return error_response(400, "InvalidInput", "Invalid input.")

    return app
