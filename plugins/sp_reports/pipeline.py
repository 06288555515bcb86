"""The steps after Amazon has finished a report: fetch -> parse -> land. Airflow tasks call these, and
so does the command line, so a replayed document lands exactly as a DAG would land it.

Each step takes and returns plain JSON-able dicts (they travel between tasks through XCom) and keeps
its files in the lake, so consecutive steps may run on different workers.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import datetime

from sp_reports.client import SellingPartnerClient
from sp_reports.lake import Lake, land_report, parse_flat_file
from sp_reports.registry import ReportType

log = logging.getLogger(__name__)
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024


def fetch_document(client: SellingPartnerClient, lake: Lake, outcome: dict) -> dict:
    """Download a DONE report's document into the lake's raw zone, byte for byte (kept for replay)."""
    report_id, document_id = outcome["report_id"], outcome["report_document_id"]
    if not document_id:
        raise ValueError(f"report {report_id} has no reportDocumentId (status {outcome['processing_status']})")
    path = lake.raw_document_path(outcome["report_type"], report_id, document_id)
    # The client rewinds its sink to retry an interrupted download; object-store outputs cannot
    # rewind, so the bytes are spooled (memory, then local disk) and copied into the lake in one go.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
        download = client.download_document(document_id, spool)
        spool.seek(0)
        with lake.open_output(path) as out:
            shutil.copyfileobj(spool, out, 1024 * 1024)
    fetched = {
        **outcome,
        "raw_path": path,
        "content_type": download.content_type,
        "charset": download.charset,
        "compressed": download.compressed,
        "size": download.size,
        "sha256": download.sha256,
    }
    lake.write_json(path + ".json", fetched)
    log.info("Fetched document %s of report %s: %d bytes (%s, charset %s) -> %s", document_id, report_id,
             download.size, "gzip" if download.compressed else "uncompressed", download.charset, path)
    return fetched


def parse_document(lake: Lake, fetched: dict, report: ReportType) -> dict:
    """Parse the raw document into Parquet files in the lake's staging zone."""
    if report.format != "tsv":
        raise NotImplementedError(f"{report.report_type}: {report.format} documents are not parsed yet")
    marketplace_id = ",".join(fetched["marketplace_ids"])
    extra = {"report_id": fetched["report_id"], "marketplace_id": marketplace_id}
    if not report.date_column:
        # Snapshots carry no row date: they partition by the day the report describes.
        extra["report_date"] = _day(fetched.get("data_end_time") or fetched.get("created_time"))
    result = parse_flat_file(
        lake,
        fetched["raw_path"],
        lake.staging_dir(report.table_name, fetched["report_id"]),
        charset=fetched.get("charset"),
        compressed=fetched.get("compressed"),
        extra_columns=extra,
        date_column=report.date_column,
    )
    log.info("Parsed report %s: %d rows, %d columns into %d Parquet file(s)", fetched["report_id"], result.rows,
             len(result.columns), len(result.files))
    return {**fetched, "staging_files": result.files, "rows": result.rows, "columns": result.columns}


def land_document(lake: Lake, parsed: dict, report: ReportType) -> dict:
    """Commit the parsed rows to the report type's Delta table, replacing any earlier landing of the report."""
    result = land_report(lake, report.table_name, parsed["staging_files"], report_id=parsed["report_id"])
    log.info("Landed report %s: %d rows in %s (version %s)", parsed["report_id"], result.rows, result.table_uri,
             result.version)
    return {
        "report_id": parsed["report_id"],
        "report_type": parsed["report_type"],
        "marketplace_ids": parsed["marketplace_ids"],
        "rows": result.rows,
        "table_uri": result.table_uri,
        "table_version": result.version,
    }


def summary_row(outcome: dict, landed: dict | None) -> dict:
    return {
        "report_type": outcome["report_type"],
        "report_id": outcome["report_id"],
        "marketplace_ids": outcome["marketplace_ids"],
        "processing_status": outcome["processing_status"],
        "rows": landed["rows"] if landed else outcome.get("rows", 0),
        "table_uri": landed["table_uri"] if landed else None,
    }


def format_summary(rows: list[dict]) -> str:
    lines = [f"{'reportId':<20} {'marketplace':<16} {'status':<10} {'rows':>8}  table"]
    for row in rows:
        lines.append(f"{row['report_id']:<20} {','.join(row['marketplace_ids']):<16} "
                     f"{row['processing_status']:<10} {row['rows']:>8}  {row['table_uri'] or '-'}")
    return "\n".join(lines)


def _day(timestamp: str | None) -> str:
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")) if timestamp else datetime.now()
    return moment.date().isoformat()
