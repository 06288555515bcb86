"""Amazon Selling Partner API client for the Reports API 2021-06-30 (no Airflow needed).

``AsyncSellingPartnerClient`` is the implementation; ``SellingPartnerClient`` is its blocking
face. See docs/architecture.md for the contract.
"""

from .auth import TOKEN_CACHE, TokenCache
from .credentials import Credentials
from .documents import DocumentDownload
from .endpoints import DEFAULT_LWA_ENDPOINT, REGION_ENDPOINTS, USER_AGENT
from .errors import (
    AuthError,
    DocumentDownloadError,
    InvalidInputError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    QuotaExceededError,
    SellingPartnerError,
    ServerError,
)
from .ratelimit import BUCKETS, TokenBucket
from .redaction import redact_url
from .reports import AsyncSellingPartnerClient
from .sync import SellingPartnerClient

__all__ = [
    "AsyncSellingPartnerClient",
    "AuthError",
    "BUCKETS",
    "Credentials",
    "DEFAULT_LWA_ENDPOINT",
    "DocumentDownload",
    "DocumentDownloadError",
    "InvalidInputError",
    "NetworkError",
    "NotFoundError",
    "OutcomeUnknownError",
    "QuotaExceededError",
    "REGION_ENDPOINTS",
    "SellingPartnerClient",
    "SellingPartnerError",
    "ServerError",
    "TOKEN_CACHE",
    "TokenBucket",
    "TokenCache",
    "USER_AGENT",
    "redact_url",
]
