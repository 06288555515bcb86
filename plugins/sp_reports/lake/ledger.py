"""The ledger: which reports the lake already holds, so each lands exactly once.

MWS had sellers acknowledge each downloaded report (UpdateReportAcknowledgements); SP-API has no such
flag, so the pipeline remembers for itself. The ledger is a Delta table (``tables/_ledger``), one row
per report, queryable like any other table. A report is (``selling_partner_id``, ``report_id``): Amazon's
reportIds are unique only per seller, so every lookup takes key pairs and returns rows by key pair:

* ``LISTED``: found by a listing, not landed yet. A listing's watermark never passes a LISTED report,
  so a landing that failed is listed again, however many later reports landed meanwhile.
* ``DONE`` (landed, with its row count and manifest), ``CANCELLED`` (Amazon had no data) or ``FATAL``
  (failed at Amazon; recorded so that a redelivered notification does not fail a second run).

Writes are MERGEs keyed on (``selling_partner_id``, ``report_id``) that never overwrite a final status,
retried on concurrent commits: two runs recording the same report leave one row. A ledger without the
``selling_partner_id`` column (a lake of the single-seller layout) raises ``LegacyLakeError``.

Each row also holds the report's data range (``data_start_time``, ``data_end_time``), so a re-triggered
backfill can skip the ranges already landed (``landed_ranges``). Ledgers written before those columns
existed get them on their next write, and read as null until then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, overload

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from sp_reports.columns import SELLER_COLUMN
from sp_reports.columns import selling_partner_id as valid_seller

from .legacy import LegacyLakeError
from .storage import Lake

if TYPE_CHECKING:
    from sp_reports.payloads import FinishedReport

log = logging.getLogger(__name__)

LEDGER_TABLE = "_ledger"
LISTED = "LISTED"
FINAL_STATUSES = ("DONE", "CANCELLED", "FATAL")
COMMIT_ATTEMPTS = 8

Key = tuple[str, str]  # (selling_partner_id, report_id)
RangeKey = tuple[str, str, str]  # (selling_partner_id, report_type, marketplace_id)
DataRange = tuple[datetime, datetime]
# Statuses whose data range needs no new report: landed, or Amazon had no data for it.
RANGE_SETTLED_STATUSES = ("DONE", "CANCELLED")

SCHEMA = pa.schema(
    [
        pa.field(SELLER_COLUMN, pa.string(), nullable=False),
        pa.field("report_id", pa.string(), nullable=False),
        pa.field("report_type", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("marketplace_ids", pa.string()),
        pa.field("report_created_time", pa.timestamp("us", tz="UTC")),
        pa.field("rows_landed", pa.int64()),
        pa.field("via", pa.string()),  # request | notification | listing | recovered
        pa.field("manifest", pa.string()),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("data_start_time", pa.timestamp("us", tz="UTC")),
        pa.field("data_end_time", pa.timestamp("us", tz="UTC")),
    ]
)


class Ledger:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.uri = lake.table_uri(LEDGER_TABLE)

    # ------------------------------------------------------------------------------------ reading

    def entries(self, keys: Iterable[Key] | None = None) -> dict[Key, dict]:
        """{(selling_partner_id, report_id): row} for these reports (all reports when None)."""
        table = self._read()
        if table is None:
            return {}
        wanted: set[Key] | None = None
        if keys is not None:
            wanted = {(seller, report_id) for seller, report_id in keys}
            ids = pa.array(sorted({report_id for _, report_id in wanted}), pa.string())
            table = table.filter(pc.is_in(table.column("report_id"), value_set=ids))
        rows = {(row[SELLER_COLUMN], row["report_id"]): row for row in table.to_pylist()}
        return rows if wanted is None else {key: row for key, row in rows.items() if key in wanted}

    def landed(self, keys: Iterable[Key]) -> set[Key]:
        """The reports among these whose fate is recorded (landed, no data or failed at Amazon)."""
        return {key for key, row in self.entries(keys).items() if row["status"] in FINAL_STATUSES}

    def watermark(self, report_types: Iterable[str], overlap: timedelta, *, selling_partner_id: str) -> datetime | None:
        """Where the next listing of these report types for this seller starts (createdSince): ``overlap``
        before the newest report recorded, or the oldest report still LISTED if that is earlier. Listings
        are per seller account, so each seller has its own watermark."""
        table = self._read()
        if table is None:
            return None
        table = table.filter(pc.equal(table.column(SELLER_COLUMN), valid_seller(selling_partner_id)))
        table = table.filter(pc.is_in(table.column("report_type"), value_set=pa.array(sorted(set(report_types)))))
        table = table.filter(pc.is_valid(table.column("report_created_time")))
        if table.num_rows == 0:
            return None
        listed = pc.equal(table.column("status"), LISTED)
        newest_final = pc.max(table.filter(pc.invert(listed)).column("report_created_time")).as_py()
        oldest_listed = pc.min(table.filter(listed).column("report_created_time")).as_py()
        candidates = [t for t in (newest_final and newest_final - overlap, oldest_listed) if t is not None]
        return min(candidates) if candidates else None

    def landed_ranges(self, report_types: Iterable[str]) -> dict[RangeKey, list[DataRange]]:
        """{(selling_partner_id, report_type, marketplace_id): [(data start, data end), ...]}, sorted: the data
        ranges of reports of these types that landed (DONE) or had no data (CANCELLED), one ledger read for
        every seller and marketplace. Only reports of exactly one marketplace count (a report of several
        is not the one a plan asks for); FATAL and LISTED reports, and those without a range, don't."""
        table = self._read()
        if table is None:
            return {}
        table = table.filter(pc.is_in(table.column("report_type"), value_set=pa.array(sorted(set(report_types)))))
        table = table.filter(pc.is_in(table.column("status"), value_set=pa.array(RANGE_SETTLED_STATUSES)))
        table = table.filter(
            pc.and_(pc.is_valid(table.column("data_start_time")), pc.is_valid(table.column("data_end_time")))
        )
        ranges: dict[RangeKey, list[DataRange]] = {}
        columns = [SELLER_COLUMN, "report_type", "marketplace_ids", "data_start_time", "data_end_time"]
        for row in table.select(columns).to_pylist():
            marketplace = row["marketplace_ids"] or ""
            if marketplace and "," not in marketplace:
                key = (row[SELLER_COLUMN], row["report_type"], marketplace)
                ranges.setdefault(key, []).append((row["data_start_time"], row["data_end_time"]))
        return {key: sorted(spans) for key, spans in ranges.items()}

    # ------------------------------------------------------------------------------------ writing

    def mark_listed(self, reports: Iterable[FinishedReport], via: str = "listing") -> None:
        """Record reports found by a listing (finished reports); rows already present stay as they are."""
        self._merge([_row(report, LISTED, via) for report in reports], overwrite_listed=False)

    def record(
        self, report: FinishedReport, status: str, via: str, rows_landed: int = 0, manifest: str | None = None
    ) -> bool:
        """Record a report's fate; False when it was already recorded (the first record stands)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {FINAL_STATUSES}, not {status!r}")
        new = self._merge([_row(report, status, via, rows_landed, manifest)], overwrite_listed=True)
        if not new:
            log.info(
                "Report %s of seller %s was already in the ledger; its first record stands",
                report["report_id"],
                report["selling_partner_id"],
            )
        return bool(new)

    def _merge(self, rows: list[dict], overwrite_listed: bool) -> int:
        """MERGE rows in; returns how many rows were inserted or promoted from LISTED."""
        if not rows:
            return 0
        source = pa.Table.from_pylist(rows, schema=SCHEMA)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                table = self._with_all_columns(self._open(create=True))
                merge = table.merge(
                    source,
                    predicate=f"t.{SELLER_COLUMN} = s.{SELLER_COLUMN} AND t.report_id = s.report_id",
                    source_alias="s",
                    target_alias="t",
                )
                if overwrite_listed:
                    merge = merge.when_matched_update_all(predicate=f"t.status = '{LISTED}'")
                metrics = merge.when_not_matched_insert_all().execute()
            except CommitFailedError:
                if attempt == COMMIT_ATTEMPTS:
                    raise
                log.warning(
                    "Ledger commit conflicted with a concurrent one (attempt %d/%d); retrying", attempt, COMMIT_ATTEMPTS
                )
                time.sleep(0.05 * attempt)
                continue
            return int(metrics.get("num_target_rows_inserted", 0)) + int(metrics.get("num_target_rows_updated", 0))
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------------------------ table

    @overload
    def _open(self, create: Literal[True]) -> DeltaTable: ...
    @overload
    def _open(self, create: bool = False) -> DeltaTable | None: ...
    def _open(self, create: bool = False) -> DeltaTable | None:
        try:
            return self._checked(DeltaTable(self.uri, storage_options=self.lake.storage_options))
        except TableNotFoundError:
            if not create:
                return None
        try:
            return DeltaTable.create(
                self.uri,
                schema=SCHEMA,
                mode="ignore",
                name="sp_reports_ledger",
                description="Reports the lake holds: one row per (selling_partner_id, report_id)",
                storage_options=self.lake.storage_options,
            )
        except CommitFailedError:  # another run created it first
            return self._checked(DeltaTable(self.uri, storage_options=self.lake.storage_options))

    def _checked(self, table: DeltaTable) -> DeltaTable:
        if SELLER_COLUMN not in table.schema().to_arrow().names:
            raise LegacyLakeError("the ledger (tables/_ledger)", self.lake.root)
        return table

    def _with_all_columns(self, table: DeltaTable) -> DeltaTable:
        """The ledger with every column of SCHEMA: one written before a column was added gets it (nullable,
        a metadata-only commit; a concurrent writer adding it too makes this raise CommitFailedError)."""
        existing = set(table.schema().to_arrow().names)
        missing = [f for f in SCHEMA if f.name not in existing]
        if not missing:
            return table
        table.alter.add_columns(DeltaSchema.from_arrow(pa.schema(missing)).fields)
        log.info("Ledger %s: added columns %s", self.uri, [f.name for f in missing])
        return self._checked(DeltaTable(self.uri, storage_options=self.lake.storage_options))

    def _read(self) -> pa.Table | None:
        from .delta import read_table

        try:
            table = read_table(self.lake, LEDGER_TABLE)
        except TableNotFoundError:
            return None
        if SELLER_COLUMN not in table.column_names:
            raise LegacyLakeError("the ledger (tables/_ledger)", self.lake.root)
        for f in SCHEMA:  # a ledger from before a column was added: the column reads as null
            if f.name not in table.column_names:
                table = table.append_column(f, pa.nulls(table.num_rows, f.type))
        return table


def _row(report: FinishedReport, status: str, via: str, rows_landed: int = 0, manifest: str | None = None) -> dict:
    return {
        SELLER_COLUMN: valid_seller(report["selling_partner_id"]),
        "report_id": report["report_id"],
        "report_type": report["report_type"],
        "status": status,
        "marketplace_ids": ",".join(report.get("marketplace_ids") or []) or None,
        "report_created_time": _instant(report.get("created_time")),
        "rows_landed": rows_landed,
        "via": via,
        "manifest": manifest,
        "recorded_at": datetime.now(UTC),
        "data_start_time": _instant(report.get("data_start_time")),
        "data_end_time": _instant(report.get("data_end_time")),
    }


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
