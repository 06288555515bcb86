"""REPORT_PROCESSING_FINISHED notifications (SQS messages) -> reports to land, without polling.

A notification names the report, its type, status and document, but not its marketplaces, which the
parser needs (dates, encodings, partitions). They come, in this order, from the ledger (a listing
saw the report), the registry (the type's ``amazon_schedule`` names one marketplace), or one
getReport lookup as the last resort.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from sp_reports.finished_report import TERMINAL_STATUSES, finished_report
from sp_reports.registry import ReportType

if TYPE_CHECKING:  # the lake (pyarrow, deltalake) stays out of the triggerer, which parses notifications too
    from sp_reports.lake import Lake

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
            # The seller the report is of (vendors' notifications have none): a reportId is unique only per seller.
            "selling_partner_id": report.get("sellerId"),
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
    get_report: Callable[[str], dict],
) -> dict[str, list[dict]]:
    """Sort a batch of SQS messages into {"land": DONE and CANCELLED finished_reports, "fatal": FATAL finished_reports,
    "ignored": [{"message_id", "reason"}]}: each report once, whatever SQS redelivered, and none the
    ledger already holds."""
    ignored: list[dict] = []
    reports: dict[tuple[str, str], dict] = {}  # by (selling_partner_id, report_id)
    for message in messages:
        try:
            finished = parse_notification(message.get("Body", ""))
        except NotificationError as exc:
            ignored.append({"message_id": message.get("MessageId"), "reason": str(exc)})
            continue
        if finished["report_type"] not in registry:
            ignored.append(
                {
                    "message_id": message.get("MessageId"),
                    "reason": f"report {finished['report_id']}: {finished['report_type']} is not in the registry",
                }
            )
            continue
        key = (finished["selling_partner_id"], finished["report_id"])
        if key in reports:
            log.info("Report %s was notified more than once in this batch; landing it once", finished["report_id"])
        reports.setdefault(key, finished)

    from sp_reports.lake.ledger import Ledger

    ledger = Ledger(lake)
    entries = ledger.entries(reports)
    for key, entry in entries.items():
        if entry["status"] != "LISTED":
            log.info("Report %s is in the ledger already (%s via %s): skipped", key[1], entry["status"], entry["via"])
            del reports[key]
    result: dict[str, list[dict]] = {"land": [], "fatal": [], "ignored": ignored}
    for key, finished in reports.items():
        if finished["processing_status"] == "DONE":
            finished = _with_marketplaces(finished, entries.get(key), registry[finished["report_type"]], get_report)
        result["fatal" if finished["processing_status"] == "FATAL" else "land"].append(finished)
    for entry in ignored:
        log.warning("Ignored SQS message %s: %s", entry["message_id"], entry["reason"])
    return result


def _with_marketplaces(
    finished: dict, entry: dict | None, report: ReportType, get_report: Callable[[str], dict]
) -> dict:
    if entry and entry.get("marketplace_ids"):
        return {**finished, "marketplace_ids": entry["marketplace_ids"].split(",")}
    if report.amazon_schedule and len(report.amazon_schedule.marketplace_ids) == 1:
        return {**finished, "marketplace_ids": list(report.amazon_schedule.marketplace_ids)}
    log.info("Report %s: the notification names no marketplace; asking getReport once", finished["report_id"])
    seller = {k: finished[k] for k in ("selling_partner_id", "selling_partner_conn_id") if k in finished}
    return {
        **finished_report(get_report(finished["report_id"])),
        **seller,
        "notification_id": finished["notification_id"],
    }
