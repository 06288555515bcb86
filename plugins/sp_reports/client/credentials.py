"""LWA application credentials plus the selling partner's refresh token."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, repr=False)
class Credentials:
    """What Login with Amazon needs to mint access tokens.

    ``repr()``/``str()`` show only the client id: these objects end up in Airflow task logs,
    tracebacks and debugger output, where a secret must never appear.
    """

    client_id: str
    client_secret: str
    refresh_token: str

    def __post_init__(self) -> None:
        for name in ("client_id", "client_secret", "refresh_token"):
            value = getattr(self, name)
            # The message names the field only: echoing a wrong value could echo a secret.
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Credentials.{name} must be a non-empty string")

    @property
    def refresh_token_sha256(self) -> str:
        """Identifies the refresh token in cache keys without keeping the token itself there."""
        return hashlib.sha256(self.refresh_token.encode()).hexdigest()

    @property
    def client_secret_sha256(self) -> str:
        return hashlib.sha256(self.client_secret.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, client_secret='***', refresh_token='***')"

    __str__ = __repr__
