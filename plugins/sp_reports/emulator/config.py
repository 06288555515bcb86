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
DEFAULT_SELLER_ID = "A3EMULATORSELLER"

# SP-API regions, each served at its own path prefix: {base}/na, {base}/eu, {base}/fe.
REGIONS = ("NA", "EU", "FE")
SELLER_KEYS = ("seller_id", "region", "refresh_token", "marketplace_ids")

# (seller_id, region) of a configured authorisation; None is the default seller's (no `sellers` configured).
AccountKey = tuple[str, str] | None


@dataclass(frozen=True)
class Authorisation:
    """One selling partner's authorisation of the application: what its refresh token grants.

    ``region`` None is the default seller (``EmulatorConfig.sellers`` empty): valid at every regional
    endpoint and for every marketplace, as the emulator behaved before it knew several sellers.
    """

    seller_id: str
    region: str | None
    refresh_token: str
    marketplace_ids: tuple[str, ...]

    @property
    def key(self) -> AccountKey:
        """Whose reports, schedules, documents, quotas and subscriptions a call works on."""
        return None if self.region is None else (self.seller_id, self.region)

    def allows(self, marketplace_id: str) -> bool:
        return marketplace_id in self.marketplace_ids


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
    # Amazon generates some report types at most once per window (FBA: 30 min near real-time, 4 h daily), per
    # marketplace: a request inside the window ends FATAL with no error document. Seconds per report type,
    # scaled by speed, e.g. {"GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA": 1800}.
    cooldowns: dict[str, float] = field(default_factory=dict)
    # The first this many reports each seller account requests stay IN_PROGRESS forever (a stuck report).
    stuck_reports: int = 0
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
    # The default selling partner (used when `sellers` is empty): its sellerId in notifications
    # (accountId is derived from it) and in stats; `refresh_token` above is its authorisation.
    seller_id: str = DEFAULT_SELLER_ID

    # Several sellers: each entry is one authorisation, {"seller_id": str, "region": "NA"|"EU"|"FE",
    # "refresh_token": str, "marketplace_ids": [str, ...]} (marketplaces of that region). A seller in two
    # regions is two entries with the same seller_id and different refresh tokens. Reports, schedules,
    # documents, quotas and subscriptions are kept per (seller_id, region). Empty = one default seller
    # (`seller_id`, `refresh_token`) valid in every region for every marketplace.
    sellers: list[dict[str, Any]] = field(default_factory=list)

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
        if self.stuck_reports < 0:
            raise ValueError("stuck_reports must not be negative")
        if any(not isinstance(v, (int, float)) or v < 0 for v in self.cooldowns.values()):
            raise ValueError(f"cooldowns must map report types to seconds >= 0, got {self.cooldowns!r}")
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
        # Normalised (region upper case, a copy of every entry) so that to_dict shows what is in force.
        object.__setattr__(self, "sellers", _checked_sellers(self.sellers))
        for report_type, outcome in self.outcomes.items():
            if outcome not in TERMINAL_OUTCOMES:
                raise ValueError(f"outcomes[{report_type!r}] must be one of {TERMINAL_OUTCOMES}, got {outcome!r}")

    def authorisations(self) -> tuple[Authorisation, ...]:
        """Every refresh token the LWA endpoint accepts, and what it grants (the first is the default one)."""
        if not self.sellers:
            return (Authorisation(self.seller_id, None, self.refresh_token, tuple(MARKETPLACES)),)
        return tuple(
            Authorisation(s["seller_id"], s["region"], s["refresh_token"], tuple(s["marketplace_ids"]))
            for s in self.sellers
        )

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


def _checked_sellers(sellers: Any) -> list[dict[str, Any]]:
    if not isinstance(sellers, list):
        raise ValueError("sellers must be a list of objects")
    checked: list[dict[str, Any]] = []
    tokens: set[str] = set()
    accounts: set[tuple[str, str]] = set()
    for index, entry in enumerate(sellers):
        where = f"sellers[{index}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be an object with {', '.join(SELLER_KEYS)}")
        unknown = sorted(set(entry) - set(SELLER_KEYS))
        missing = [k for k in SELLER_KEYS if k not in entry]
        if unknown or missing:
            raise ValueError(f"{where}: unknown keys {unknown}, missing keys {missing}")
        seller_id, region, token, marketplace_ids = (entry[k] for k in SELLER_KEYS)
        if not isinstance(seller_id, str) or not seller_id.strip():
            raise ValueError(f"{where}.seller_id must be a non-empty string")
        region = region.upper() if isinstance(region, str) else region
        if region not in REGIONS:
            raise ValueError(f"{where}.region must be one of {', '.join(REGIONS)}, got {entry['region']!r}")
        if not isinstance(token, str) or not token.strip():
            raise ValueError(f"{where}.refresh_token must be a non-empty string")
        if token in tokens:
            raise ValueError(f"{where}.refresh_token is already another authorisation's; tokens must be unique")
        if (seller_id, region) in accounts:
            raise ValueError(f"{where}: seller {seller_id} already has an authorisation in {region}")
        if (
            not isinstance(marketplace_ids, list)
            or not marketplace_ids
            or not all(isinstance(m, str) for m in marketplace_ids)
        ):
            raise ValueError(f"{where}.marketplace_ids must be a non-empty list of marketplace ids")
        for marketplace_id in marketplace_ids:
            marketplace = MARKETPLACES.get(marketplace_id)
            if marketplace is None:
                raise ValueError(f"{where}.marketplace_ids: unknown marketplace {marketplace_id!r}")
            if marketplace.region.upper() != region:
                raise ValueError(
                    f"{where}.marketplace_ids: {marketplace_id} ({marketplace.country}) is in "
                    f"{marketplace.region.upper()}, not {region}"
                )
        tokens.add(token)
        accounts.add((seller_id, region))
        checked.append(
            {"seller_id": seller_id, "region": region, "refresh_token": token, "marketplace_ids": list(marketplace_ids)}
        )
    return checked


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
    if expected.startswith("list[dict"):
        if not isinstance(value, list):
            raise ValueError(f"{name} must be a list of objects")
        return list(value)
    if expected.startswith("dict"):
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be an object")
        return dict(value)
    raise ValueError(f"{name} cannot be changed")  # pragma: no cover - every field type is handled above
