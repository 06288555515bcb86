"""Every knob of the emulator, in one dataclass that can be changed at runtime."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .marketplaces import MARKETPLACES

TERMINAL_OUTCOMES = ("DONE", "FATAL", "CANCELLED")
COLUMN_DRIFTS = ("add", "drop")

DEFAULT_CLIENT_ID = "emulator-client-id"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
DEFAULT_REFRESH_TOKEN = "Atzr|emulator-refresh-token"


@dataclass(frozen=True)
class EmulatorConfig:
    # Randomness: outcomes, content, ids and injected faults all derive from this.
    seed: int = 0
    # Time compression: quotas refill `speed` times faster, processing and URL lifetimes shrink.
    speed: float = 1.0

    # LWA credentials accepted by /auth/o2/token.
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    refresh_token: str = DEFAULT_REFRESH_TOKEN
    # Not scaled by speed: the client reads `expires_in` and must be able to trust it.
    token_ttl_seconds: float = 3600.0

    # Report lifecycle: time from createReport to a terminal status (before speed); the first
    # half is IN_QUEUE, the second IN_PROGRESS.
    processing_seconds: float = 2.0
    fatal_rate: float = 0.0
    cancel_rate: float = 0.0
    slow_rate: float = 0.0
    slow_factor: float = 10.0
    # Deterministic outcome per report type, e.g. {"GET_MERCHANT_LISTINGS_ALL_DATA": "FATAL"}.
    outcomes: dict[str, str] = field(default_factory=dict)
    fatal_error_document: bool = True
    # Reject report types Amazon does not know (Amazon answers 400 for them).
    strict_report_types: bool = True

    # Documents.
    rows_per_report: int = 50
    gzip_documents: bool = True
    url_ttl_seconds: float = 300.0
    truncate_rate: float = 0.0
    download_chunk_size: int = 64 * 1024
    # Base of pre-signed URLs; None = the host the client used to call getReportDocument.
    public_base_url: str | None = None

    # Document quirks (real Amazon documents have all of these). A report keeps the quirks in force
    # when it was created, so its document stays the same however often it is downloaded.
    bom: bool = False  # UTF-8 documents start with a byte order mark
    crlf: bool = False  # lines end in \r\n
    trailing_tabs: bool = False  # flat files: every data line ends in an extra tab (an empty field)
    # The charset label the Content-Type claims whatever the bytes are, e.g. "UTF-8" on cp1252/cp932
    # bytes or "Cp1252" on cp932 bytes; None = the truthful label. XML declarations stay truthful.
    mislabel_charset: str | None = None
    # gzip bytes served with no compressionAlgorithm, plain bytes served with compressionAlgorithm GZIP.
    gzip_mislabel: bool = False
    empty_document: bool = False  # zero bytes (before compression)
    header_only: bool = False  # the header (XML envelope, JSON arrays) and no record
    # "add": an unknown column (XML element, JSON key) appears; "drop": one goes missing.
    column_drift: str | None = None
    # Share of data lines whose bytes are corrupted so that no charset decodes them.
    bad_bytes_rate: float = 0.0

    # Quotas and injected faults.
    enforce_quotas: bool = True
    rate_429: float = 0.0
    rate_5xx: float = 0.0

    # Notifications (REPORT_PROCESSING_FINISHED to SQS). None = AWS's own SQS endpoint and boto3's
    # credential chain; a URL (moto_server) = that endpoint, with dummy credentials unless AWS_* are set.
    sqs_endpoint_url: str | None = None
    # SQS is at-least-once: the share of notifications delivered twice (same notificationId) ...
    notification_duplicate_rate: float = 0.0
    # ... and the share never delivered, so that a consumer's fallback polling can be exercised.
    notification_drop_rate: float = 0.0
    # The selling partner the notifications are about (sellerId; accountId is derived from it).
    seller_id: str = "A3EMULATORSELLER"

    # Amazon creates settlement reports by itself, roughly every 14 days; here every this many
    # seconds (scaled by speed like schedule periods), one per marketplace. None = never.
    settlement_period_seconds: float | None = None
    settlement_marketplace_ids: list[str] = field(default_factory=lambda: ["ATVPDKIKX0DER"])

    def __post_init__(self) -> None:
        rates = ("fatal_rate", "cancel_rate", "slow_rate", "truncate_rate", "rate_429", "rate_5xx", "bad_bytes_rate",
                 "notification_duplicate_rate", "notification_drop_rate")  # fmt: skip
        for name in rates:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.fatal_rate + self.cancel_rate > 1.0:
            raise ValueError("fatal_rate + cancel_rate must not exceed 1")
        for name in ("speed", "slow_factor", "url_ttl_seconds", "token_ttl_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.processing_seconds < 0:
            raise ValueError("processing_seconds must not be negative")
        if self.rows_per_report < 0:
            raise ValueError("rows_per_report must not be negative")
        if self.download_chunk_size < 1:
            raise ValueError("download_chunk_size must be positive")
        if self.column_drift is not None and self.column_drift not in COLUMN_DRIFTS:
            raise ValueError(f"column_drift must be one of {COLUMN_DRIFTS} or null, got {self.column_drift!r}")
        if self.mislabel_charset is not None and not self.mislabel_charset.strip():
            raise ValueError("mislabel_charset must be a charset label or null")
        if self.settlement_period_seconds is not None and self.settlement_period_seconds <= 0:
            raise ValueError("settlement_period_seconds must be positive or null")
        unknown = [m for m in self.settlement_marketplace_ids if m not in MARKETPLACES]
        if not self.settlement_marketplace_ids or unknown:
            raise ValueError(
                f"settlement_marketplace_ids must be known marketplace ids, got {self.settlement_marketplace_ids!r}"
            )
        if not self.seller_id.strip():
            raise ValueError("seller_id must not be empty")
        for report_type, outcome in self.outcomes.items():
            if outcome not in TERMINAL_OUTCOMES:
                raise ValueError(f"outcomes[{report_type!r}] must be one of {TERMINAL_OUTCOMES}, got {outcome!r}")

    def quirks(self) -> DocumentQuirks:
        return DocumentQuirks(**{f.name: getattr(self, f.name) for f in dataclasses.fields(DocumentQuirks)})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def updated(self, changes: dict[str, Any]) -> EmulatorConfig:
        """A copy with `changes` applied; values are coerced to the field's type (JSON has no float/int split)."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        coerced = {name: _coerce(name, fields[name].type, value) for name, value in changes.items()}
        return dataclasses.replace(self, **coerced)


@dataclass(frozen=True)
class DocumentQuirks:
    """The document quirks of one report, fixed when it is created (see EmulatorConfig)."""

    bom: bool = False
    crlf: bool = False
    trailing_tabs: bool = False
    mislabel_charset: str | None = None
    gzip_mislabel: bool = False
    empty_document: bool = False
    header_only: bool = False
    column_drift: str | None = None
    bad_bytes_rate: float = 0.0


def _coerce(name: str, type_name: Any, value: Any) -> Any:
    # Annotations are strings because of `from __future__ import annotations`.
    expected = str(type_name)
    if expected == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be a boolean")
        return value
    if expected in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number")
        if expected == "int":
            if value != int(value):
                raise ValueError(f"{name} must be an integer")
            return int(value)
        return float(value)
    if expected == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        return value
    if expected == "str | None":
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string or null")
        return value
    if expected == "float | None":
        if value is None:
            return None
        return _coerce(name, "float", value)
    if expected == "list[str]":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"{name} must be a list of strings")
        return list(value)
    if expected.startswith("dict"):
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be an object")
        return dict(value)
    raise ValueError(f"{name} cannot be changed")  # pragma: no cover - every field type is handled above
