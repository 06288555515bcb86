"""Turn "this report type, these accounts and marketplaces, this period" into the createReport calls to make.

Amazon caps the date range of many report types, so a longer period becomes several reports; each marketplace
gets its own report so every landed row is attributable to one marketplace; and each goes to the account (seller
and region) that serves it. A re-triggered backfill drops the requests whose range the lake's ledger already
holds (``drop_landed``), so it resumes where the last run stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


# Amazon may give a report's data end inclusively (23:59:59 rather than the next midnight): adjacent
# reports then leave a gap this small, which is no gap in the data.
RANGE_GAP_TOLERANCE = timedelta(seconds=1)
# Keys of a planned request that say how to run it, not what to ask createReport for.
FORCE_NEW_REPORT, REQUEST_NUMBER, REQUEST_COUNT = "force_new_report", "request_number", "request_count"


def drop_landed(
    requests: Iterable[dict], landed: Mapping[tuple[str, str, str], Sequence[tuple[datetime, datetime]]]
) -> tuple[list[dict], list[dict]]:
    """(kept, skipped): a request is skipped when the data ranges ``landed`` holds for its (seller, report
    type, marketplace) together cover its whole range (``Ledger.landed_ranges``). Requests without a range
    (snapshot reports) are always kept: each one is news."""
    kept, skipped = [], []
    for request in requests:
        start, end, marketplaces = request["data_start_time"], request["data_end_time"], request["marketplace_ids"]
        marketplace = marketplaces[0] if len(marketplaces) == 1 else None
        spans = (
            landed.get((request["selling_partner_id"], request["report_type"], marketplace), ()) if marketplace else ()
        )
        # plan_requests writes aware ISO date-times
        if start and end and covered(datetime.fromisoformat(start), datetime.fromisoformat(end), spans):
            skipped.append(request)
        else:
            kept.append(request)
    return kept, skipped


def covered(start: datetime, end: datetime, spans: Iterable[tuple[datetime, datetime]]) -> bool:
    """Whether the union of ``spans`` covers [start, end] (gaps up to RANGE_GAP_TOLERANCE ignored)."""
    reached = start
    for span_start, span_end in sorted(spans):
        if reached >= end - RANGE_GAP_TOLERANCE:
            break
        if span_start > reached + RANGE_GAP_TOLERANCE:
            return False
        reached = max(reached, span_end)
    return reached >= end - RANGE_GAP_TOLERANCE


def numbered(requests: Sequence[dict], force_new_report: bool) -> list[dict]:
    """The requests with what the request task needs besides createReport's arguments: whether to ask for a
    new report even if Amazon has a matching recent one, and the request's place in the run (for its log)."""
    return [
        {**request, FORCE_NEW_REPORT: force_new_report, REQUEST_NUMBER: number, REQUEST_COUNT: len(requests)}
        for number, request in enumerate(requests, start=1)
    ]
