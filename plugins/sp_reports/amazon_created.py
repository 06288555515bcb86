"""Reports Amazon creates itself (settlements, report schedules): find the ones not landed yet.

SP-API has no acknowledgement flag, so "not landed yet" is what the lake's ledger says: the listing
skips every reportId the ledger holds, records the manifest of a landing whose ledger row was lost,
and marks the rest LISTED, which keeps the next listing's watermark from passing them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sp_reports.client import SellingPartnerClient
from sp_reports.finished_report import finished_report
from sp_reports.registry import ReportType

if TYPE_CHECKING:  # the lake loads pyarrow and deltalake: not at DAG parse time
    from sp_reports.accounts import Account
    from sp_reports.lake import Lake
    from sp_reports.payloads import FinishedReport

log = logging.getLogger(__name__)

# Amazon keeps reports for 90 days and refuses an older createdSince.
RETENTION = timedelta(days=90)
# Reports finish in any order: a report created before the newest landed one may finish after it.
DEFAULT_OVERLAP = timedelta(days=2)
TYPES_PER_CALL = 10  # getReports' reportTypes takes at most 10
PAGE_SIZE = 100


def list_done_reports(
    client: SellingPartnerClient,
    account: Account,
    report_types: list[str],
    created_since: datetime,
    page_size: int = PAGE_SIZE,
) -> list[FinishedReport]:
    """Every DONE report of these types created since ``created_since``, all pages, oldest first, of the account
    ``client`` serves."""
    found: dict[str, dict] = {}
    for start in range(0, len(report_types), TYPES_PER_CALL):
        page = client.get_reports(
            report_types=report_types[start : start + TYPES_PER_CALL],
            processing_statuses=["DONE"],
            created_since=created_since,
            page_size=page_size,
        )
        pages = 1
        while True:
            for report in page.get("reports", []):
                found[report["reportId"]] = report
            if not page.get("nextToken"):
                break
            page = client.get_reports(next_token=page["nextToken"])
            pages += 1
        log.info(
            "getReports %s since %s: %d page(s)",
            ",".join(report_types[start : start + TYPES_PER_CALL]),
            created_since.isoformat(),
            pages,
        )
    return sorted(
        (finished_report(r, account) for r in found.values()), key=lambda o: (o["created_time"] or "", o["report_id"])
    )


def find_unlanded_reports(
    client: SellingPartnerClient,
    lake: Lake,
    account: Account,
    reports: Iterable[ReportType],
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    now: datetime | None = None,
    page_size: int = PAGE_SIZE,
) -> list[FinishedReport]:
    """The DONE reports of these (Amazon-generated) types that the lake does not hold yet, of the account
    ``client`` serves (each account's listing has its own watermark)."""
    by_type = {report.report_type: report for report in reports}
    if not by_type:
        return []
    now = now or datetime.now(UTC)
    from sp_reports.lake.ledger import Ledger
    from sp_reports.pipeline import recover_landed

    ledger = Ledger(lake)
    oldest_allowed = now - RETENTION + timedelta(minutes=5)
    watermark = ledger.watermark(by_type, overlap, selling_partner_id=account.selling_partner_id)
    since = max(watermark or oldest_allowed, oldest_allowed)
    listed = list_done_reports(client, account, sorted(by_type), since, page_size)
    landed = ledger.landed((account.selling_partner_id, o["report_id"]) for o in listed)
    unlanded = [o for o in listed if (account.selling_partner_id, o["report_id"]) not in landed]
    unlanded = [o for o in unlanded if not recover_landed(lake, o, by_type[o["report_type"]])]
    ledger.mark_listed(unlanded)
    log.info(
        "Account %s: listed %d DONE report(s) created since %s: %d already landed, %d to land",
        account,
        len(listed),
        since.isoformat(timespec="seconds"),
        len(listed) - len(unlanded),
        len(unlanded),
    )
    return unlanded
