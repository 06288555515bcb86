"""Amazon Selling Partner API client for the Reports API 2021-06-30, the Notifications API v1 and the Tokens
API's Restricted Data Tokens (no Airflow needed).

``AsyncSellingPartnerClient`` is the implementation; ``SellingPartnerClient`` is its blocking
face. See docs/architecture.md for the contract.
"""

from .auth import TOKEN_CACHE, TokenCache
from .credentials import Credentials
from .documents import DocumentDownload
from .endpoints import DEFAULT_LWA_ENDPOINT, REGION_ENDPOINTS, USER_AGENT
from .errors import (
    AuthError,
    ConflictError,
    DocumentDownloadError,
    InvalidInputError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    QuotaExceededError,
    SellingPartnerError,
    ServerError,
    is_transient,
)
from .file_quota import FileBuckets, file_buckets
from .quota_store import QuotaStore
from .ratelimit import BUCKETS, TokenBucket
from .redaction import redact_url
from .reports import AsyncSellingPartnerClient
from .restricted import RestrictedDataToken
from .shared_quota import SharedBuckets, shared_buckets
from .subscriptions import REPORT_PROCESSING_FINISHED, ensure_report_notifications
from .sync import SellingPartnerClient

__all__ = [
    "BUCKETS",
    "DEFAULT_LWA_ENDPOINT",
    "REGION_ENDPOINTS",
    "REPORT_PROCESSING_FINISHED",
    "TOKEN_CACHE",
    "USER_AGENT",
    "AsyncSellingPartnerClient",
    "AuthError",
    "ConflictError",
    "Credentials",
    "DocumentDownload",
    "DocumentDownloadError",
    "FileBuckets",
    "InvalidInputError",
    "NetworkError",
    "NotFoundError",
    "OutcomeUnknownError",
    "QuotaExceededError",
    "QuotaStore",
    "RestrictedDataToken",
    "SellingPartnerClient",
    "SellingPartnerError",
    "ServerError",
    "SharedBuckets",
    "TokenBucket",
    "TokenCache",
    "ensure_report_notifications",
    "file_buckets",
    "is_transient",
    "redact_url",
    "shared_buckets",
]
