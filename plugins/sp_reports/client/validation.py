"""Client-side checks of arguments, so obvious mistakes fail fast with a clear ValueError
instead of costing a throttled request and an opaque 400."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

PROCESSING_STATUSES = frozenset({"CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE"})

SCHEDULE_PERIODS = frozenset({
    "PT5M", "PT15M", "PT30M", "PT1H", "PT2H", "PT4H", "PT8H", "PT12H", "P1D", "P2D", "P3D",
    "PT84H", "P7D", "P14D", "P15D", "P18D", "P30D", "P1M",
})  # fmt: skip


def identifier(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def string_list(name: str, value: Any, *, max_items: int, allowed: frozenset[str] | None = None) -> list[str]:
    """A list of 1..max_items non-empty strings; SP-API sends array query parameters
    comma-separated, so an item may not contain a comma."""
    # A bare string is iterable too, and "A,B" would silently become ["A", ",", "B"].
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of strings, got {value!r}")
    items = list(value)
    if not 1 <= len(items) <= max_items:
        raise ValueError(f"{name} must have between 1 and {max_items} items, got {len(items)}")
    for item in items:
        if not isinstance(item, str) or not item.strip() or "," in item:
            raise ValueError(f"{name} items must be non-empty strings without commas, got {item!r}")
        if allowed is not None and item not in allowed:
            raise ValueError(f"{name} items must be among {sorted(allowed)}, got {item!r}")
    return items


def date_time(name: str, value: datetime | str) -> str:
    """ISO 8601 with an explicit offset. A naive datetime is ambiguous (local time? UTC?) and
    shifting a report's data window by hours is a silent data bug, so it is refused."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, str):
        parse_date_time(name, value)  # validates only; the caller's spelling is sent as given
        return value
    raise ValueError(f"{name} must be a datetime or an ISO 8601 string, got {value!r}")


def parse_date_time(name: str, value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        date_time(name, value)
        return value
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 date-time, got {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{name} must include a UTC offset (e.g. 'Z' or '+00:00'), got {value!r}")
    return parsed


def time_window(start_name: str, start: Any, end_name: str, end: Any) -> tuple[str | None, str | None]:
    start_s = None if start is None else date_time(start_name, start)
    end_s = None if end is None else date_time(end_name, end)
    if start is not None and end is not None and parse_date_time(start_name, start) > parse_date_time(end_name, end):
        raise ValueError(f"{start_name} ({start_s}) is after {end_name} ({end_s})")
    return start_s, end_s


def page_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValueError(f"page_size must be an integer between 1 and 100, got {value!r}")
    return value


def report_options(value: Any) -> dict[str, str]:
    """``ReportOptions`` is a string-to-string map in the model; a number would be rejected by Amazon."""
    if not isinstance(value, Mapping):
        raise ValueError(f"report_options must be a mapping of strings to strings, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ValueError(f"report_options must map strings to strings; {key!r}: {item!r} is not")
    return dict(value)


def sqs_arn(value: Any) -> str:
    """An SQS queue ARN, ``arn:aws:sqs:REGION:ACCOUNT:NAME`` (the model's SqsResource pattern)."""
    parts = value.split(":") if isinstance(value, str) else []
    if (
        len(parts) != 6
        or parts[:3] != ["arn", "aws", "sqs"]
        or not all(p.strip() for p in parts[3:])
        or len(value) > 1000
    ):
        raise ValueError(f"sqs_arn must look like arn:aws:sqs:REGION:ACCOUNT:NAME, got {value!r}")
    return value


def one_of(name: str, value: Any, allowed: frozenset[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value
