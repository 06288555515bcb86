"""Restricted Data Tokens the Tokens API has issued: whose they are, which resources they name, until when.

Like LWA access tokens they outlive a reset of the emulator's state and their lifetime is not scaled by `speed`
(the client reads `expiresIn` and must be able to trust it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .auth import ACCESS_DENIED
from .config import Authorisation

TTL_SECONDS = 3600
Resource = tuple[str, str]  # (HTTP method, path)


@dataclass(frozen=True)
class RestrictedToken:
    authorisation: Authorisation  # the seller (and region) whose LWA token asked for it
    resources: frozenset[Resource]
    expires_at: float

    def names(self, method: str, path: str) -> bool:
        return (method, path) in self.resources


class RestrictedTokenStore:
    def __init__(self) -> None:
        self.tokens: dict[str, RestrictedToken] = {}

    def issue(self, now: float, authorisation: Authorisation, resources: frozenset[Resource]) -> str:
        # Expired tokens are dropped here, so a long run does not keep every token it ever issued.
        self.tokens = {t: issued for t, issued in self.tokens.items() if issued.expires_at > now}
        token = "Atz.sprdt|" + secrets.token_urlsafe(64)
        self.tokens[token] = RestrictedToken(authorisation, resources, now + TTL_SECONDS)
        return token

    def find(self, token: str | None) -> RestrictedToken | None:
        return self.tokens.get(token or "")

    @staticmethod
    def check(issued: RestrictedToken, now: float, region: str | None) -> str | None:
        """Why a call with this token is refused, in Amazon's words, or None (the resource is the operation's
        business: only it knows which resources need naming)."""
        if now >= issued.expires_at:
            return "The access token you provided has expired."
        if region is not None and issued.authorisation.region not in (None, region):
            return ACCESS_DENIED
        return None
