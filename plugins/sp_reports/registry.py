"""The report-type registry: which SP-API report types the project lands, and how.

The registry is a YAML file (``report_types.yaml`` beside this module, or your own: ``$SP_REPORTS_REGISTRY``) so data engineers add a
report type without writing Python; this module validates it into ``ReportType`` records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from sp_reports.amazon_limits import PUBLISHED_COOLDOWNS
from sp_reports.settings import settings

FORMATS = ("tsv", "xml", "json")
# Declared column types; undeclared columns stay strings (Amazon adds columns without warning).
COLUMN_TYPES = ("string", "integer", "decimal", "date", "datetime", "boolean")
_REPORT_TYPE_RE = re.compile(r"^[A-Z0-9_]+$")
# Amazon's restricted report types: their documents hold buyers' PII, so getReportDocument needs a Restricted Data
# Token naming the document. From the report type values pages ("This is a restricted report type") and the Tokens API
# guide "Get authorization to access restricted report types with PII information"
# (https://developer-docs.amazon.com/sp-api/docs/get-authorization-to-access-restricted-report-types).
# An entry of one of these is restricted whatever the YAML says; the YAML may add types Amazon restricts later.
RESTRICTED_REPORT_TYPES = frozenset(
    {
        "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING",
        "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_TAX",
        "GET_EASYSHIP_DOCUMENTS",
        "GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING",
        "GET_FLAT_FILE_ORDER_REPORT_DATA_INVOICING",
        "GET_FLAT_FILE_ORDER_REPORT_DATA_SHIPPING",
        "GET_FLAT_FILE_ORDER_REPORT_DATA_TAX",
        "GET_GST_MTR_B2B_CUSTOM",
        "GET_ORDER_REPORT_DATA_INVOICING",
        "GET_ORDER_REPORT_DATA_SHIPPING",
        "GET_ORDER_REPORT_DATA_TAX",
        "GET_VAT_TRANSACTION_DATA",
        "SC_VAT_TAX_REPORT",
    }
)
_FIELDS = {
    "format",
    "description",
    "date_column",
    "natural_keys",
    "max_range_days",
    "report_options",
    "restricted",
    "schedule",
    "columns",
    "header_aliases",
    "summary_first_row",
    "records",
    "requestable",
    "amazon_schedule",
    "cooldown",
    "reuse_max_age",
    "stuck_after",
}
# CreateReportScheduleSpecification.period in reports_2021-06-30.json.
SCHEDULE_PERIODS = (
    "PT5M", "PT15M", "PT30M", "PT1H", "PT2H", "PT4H", "PT8H", "PT12H", "P1D", "P2D", "P3D", "PT84H",
    "P7D", "P14D", "P15D", "P18D", "P30D", "P1M",
)  # fmt: skip
# A report Amazon finished this recently, for the same request, is used instead of asking again.
DEFAULT_REUSE_MAX_AGE = timedelta(hours=1)
# Amazon's reports take minutes; one still waiting after this is stuck (amzn/selling-partner-api-models#1457).
DEFAULT_STUCK_AFTER = timedelta(hours=2)
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class AmazonSchedule:
    """What createReportSchedule is asked for: one schedule per report type."""

    period: str
    marketplace_ids: tuple[str, ...]
    report_options: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "marketplace_ids": list(self.marketplace_ids),
            "report_options": dict(self.report_options),
        }


class RegistryError(ValueError):
    """The registry file is missing or malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class ReportType:
    report_type: str
    format: str = "tsv"
    description: str = ""
    date_column: str | None = None
    natural_keys: tuple[str, ...] = ()
    max_range_days: int | None = None
    report_options: dict[str, str] = field(default_factory=dict)
    restricted: bool = False
    schedule: str | None = None
    # Amazon header name -> one of COLUMN_TYPES.
    columns: dict[str, str] = field(default_factory=dict)
    # Localised header (JP, DE, ...) -> Amazon's canonical header name.
    header_aliases: dict[str, str] = field(default_factory=dict)
    # Settlement flat files: the first data row summarises the settlement (lands in <table>_summary).
    summary_first_row: bool = False
    # XML: the repeating record element (e.g. "Order"); JSON: the arrays that become tables.
    records: tuple[str, ...] = ()
    # False for reports only Amazon creates (settlements): found by listing, never requested.
    requestable: bool = True
    # A report schedule Amazon should run for this type: {"period", "marketplace_ids", "report_options"}.
    amazon_schedule: AmazonSchedule | None = None
    # How soon Amazon generates this type again: a request inside the window ends FATAL (no error document).
    # Default: Amazon's published figure (sp_reports.amazon_limits), else None.
    cooldown: timedelta | None = None
    # A DONE report for the same request younger than this is reused instead of requesting again; 0 = never.
    reuse_max_age: timedelta = DEFAULT_REUSE_MAX_AGE
    # A report still IN_QUEUE / IN_PROGRESS this long after its creation is stuck: cancelled and replaced once.
    stuck_after: timedelta = DEFAULT_STUCK_AFTER

    @property
    def table_name(self) -> str:
        return self.report_type.lower()

    @property
    def generated_by_amazon(self) -> bool:
        """Reports Amazon creates itself (settlements, scheduled reports): found by listing getReports."""
        return not self.requestable or self.amazon_schedule is not None

    @property
    def takes_date_range(self) -> bool:
        """Snapshot reports (no ``max_range_days``) ignore dataStartTime/dataEndTime."""
        return self.max_range_days is not None


