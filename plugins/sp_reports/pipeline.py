"""The steps after Amazon has finished a report: fetch -> parse -> land. Airflow tasks call these, and
so does ``sp-reports land``, so a replayed document lands exactly as a DAG would land it.

Each step takes and returns a JSON-able payload (``sp_reports.payloads``: they travel between tasks through
XCom) and keeps its files in the lake, so consecutive steps may run on different workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
from datetime import UTC, datetime
from typing import IO

from sp_reports.client import SellingPartnerClient
from sp_reports.lake import Lake, land_tables
from sp_reports.lake.delta import remove_landing_leftovers
from sp_reports.lake.ledger import Ledger
from sp_reports.lake.paths import manifest_path as _manifest_path
from sp_reports.lake.paths import raw_metadata_path
from sp_reports.memory import allocator
from sp_reports.parsing import parse_document
from sp_reports.payloads import FetchedDocument, FinishedReport, Manifest, ParsedDocument, ParseResult
from sp_reports.registry import ReportType, is_restricted

log = logging.getLogger(__name__)
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
COPY_CHUNK = 1024 * 1024


class AccountingError(RuntimeError):
    """rows read != rows landed + rows quarantined: something was lost, so nothing is committed."""


def fetch_document(
    client: SellingPartnerClient, lake: Lake, finished: FinishedReport, *, restricted: bool | None = None
) -> FetchedDocument:
    """Download a DONE report's document into the lake's raw zone, byte for byte (kept for replay).

    ``restricted``: the report type's registry flag (None: looked up); a restricted type's document is fetched with
    a Restricted Data Token naming it."""
    report_id, document_id = finished["report_id"], finished["report_document_id"]
    if restricted is None:
        restricted = is_restricted(finished["report_type"])
    if not document_id:
        raise ValueError(f"report {report_id} has no reportDocumentId (status {finished['processing_status']})")
    # The client rewinds its sink to retry an interrupted download; object-store outputs cannot
    # rewind, so the bytes are spooled (memory, then local disk) and copied into the lake in one go.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
        download = client.download_document(document_id, spool, restricted=restricted)
        spool.seek(0)
        fetched = store_raw_document(lake, finished, spool, content_type=download.content_type)
    if fetched["sha256"] != download.sha256:
        raise RuntimeError(f"document {document_id} changed between download and the raw zone")
    return fetched


def store_raw_document(
    lake: Lake, finished: FinishedReport, source: IO[bytes], *, content_type: str | None
) -> FetchedDocument:
    """Copy a document into ``raw/`` atomically, with a JSON sidecar describing it."""
    from sp_reports.client.documents import charset_of

    document_id = finished["report_document_id"]
    if document_id is None:
        raise ValueError(f"report {finished['report_id']} has no reportDocumentId: no document to store")
    path = lake.raw_document_path(
        finished["report_type"], finished["selling_partner_id"], finished["report_id"], document_id
    )
    digest, size, head = hashlib.sha256(), 0, b""
    with lake.open_output(path) as out:
        while chunk := source.read(COPY_CHUNK):
            if not head:
                head = chunk[:2]
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    fetched: FetchedDocument = {
        **finished,
        "raw_path": path,
        "content_type": content_type,
        "charset": charset_of(content_type),
        "compressed": head == b"\x1f\x8b",
        "size": size,
        "sha256": digest.hexdigest(),
    }
    lake.write_json(raw_metadata_path(path), fetched)
    log.info(
        "Stored document %s of report %s (seller %s): %d bytes (%s, Content-Type %s) -> %s",
        finished["report_document_id"],
        finished["report_id"],
        finished["selling_partner_id"],
        size,
        "gzip" if fetched["compressed"] else "uncompressed",
        content_type,
        path,
    )
    return fetched


def parse_raw_document(lake: Lake, fetched: FetchedDocument, report: ReportType) -> ParsedDocument:
    """Parse the raw document into typed Parquet files (and quarantine records) in the staging zone."""
    marketplace_id = ",".join(fetched["marketplace_ids"])
    extra = {
        "selling_partner_id": fetched["selling_partner_id"],
        "report_id": fetched["report_id"],
        "marketplace_id": marketplace_id,
        "report_created_time": fetched.get("created_time") or "",
        # Rows without a date of their own (snapshots) partition by the day the report describes.
        "report_date": _day(fetched.get("data_end_time") or fetched.get("created_time")),
    }
    result = parse_document(
        lake,
        fetched["raw_path"],
        lake.staging_dir(report.table_name, fetched["selling_partner_id"], fetched["report_id"]),
        report=report,
        marketplace_id=marketplace_id,
        charset=fetched.get("charset"),
        compressed=fetched.get("compressed"),
        extra_columns=extra,
    )
    log.info(
        "Parsed report %s: %d rows read, %d parsed, %d quarantined; encoding %s (%s); Arrow allocator %s",
        fetched["report_id"],
        result.rows_read,
        result.rows_parsed,
        result.rows_quarantined,
        result.encoding.get("codec"),
        result.encoding.get("reason"),
        allocator(),
    )
    return {**fetched, "parse": dataclasses.asdict(result)}


def land_parsed_document(lake: Lake, parsed: ParsedDocument, report: ReportType) -> Manifest:
    """Commit the parsed rows to the report type's Delta tables and write the landing's manifest, then
    remove the staging files (and whatever earlier attempts left). A report the ledger records as landed
    whose manifest is of this very document is not landed again: its manifest is returned."""
    manifest, recorded = landed_manifest(lake, parsed, report)
    if manifest is not None and recorded:
        _log_landed(parsed, manifest)
    else:  # ``sp-reports land`` writes no ledger row: a replay lands again, which changes nothing
        manifest = _land(lake, parsed, report)
    remove_leftovers(lake, parsed, report)
    return manifest


def land_and_record(lake: Lake, parsed: ParsedDocument, report: ReportType, via: str) -> Manifest:
    """Land, write the manifest, record the ledger row, and only then remove the staging files: a task
    killed at any point (the land task is retried with the same ``parsed``) finishes the landing on its
    retry, with every row landed once. A retry finding the manifest of this document returns it (recording
    the ledger row if the kill came before), without touching the tables; one finding only some tables
    committed lands the others (``land_tables`` recognises the committed ones)."""
    manifest, recorded = landed_manifest(lake, parsed, report)
    if manifest is None:
        manifest = _land(lake, parsed, report)
    else:
        _log_landed(parsed, manifest)
    if not recorded:
        Ledger(lake).record(
            parsed, "DONE", via, rows_landed=manifest["rows_landed"], manifest=manifest["manifest_path"]
        )
    remove_leftovers(lake, parsed, report)
    return manifest


def landed_manifest(lake: Lake, parsed: ParsedDocument, report: ReportType) -> tuple[Manifest | None, bool]:
    """The manifest of a finished landing of this report's document (same document id and sha256; a
    manifest is written once every table is committed), and whether the ledger records it as DONE."""
    path = manifest_path(lake, report, parsed)
    if not lake.exists(path):
        return None, False
    manifest = lake.read_json(path)
    if (manifest.get("document_id"), manifest.get("sha256")) != (parsed["report_document_id"], parsed["sha256"]):
        return None, False
    key = (parsed["selling_partner_id"], parsed["report_id"])
    entry = Ledger(lake).entries([key]).get(key)
    return manifest, entry is not None and entry["status"] == "DONE"


def _log_landed(parsed: ParsedDocument, manifest: Manifest) -> None:
    log.info(
        "Report %s was landed already from document %s (manifest %s, landed at %s); the tables are left as they are",
        parsed["report_id"],
        parsed["report_document_id"],
        manifest["manifest_path"],
        manifest["landed_at"],
    )


def remove_leftovers(lake: Lake, parsed: ParsedDocument, report: ReportType) -> None:
    """Once the report has landed: its staging directory (the files landed, those of earlier parses, the
    landings' markers), data files that killed landings of it wrote and no commit references, and the
    temporary files of killed writes of its raw document and manifest."""
    result = ParseResult(**parsed["parse"])
    staging = lake.staging_dir(report.table_name, parsed["selling_partner_id"], parsed["report_id"]) + "/"
    for path in [p for files in result.tables.values() for p in files] + result.quarantine_files:
        if not path.startswith(staging):  # those in the staging directory go with it
            lake.delete(path)
    remove_landing_leftovers(lake, report.table_name, parsed["selling_partner_id"], parsed["report_id"])
    raw_dir = parsed["raw_path"].rsplit("/", 1)[0]
    manifests = manifest_path(lake, report, parsed).rsplit("/", 1)[0]
    temporary = lake.remove_temporary(raw_dir) + lake.remove_temporary(manifests, f"{parsed['report_id']}.json.")
    if temporary:
        log.info("Removed temporary files of killed writes: %s", temporary)


def _land(lake: Lake, parsed: ParsedDocument, report: ReportType) -> Manifest:
    """Commit the tables, then write the manifest; the staging files stay (for a retry)."""
    result = ParseResult(**parsed["parse"])
    if result.rows_read != result.rows_parsed + result.rows_quarantined:
        raise AccountingError(
            f"report {parsed['report_id']}: {result.rows_read} rows read but {result.rows_parsed} parsed "
            f"+ {result.rows_quarantined} quarantined; nothing was committed"
        )
    landed = land_tables(
        lake,
        report.table_name,
        result,
        report=report,
        report_id=parsed["report_id"],
        selling_partner_id=parsed["selling_partner_id"],
        delete_staging=False,
        document=parsed["sha256"],
    )
    tables = {name: dataclasses.asdict(landing) for name, landing in landed.tables.items()}
    manifest: Manifest = {
        "selling_partner_id": parsed["selling_partner_id"],
        "report_id": parsed["report_id"],
        "report_type": parsed["report_type"],
        "marketplace_ids": parsed["marketplace_ids"],
        "document_id": parsed["report_document_id"],
        "raw_path": parsed["raw_path"],
        "content_type": parsed.get("content_type"),
        "bytes": parsed["size"],
        "sha256": parsed["sha256"],
        "compressed": result.compressed,
        "encoding": result.encoding,
        "rows_read": result.rows_read,
        "rows_landed": result.rows_parsed,
        "rows_quarantined": result.rows_quarantined,
        "values_quarantined": result.values_quarantined,
        "columns_added": landed.columns_added,
        "columns_missing": landed.columns_missing,
        "tables": tables,
        "quarantine_table": dataclasses.asdict(landed.quarantine) if landed.quarantine else None,
        "landed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "manifest_path": manifest_path(lake, report, parsed),
    }
    lake.write_json(manifest["manifest_path"], manifest)
    log.info(
        "Landed report %s; manifest %s:\n%s",
        parsed["report_id"],
        manifest["manifest_path"],
        json.dumps(manifest, indent=2, ensure_ascii=False),
    )
    return manifest


def manifest_path(lake: Lake, report: ReportType, finished: FinishedReport) -> str:
    """``manifests/<table>/<selling_partner_id>/<report_id>.json``."""
    return _manifest_path(report.table_name, finished["selling_partner_id"], finished["report_id"])


def recover_landed(lake: Lake, finished: FinishedReport, report: ReportType) -> bool:
    """Record a report whose manifest exists but whose ledger row does not (the landing finished, the
    task died before recording it); True if it was such a report."""
    path = manifest_path(lake, report, finished)
    if not lake.exists(path):
        return False
    manifest = lake.read_json(path)
    Ledger(lake).record(finished, "DONE", "recovered", rows_landed=manifest["rows_landed"], manifest=path)
    log.info("Report %s had landed already (manifest %s); recorded it in the ledger", finished["report_id"], path)
    return True


def land_raw_document(lake: Lake, fetched: FetchedDocument, report: ReportType) -> Manifest:
    """Parse and land a document already in the raw zone: what ``sp-reports land`` does in one go."""
    return land_parsed_document(lake, parse_raw_document(lake, fetched, report), report)


def summary_row(finished: FinishedReport, manifest: Manifest | None) -> dict:
    main = (manifest.get("tables", {}).get("") if manifest else None) or {}
    return {
        "report_type": finished["report_type"],
        "selling_partner_id": finished["selling_partner_id"],
        "report_id": finished["report_id"],
        "marketplace_ids": finished["marketplace_ids"],
        "processing_status": finished["processing_status"],
        "reused": bool(finished.get("reused")),
        "rows": manifest["rows_landed"] if manifest else finished.get("rows", 0),
        "rows_quarantined": manifest["rows_quarantined"] if manifest else 0,
        "table_uri": main.get("uri"),
    }


def format_summary(rows: list[dict]) -> str:
    lines = [
        f"{'seller':<16} {'reportId':<20} {'marketplace':<16} {'status':<10} {'rows':>8} {'quarantined':>11}  table"
    ]
    # "DONE reused": Amazon had the report already and the request task used it instead of asking again.
    for row in rows:
        lines.append(
            f"{row['selling_partner_id']:<16} {row['report_id']:<20} {','.join(row['marketplace_ids']):<16} "
            f"{row['processing_status'] + (' reused' if row.get('reused') else ''):<10} "
            f"{row['rows']:>8} {row['rows_quarantined']:>11}  {row['table_uri'] or '-'}"
        )
    return "\n".join(lines)


def _day(timestamp: str | None) -> str:
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")) if timestamp else datetime.now(UTC)
    return moment.date().isoformat()
