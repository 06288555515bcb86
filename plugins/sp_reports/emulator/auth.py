"""Login with Amazon (LWA): the token endpoint and the access-token check of every SP-API call."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .config import Authorisation

if TYPE_CHECKING:
    from .runtime import Emulator

router = APIRouter()

NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"
GRANTLESS_SCOPES = frozenset(
    {NOTIFICATIONS_SCOPE, "sellingpartnerapi::client_credential:rotation", "sellingpartnerapi::migration"}
)


ACCESS_DENIED = "Access to requested resource is denied."


@dataclass
class IssuedToken:
    expires_at: float
    scope: str | None  # the grantless scope; None for a selling partner's (refresh_token) token
    # What the refresh token granted when this token was minted (None for a grantless token).
    authorisation: Authorisation | None = None


class TokenStore:
    def __init__(self) -> None:
        self.tokens: dict[str, IssuedToken] = {}

    def issue(
        self, now: float, ttl: float, scope: str | None = None, authorisation: Authorisation | None = None
    ) -> str:
        token = "Atza|" + secrets.token_urlsafe(64)
        self.tokens[token] = IssuedToken(now + ttl, scope, authorisation)
        return token

    def check(
        self, token: str | None, now: float, scope: str | None = None, region: str | None = None
    ) -> tuple[str | None, IssuedToken | None]:
        """(why a call with this access token is refused, in Amazon's words, or None; the token).

        `scope` None: the operation needs a selling partner's authorization (refresh_token grant);
        otherwise it is grantless and needs a client_credentials token of exactly that scope.
        `region` set: the call came to that region's endpoint, and a seller token of another region
        is refused (grantless tokens and the default seller's are valid in every region).
        """
        issued = self.tokens.get(token or "")
        # The two kinds never stand in for each other: Amazon denies a seller token on a grantless
        # operation just as it denies a grantless token on the Reports API.
        if issued is None or issued.scope != scope:
            return ACCESS_DENIED, issued
        if now >= issued.expires_at:
            return "The access token you provided has expired.", issued
        granted = issued.authorisation
        if region is not None and granted is not None and granted.region not in (None, region):
            return ACCESS_DENIED, issued
        return None, issued

    def denial(self, token: str | None, now: float, scope: str | None = None, region: str | None = None) -> str | None:
        return self.check(token, now, scope, region)[0]


def _lwa_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or "{}")
        except ValueError:
            return {}
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


@router.post("/auth/o2/token")
async def token(request: Request) -> JSONResponse:
    emu: Emulator = request.app.state.emulator
    emu.stats.call("lwaToken")
    response = await _token_response(emu, await _form(request))
    emu.stats.response("lwaToken", response.status_code)
    return response


async def _token_response(emu: Emulator, form: dict[str, str]) -> JSONResponse:
    config = emu.config
    grant_type = form.get("grant_type")
    if not grant_type:
        return _lwa_error(400, "invalid_request", "The request is missing a required parameter : grant_type")
    if grant_type not in ("refresh_token", "client_credentials"):
        return _lwa_error(
            400, "unsupported_grant_type", f"The authorization grant type is not supported : {grant_type}"
        )
    for name in ("client_id", "client_secret"):
        if not form.get(name):
            return _lwa_error(400, "invalid_request", f"The request is missing a required parameter : {name}")
    if form["client_id"] != config.client_id or not secrets.compare_digest(form["client_secret"], config.client_secret):
        return _lwa_error(401, "invalid_client", "Client authentication failed")

    ttl = config.token_ttl_seconds
    expires_in = int(ttl) if float(ttl).is_integer() else ttl
    if grant_type == "refresh_token":
        refresh = form.get("refresh_token")
        if not refresh:
            return _lwa_error(400, "invalid_request", "The request is missing a required parameter : refresh_token")
        # Every authorisation is compared, so the time taken does not tell which token was close.
        granted = [a for a in config.authorisations() if secrets.compare_digest(refresh, a.refresh_token)]
        if not granted:
            return _lwa_error(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
        access = emu.tokens.issue(emu.clock(), ttl, authorisation=granted[0])
        return JSONResponse(
            {"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": expires_in}
        )

    scope = form.get("scope")
    if not scope:
        return _lwa_error(400, "invalid_request", "The request is missing a required parameter : scope")
    if scope not in GRANTLESS_SCOPES:
        return _lwa_error(400, "invalid_scope", "An unknown scope was requested")
    access = emu.tokens.issue(emu.clock(), ttl, scope=scope)
    return JSONResponse({"access_token": access, "token_type": "bearer", "expires_in": expires_in})
