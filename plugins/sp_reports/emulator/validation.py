"""Request validation with the constraints of the Reports 2021-06-30 model (400 InvalidInput on failure)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams

from .config import EmulatorConfig
from .errors import ApiError, invalid_input
from .marketplaces import MARKETPLACES
from .report_types import KNOWN_REPORT_TYPES, SETTLEMENT_REPORT_TYPES
from .state import PERIOD_SECONDS

REPORT_STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")
_REPORT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def parse_date_time(name: str, value: Any) -> float:
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise invalid_input(f"Invalid {name}: {value!r} is not an ISO 8601 date-time.")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise invalid_input(f"Invalid {name}: {value!r} is not a valid date-time.") from None
    if parsed.tzinfo is None:  # Amazon reads a date-time without offset as UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def query_list(params: QueryParams, name: str, min_items: int = 1, max_items: int | None = None) -> list[str] | None:
    """An array query parameter; Amazon takes comma-separated values (repeating the name also works)."""
    if name not in params:
        return None
    values = [item.strip() for raw in params.getlist(name) for item in raw.split(",")]
    values = [v for v in values if v]
    if len(values) < min_items:
        raise invalid_input(f"{name} must contain at least {min_items} item(s).")
    if max_items is not None and len(values) > max_items:
        raise invalid_input(f"{name} must contain at most {max_items} items, got {len(values)}.")
    return values


def query_int(params: QueryParams, name: str, minimum: int, maximum: int, default: int) -> int:
    if name not in params:
        return default
    raw = params[name]
    if not re.fullmatch(r"[+-]?\d+", raw.strip()):
        raise invalid_input(f"{name} must be an integer, got {raw!r}.")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise invalid_input(f"{name} must be between {minimum} and {maximum}, got {value}.")
    return value


def query_bool(params: QueryParams, name: str) -> bool:
    raw = params.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise invalid_input(f"{name} must be true or false, got {params.get(name)!r}.")
    return raw == "true"


def json_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    if content_type and not content_type.split(";")[0].strip().lower().endswith("json"):
        raise ApiError(415, "InvalidInput", f"Unsupported Content-Type {content_type!r}; use application/json.")
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise invalid_input("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise invalid_input("The request body must be a JSON object.")
    return data


def report_type(value: Any, config: EmulatorConfig) -> str:
    if not isinstance(value, str) or not value:
        raise invalid_input("reportType is required and must be a string.")
    if not _REPORT_TYPE.match(value) or (config.strict_report_types and value not in KNOWN_REPORT_TYPES):
        raise invalid_input(f"Invalid reportType: {value}.")
    return value


def requestable_report_type(value: Any, config: EmulatorConfig) -> str:
    value = report_type(value, config)
    if value in SETTLEMENT_REPORT_TYPES:
        raise invalid_input(f"Report type {value} cannot be requested or scheduled; Amazon creates it automatically.")
    return value


def marketplace_ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_input("marketplaceIds is required and must be an array of strings.")
    if not 1 <= len(value) <= 25:
        raise invalid_input(f"marketplaceIds must contain 1 to 25 items, got {len(value)}.")
    unknown = [v for v in value if v not in MARKETPLACES]
    if unknown:
        raise invalid_input(f"Invalid marketplaceIds: {', '.join(unknown)}.")
    return value


def report_options(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid_input("reportOptions must be an object whose values are strings.")
    return value


def period(value: Any) -> str:
    if value not in PERIOD_SECONDS:
        raise invalid_input(f"Invalid period: {value!r}. Allowed: {', '.join(PERIOD_SECONDS)}.")
    return value


def report_id(value: str, name: str = "reportId") -> str:
    # Amazon's report and schedule ids are numeric; anything else is malformed (400), not unknown (404).
    if not value.isdigit():
        raise invalid_input(f"Invalid {name}: {value}.")
    return value


def document_id(value: str) -> str:
    if not (value.startswith("amzn1.spdoc.") or re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", value)):
        raise invalid_input(f"Invalid reportDocumentId: {value}.")
    return value


@dataclass(frozen=True)
class ReportSpec:
    """A createReport body, checked: what the store needs to make a report."""

    report_type: str
    marketplace_ids: list[str]
    options: dict[str, str]
    start: float
    end: float


def report_spec(spec: dict[str, Any], config: EmulatorConfig, now: float, *, requestable: bool = True) -> ReportSpec:
    """``requestable`` False: any known type (the control API creates Amazon's own reports too)."""
    check_type = requestable_report_type if requestable else report_type
    start = parse_date_time("dataStartTime", spec["dataStartTime"]) if "dataStartTime" in spec else now
    end = parse_date_time("dataEndTime", spec["dataEndTime"]) if "dataEndTime" in spec else now
    return ReportSpec(
        check_type(spec.get("reportType"), config),
        marketplace_ids(spec.get("marketplaceIds")),
        report_options(spec.get("reportOptions")),
        start,
        end,
    )
