"""A report Amazon has finished, as the pipeline sees it (a ``FinishedReport``), whichever way we waited for it;
and the error a FATAL one raises."""

from __future__ import annotations

import codecs
import gzip
import io
import json
from typing import TYPE_CHECKING

from sp_reports.client import SellingPartnerClient
from sp_reports.payloads import FinishedReport
from sp_reports.registry import is_restricted

if TYPE_CHECKING:
    from sp_reports.accounts import Account

TERMINAL_STATUSES = frozenset({"CANCELLED", "DONE", "FATAL"})
ERROR_SUMMARY_CHARS = 500


class ReportFatalError(RuntimeError):
    """Amazon ended the report FATAL; the message summarises its error document."""


def finished_report(report: dict, account: Account) -> FinishedReport:
    """A getReport ``Report`` of this account's seller as the payload downstream tasks get through XCom (no URL,
    no secret). A reportId is unique only together with its seller, so the seller goes with it everywhere."""
    return {
        "selling_partner_id": account.selling_partner_id,
        "selling_partner_conn_id": account.conn_id,
        "report_id": report["reportId"],
        "report_type": report["reportType"],
        "processing_status": report["processingStatus"],
        "report_document_id": report.get("reportDocumentId"),
        "marketplace_ids": report.get("marketplaceIds", []),
        "data_start_time": report.get("dataStartTime"),
        "data_end_time": report.get("dataEndTime"),
        "created_time": report.get("createdTime"),
        "processing_end_time": report.get("processingEndTime"),
        "report_schedule_id": report.get("reportScheduleId"),
    }


def fatal_error(client: SellingPartnerClient, report: dict) -> ReportFatalError:
    """Build the error for a FATAL report, with its error document summarised when Amazon gave one (a restricted
    report type's error document, like its data, takes a Restricted Data Token)."""
    report_id, report_type = report["reportId"], report["reportType"]
    document_id = report.get("reportDocumentId")
    if not document_id:
        return ReportFatalError(f"report {report_id} ({report_type}) ended FATAL; Amazon gave no error document")
    buffer = io.BytesIO()
    try:
        download = client.download_document(document_id, buffer, restricted=is_restricted(report_type))
    except Exception as exc:  # noqa: BLE001 - the FATAL is the news; a failed download must not hide it
        return ReportFatalError(
            f"report {report_id} ({report_type}) ended FATAL; its error document {document_id} "
            f"could not be fetched: {exc}"
        )
    return ReportFatalError(
        f"report {report_id} ({report_type}) ended FATAL: "
        f"{summarise_error_document(buffer.getvalue(), download.charset)}"
    )


def summarise_error_document(data: bytes, charset: str | None = None) -> str:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            return "(error document is a corrupt gzip stream)"
    text = data.decode(_codec(charset), errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("errorDetails"):
        text = str(parsed["errorDetails"])
    text = " ".join(text.split())
    if not text:
        return "(empty error document)"
    return text if len(text) <= ERROR_SUMMARY_CHARS else text[: ERROR_SUMMARY_CHARS - 1] + "…"


def _codec(charset: str | None) -> str:
    # A summary for a human: a wrong guess only costs replacement characters, never the failure.
    try:
        return codecs.lookup(charset).name if charset else "utf-8"
    except LookupError:
        return "utf-8"
