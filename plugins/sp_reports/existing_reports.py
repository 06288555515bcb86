"""What Amazon already has for a request, found with getReports (one call each): the report a lost createReport
made, a recent one to reuse instead of asking again, and the report whose generation started a type's cooldown."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from sp_reports.client import SellingPartnerClient

IN_PROGRESS_STATUSES = ("IN_QUEUE", "IN_PROGRESS")


def find_matching_report(client: SellingPartnerClient, spec: dict, created_since: datetime) -> str | None:
    """The newest report created since ``created_since`` with this request's type, marketplaces and
    data range: how a createReport whose response was lost is recovered without asking twice."""
    candidates = _same_request(_listed(client, spec, created_since), spec)
    if not candidates:
        return None
    return max(candidates, key=lambda report: instant(report["createdTime"]))["reportId"]


def find_reusable_report(
    client: SellingPartnerClient,
    spec: dict,
    *,
    reuse_max_age: timedelta,
    stuck_after: timedelta,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """A report Amazon has for this request (type, marketplaces, data range) that can stand in for a new one:
    the newest DONE one finished within ``reuse_max_age``, else the newest still IN_QUEUE/IN_PROGRESS that is not
    stuck (created within ``stuck_after``). getReports does not return reportOptions, so they cannot be compared."""
    now = now or datetime.now(UTC)
    since = now - max(reuse_max_age, stuck_after)
    statuses = ("DONE", *IN_PROGRESS_STATUSES) if reuse_max_age else IN_PROGRESS_STATUSES
    candidates = _same_request(_listed(client, spec, since, statuses), spec)
    done = [
        r for r in candidates
        if r["processingStatus"] == "DONE"
        and now - instant(r.get("processingEndTime") or r["createdTime"]) <= reuse_max_age
    ]  # fmt: skip
    running = [
        r for r in candidates
        if r["processingStatus"] in IN_PROGRESS_STATUSES and now - instant(r["createdTime"]) < stuck_after
    ]  # fmt: skip
    for group in (done, running):
        if group:
            return max(group, key=lambda report: instant(report["createdTime"]))
    return None


def cooldown_started_by(client: SellingPartnerClient, fatal: dict, cooldown: timedelta) -> dict[str, Any] | None:
    """The report of the same type and marketplace generated within ``cooldown`` before this FATAL one: what made
    Amazon refuse it (Amazon's advice, amzn/selling-partner-api-models#4032). None: the FATAL has another cause."""
    created = instant(fatal["createdTime"])
    spec = {"report_type": fatal["reportType"], "marketplace_ids": fatal.get("marketplaceIds", [])}
    earlier = [
        r for r in _listed(client, spec, created - cooldown, ("DONE", "CANCELLED", *IN_PROGRESS_STATUSES))
        if r["reportId"] != fatal["reportId"]
        and set(r.get("marketplaceIds", [])) & set(spec["marketplace_ids"])
        and instant(r["createdTime"]) <= created
    ]  # fmt: skip
    return max(earlier, key=lambda report: instant(report["createdTime"])) if earlier else None


def _listed(
    client: SellingPartnerClient, spec: dict, created_since: datetime, statuses: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    # One page of 100, newest first: a request's recent reports are on it.
    listing = client.get_reports(
        report_types=[spec["report_type"]],
        processing_statuses=list(statuses) if statuses is not None else None,
        marketplace_ids=spec["marketplace_ids"],
        created_since=created_since,
        page_size=100,
    )
    return list(listing.get("reports", []))


def _same_request(reports: list[dict[str, Any]], spec: dict) -> list[dict[str, Any]]:
    """Reports with the request's marketplaces and, when it names one, its data range. Without a range (a
    snapshot), Amazon sets the report's range itself, so any range matches."""
    wanted = (instant(spec.get("data_start_time")), instant(spec.get("data_end_time")))
    return [
        report
        for report in reports
        if sorted(report.get("marketplaceIds", [])) == sorted(spec["marketplace_ids"])
        and all(
            w is None or w == instant(report.get(key))
            for w, key in zip(wanted, ("dataStartTime", "dataEndTime"), strict=True)
        )
    ]


@overload
def instant(value: str | datetime) -> datetime: ...
@overload
def instant(value: None) -> None: ...
def instant(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
