"""Turn "this report type, these accounts and marketplaces, this period" into the createReport calls to make.

Amazon caps the date range of many report types, so a longer period becomes several reports; each marketplace
gets its own report so every landed row is attributable to one marketplace; and each goes to the account (seller
and region) that serves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sp_reports.accounts import Account, route
from sp_reports.registry import ReportType


def split_range(start: datetime, end: datetime, max_days: int) -> list[tuple[datetime, datetime]]:
    """Consecutive, non-overlapping [start, end) chunks of at most ``max_days`` covering the period."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("data start and end must be timezone-aware")
    if end <= start:
        raise ValueError(f"data end {end.isoformat()} must be after data start {start.isoformat()}")
    step = timedelta(days=max_days)
    chunks = []
    cursor = start
    while cursor < end:
        chunk_end = min(cursor + step, end)
        chunks.append((cursor, chunk_end))
        cursor = chunk_end
    return chunks


def plan_requests(
    report: ReportType,
    accounts: Iterable[Account],
    marketplace_ids: Iterable[str],
    start: datetime | None,
    end: datetime | None,
    report_options: dict[str, str] | None = None,
) -> list[dict]:
    """One createReport request (JSON-able, for XCom) per account, marketplace and date chunk: each named
    marketplace for every account that covers it, or each account's own marketplaces when none is named
    (``sp_reports.accounts.route``)."""
    pairs = route(accounts, marketplace_ids)
    options = {**report.report_options, **(report_options or {})}
    ranges: list[tuple[str | None, str | None]]
    max_days = report.max_range_days
    if max_days is not None:  # report.takes_date_range
        if start is None or end is None:
            raise ValueError(f"{report.report_type}: a data start and end are required")
        ranges = [(s.isoformat(), e.isoformat()) for s, e in split_range(start, end, max_days)]
    else:
        ranges = [(None, None)]
    return [
        {
            "selling_partner_conn_id": account.conn_id,
            "selling_partner_id": account.selling_partner_id,
            "report_type": report.report_type,
            "marketplace_ids": [marketplace],
            "data_start_time": s,
            "data_end_time": e,
            "report_options": options,
        }
        for account, marketplace in pairs
        for s, e in ranges
    ]
