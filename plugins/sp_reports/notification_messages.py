"""REPORT_PROCESSING_FINISHED notifications (SQS messages) -> reports to land, without polling.

Amazon sends every seller's notifications to the application's one queue. A notification names the seller, the
report, its type, status and document, but neither the region nor the marketplaces, which the parser needs
(dates, encodings, partitions). Each message is routed to the seller's account (connection): the only one the
seller has, or the one of the region serving the report's marketplaces, or the one whose getReport finds the
report. The marketplaces come, in this order, from the ledger (a listing saw the report), the registry (the
type's ``amazon_schedule`` names one marketplace), or that one getReport lookup.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from sp_reports.client import NotFoundError
from sp_reports.client.marketplaces import region_of
from sp_reports.finished_report import TERMINAL_STATUSES, finished_report
from sp_reports.registry import ReportType

if TYPE_CHECKING:  # the lake (pyarrow, deltalake) stays out of the triggerer, which parses notifications too
    from sp_reports.accounts import Account
    from sp_reports.lake import Lake

# getReport through one account: how a notification is matched to the seller's region when nothing else tells.
GetReport = Callable[["Account", str], dict]

log = logging.getLogger(__name__)
NOTIFICATION_TYPE = "REPORT_PROCESSING_FINISHED"


class NotificationError(ValueError):
    """A message that is not a REPORT_PROCESSING_FINISHED notification."""


def parse_notification(body: str) -> dict:
    """A report finished (as ``sp_reports.finished_report.finished_report`` makes) from one SQS message body,
    shaped per schemas/notifications/ReportProcessingFinishedNotification.json."""
    try:
        message = json.loads(body)
        if message.get("notificationType") != NOTIFICATION_TYPE:
            raise NotificationError(f"not a {NOTIFICATION_TYPE} notification: {message.get('notificationType')!r}")
        report = message["payload"]["reportProcessingFinishedNotification"]
        status = report["processingStatus"]
        finished = {
            # A vendor's notification names no seller, so no account serves it (triage leaves it on the queue).
            "selling_partner_id": report.get("sellerId"),
            "selling_partner_conn_id": None,  # routed by triage_notifications
            "report_id": str(report["reportId"]),
            "report_type": str(report["reportType"]),
            "processing_status": status,
            "report_document_id": report.get("reportDocumentId"),
            "marketplace_ids": [],
            "data_start_time": None,
            "data_end_time": None,
            # The notification has no createdTime; the event time orders this report among the others.
            "created_time": message.get("eventTime"),
            "processing_end_time": message.get("eventTime"),
            "report_schedule_id": None,
            "notification_id": (message.get("notificationMetadata") or {}).get("notificationId"),
        }
    except NotificationError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotificationError(f"malformed notification ({type(exc).__name__}: {exc})") from None
    if status not in TERMINAL_STATUSES:
        raise NotificationError(f"report {finished['report_id']}: unexpected processingStatus {status!r}")
    return finished


def triage_notifications(
    messages: Iterable[Mapping],
    lake: Lake,
    registry: Mapping[str, ReportType],
    accounts: Iterable[Account],
    get_report: GetReport,
) -> dict[str, list[dict]]:
    """Sort a batch of SQS messages into {"land": DONE and CANCELLED finished reports, "fatal": FATAL ones,
    "ignored": [{"message_id", "reason"}] (not notifications of ours), "unrouted": [{"message_id", "receipt_handle",
    "selling_partner_id", "report_id"}] (a seller no account serves), "handled": the receipt handles of every
    message but the unrouted}: each report once, whatever SQS redelivered, none the ledger already holds, each
    routed to an account of its seller."""
    accounts = list(accounts)
    ignored: list[dict] = []
    unrouted: list[dict] = []
    handled: list[str | None] = []
    reports: dict[tuple[str, str], dict] = {}
    for message in messages:
        try:
            finished = parse_notification(message.get("Body", ""))
        except NotificationError as exc:
            ignored.append({"message_id": message.get("MessageId"), "reason": str(exc)})
            handled.append(message.get("ReceiptHandle"))
            continue
        seller, report_id = finished["selling_partner_id"], finished["report_id"]
        if not any(account.selling_partner_id == seller for account in accounts):
            unrouted.append(
                {
                    "message_id": message.get("MessageId"),
                    "receipt_handle": message.get("ReceiptHandle"),
                    "selling_partner_id": seller,
                    "report_id": report_id,
                }
            )
            continue
        handled.append(message.get("ReceiptHandle"))
        if finished["report_type"] not in registry:
            ignored.append(
                {
                    "message_id": message.get("MessageId"),
                    "reason": f"report {report_id}: {finished['report_type']} is not in the registry",
                }
            )
            continue
        if (seller, report_id) in reports:
            log.info(
                "Report %s of seller %s was notified more than once in this batch; landing it once", report_id, seller
            )
        reports.setdefault((seller, report_id), finished)

    from sp_reports.lake.ledger import Ledger

    entries = Ledger(lake).entries(reports)
    for key, entry in entries.items():
        if entry["status"] != "LISTED":
            log.info(
                "Report %s of seller %s is in the ledger already (%s via %s): skipped",
                key[1],
                key[0],
                entry["status"],
                entry["via"],
            )
            del reports[key]
    result: dict[str, list] = {"land": [], "fatal": [], "ignored": ignored, "unrouted": unrouted, "handled": handled}
    for key, finished in reports.items():
        finished = _routed(finished, entries.get(key), registry[finished["report_type"]], accounts, get_report)
        result["fatal" if finished["processing_status"] == "FATAL" else "land"].append(finished)
    for entry in ignored:
        log.warning("Ignored SQS message %s: %s", entry["message_id"], entry["reason"])
    for entry in unrouted:
        log.warning(
            "SQS message %s announces report %s of seller %s, which no account serves (SP_REPORTS_ACCOUNTS): "
            "left on the queue",
            entry["message_id"],
            entry["report_id"],
            entry["selling_partner_id"],
        )
    return result


def _routed(
    finished: dict, entry: dict | None, report: ReportType, accounts: list[Account], get_report: GetReport
) -> dict:
    """The notified report with its account and, when DONE, its marketplaces."""
    seller, report_id = finished["selling_partner_id"], finished["report_id"]
    mine = [account for account in accounts if account.selling_partner_id == seller]
    marketplaces: list[str] = []
    if entry and entry.get("marketplace_ids"):
        marketplaces = entry["marketplace_ids"].split(",")
    elif report.amazon_schedule and len(report.amazon_schedule.marketplace_ids) == 1:
        marketplaces = list(report.amazon_schedule.marketplace_ids)
    if marketplaces:
        regional = [account for account in mine if account.region == region_of(marketplaces[0])]
        mine = regional or mine
    if len(mine) == 1 and (marketplaces or finished["processing_status"] != "DONE"):
        return {**finished, "selling_partner_conn_id": mine[0].conn_id, "marketplace_ids": marketplaces}
    # The seller's region, or the report's marketplaces, are unknown: getReport through each of its accounts
    # (a region's endpoint knows only its own reports) until one finds it.
    for account in mine:
        try:
            found = get_report(account, report_id)
        except NotFoundError:
            continue
        log.info("Report %s of seller %s: found by getReport through account %s", report_id, seller, account.conn_id)
        return {**finished_report(found, account), "notification_id": finished["notification_id"]}
    raise LookupError(
        f"report {report_id} of seller {seller} was notified, but getReport through its accounts "
        f"{', '.join(a.conn_id for a in mine)} does not find it"
    )