def load_registry(path: str | Path | None = None) -> dict[str, ReportType]:
    """The registry at ``path``, else ``$SP_REPORTS_REGISTRY``, else the one this package ships."""
    path = Path(path) if path else settings().registry
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"report registry not found: {path} (set SP_REPORTS_REGISTRY)") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"report registry {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise RegistryError(f"report registry {path} must map report types to their settings")
    return {name: _parse_entry(path, name, spec) for name, spec in raw.items()}


def _parse_entry(path: Path, name: Any, spec: Any) -> ReportType:
    where = f"{path}: {name}"
    if not isinstance(name, str) or not _REPORT_TYPE_RE.match(name):
        raise RegistryError(f"{where}: report type must be upper-case letters, digits and underscores")
    spec = spec or {}
    if not isinstance(spec, dict):
        raise RegistryError(f"{where}: settings must be a mapping")
    if unknown := set(spec) - _FIELDS:
        raise RegistryError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    fmt = spec.get("format", "tsv")
    if fmt not in FORMATS:
        raise RegistryError(f"{where}: format must be one of {FORMATS}, not {fmt!r}")
    max_days = spec.get("max_range_days")
    if max_days is not None and (not isinstance(max_days, int) or max_days < 1):
        raise RegistryError(f"{where}: max_range_days must be a positive integer")
    options = spec.get("report_options") or {}
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise RegistryError(f"{where}: report_options must map names to strings (quote true/false)")
    keys = spec.get("natural_keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise RegistryError(f"{where}: natural_keys must be a list of column names")
    columns = spec.get("columns") or {}
    if not isinstance(columns, dict) or not all(t in COLUMN_TYPES for t in columns.values()):
        raise RegistryError(f"{where}: columns must map column names to one of {COLUMN_TYPES}")
    aliases = spec.get("header_aliases") or {}
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise RegistryError(f"{where}: header_aliases must map localised headers to Amazon's header names")
    records = spec.get("records") or []
    if isinstance(records, str):
        records = [records]
    if fmt in ("xml", "json") and not records:
        raise RegistryError(f"{where}: {fmt} report types need records (the record element or arrays)")
    requestable = bool(spec.get("requestable", True))
    restricted = bool(spec.get("restricted", name in RESTRICTED_REPORT_TYPES))
    if not restricted and name in RESTRICTED_REPORT_TYPES:
        raise RegistryError(f"{where}: Amazon restricts {name} (its documents need a Restricted Data Token); "
                            "drop restricted: false")  # fmt: skip
    return ReportType(
        report_type=name,
        format=fmt,
        description=str(spec.get("description", "")),
        date_column=spec.get("date_column"),
        natural_keys=tuple(keys),
        max_range_days=max_days,
        report_options=dict(options),
        restricted=restricted,
        schedule=spec.get("schedule"),
        columns=dict(columns),
        header_aliases=dict(aliases),
        summary_first_row=bool(spec.get("summary_first_row", False)),
        records=tuple(records),
        requestable=requestable,
        amazon_schedule=_parse_schedule(where, spec.get("amazon_schedule"), options, requestable),
        cooldown=_duration(where, "cooldown", spec.get("cooldown", PUBLISHED_COOLDOWNS.get(name, 0))) or None,
        reuse_max_age=_duration(where, "reuse_max_age", spec.get("reuse_max_age", DEFAULT_REUSE_MAX_AGE)),
        stuck_after=_positive(where, "stuck_after", spec.get("stuck_after", DEFAULT_STUCK_AFTER)),
    )


def _duration(where: str, name: str, value: Any) -> timedelta:
    """``30m``, ``4h``, ``1d``, ``90s`` or a number of seconds; 0 allowed."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    match = _DURATION_RE.match(str(value).strip()) if isinstance(value, str) else None
    if not match:
        raise RegistryError(f"{where}: {name} must be a duration like 90s, 30m, 4h or 1d (or seconds), not {value!r}")
    return timedelta(**{_DURATION_UNITS[match[2]]: float(match[1])})


def _positive(where: str, name: str, value: Any) -> timedelta:
    duration = _duration(where, name, value)
    if not duration:
        raise RegistryError(f"{where}: {name} must be longer than 0")
    return duration


def is_restricted(report_type: str) -> bool:
    """Whether getReportDocument of ``report_type`` needs a Restricted Data Token: Amazon's list, or the registry's
    ``restricted: true`` for a type Amazon restricted since."""
    if report_type in RESTRICTED_REPORT_TYPES:
        return True
    entry = load_registry().get(report_type)
    return entry is not None and entry.restricted


def _parse_schedule(where: str, raw: Any, default_options: dict[str, str], requestable: bool) -> AmazonSchedule | None:
    if raw is None:
        return None
    where = f"{where}: amazon_schedule"
    if not requestable:
        raise RegistryError(f"{where}: a report type Amazon generates on its own cannot be scheduled")
    if not isinstance(raw, dict) or set(raw) - {"period", "marketplace_ids", "report_options"}:
        raise RegistryError(f"{where} must be a mapping of period, marketplace_ids and report_options")
    period = raw.get("period")
    if period not in SCHEDULE_PERIODS:
        raise RegistryError(f"{where}: period must be one of {SCHEDULE_PERIODS}, not {period!r}")
    marketplaces = raw.get("marketplace_ids")
    if (
        not isinstance(marketplaces, list)
        or not marketplaces
        or not all(isinstance(m, str) and m for m in marketplaces)
    ):
        raise RegistryError(f"{where}: marketplace_ids must be a non-empty list of marketplace ids")
    options = raw.get("report_options", default_options) or {}
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise RegistryError(f"{where}: report_options must map names to strings (quote true/false)")
    return AmazonSchedule(period, tuple(sorted(set(marketplaces))), dict(options))
