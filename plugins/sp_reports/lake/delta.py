"""Delta landing: a parsed document's staging Parquet files -> the report type's Delta tables.

``land_tables`` lands one ``ParseResult`` (see docs/parsing.md): the main table ``tables/<name>``,
extra tables ``tables/<name>__<suffix>`` and the quarantine table ``tables/<name>__quarantine``.

* Report types with natural keys are MERGEd on (marketplace_id, natural keys): a key's row is the one
  from the most recent report (report_created_time, then report_id), duplicates inside one document
  keep the last line, relanding a report changes nothing, a row appears once however many reports
  carried it. Other tables (extra tables and the quarantine table included) replace the report's rows.
* One commit per table, all or nothing: the landing writes its data files itself (``datafiles.py``,
  bounded memory whatever the partitions) and commits their ``add`` actions together with the
  ``remove`` actions of the files it replaces in one Delta transaction. Until that commit nothing is
  visible; after a failure the written files are deleted (or, if the process died, left unreferenced
  for VACUUM). Schema evolution (new columns, with their Amazon header names as column metadata) is
  committed first, on its own: it only adds nullable columns.
* Concurrent landings into one table (mapped Airflow tasks): each commit is made with delta-rs retries
  off, so it fails if any other commit got in since the snapshot it was computed from; the landing
  then recomputes against the new snapshot (only scanning the files that appeared) and commits again,
  a bounded number of times with jittered backoff. That is serializable: two documents carrying the
  same new key can't both insert it.

On S3, delta-rs (>= 1.0) makes the commit safe with conditional writes (``PutObject`` with
``If-None-Match: *``), which AWS S3 and moto support; no locking provider is needed. S3-compatible
stores without conditional writes need ``AWS_S3_ALLOW_UNSAFE_RENAME=true`` in the storage options,
which is only safe with a single writer per table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from pyarrow import fs as pafs

from sp_reports.columns import (
    CREATED_TIME_COLUMN,
    MARKETPLACE_COLUMN,
    REPORT_ID_COLUMN,
    SELLER_COLUMN,
    SOURCE_COLUMNS_KEY,
    SOURCE_LINE_COLUMN,
    SYSTEM_COLUMNS,
    natural_key_columns,
)
from sp_reports.payloads import ParseResult

from .datafiles import (
    DataFile,
    PartitionedWriter,
    StagedPartition,
    TableFile,
    TableStorage,
    data_file_name,
    file_stats,
    partition_dir,
    rewrite_without,
)
from .keyindex import FileMatch, MergeIndex, SourceDrops
from .legacy import LegacyLakeError
from .paths import join_path, staging_dir
from .storage import Lake

log = logging.getLogger(__name__)

# New tables are partitioned by marketplace only (docs/architecture.md, "Partitioning": daily partitions
# of 20 sellers x 5 marketplaces would be tens of thousands of small files a year); a table keeps the
# partitioning it was created with (Delta cannot change it in place): the landing reads it from the table.
DEFAULT_PARTITION_BY = ("marketplace_id",)
QUARANTINE_PARTITION_BY = ("marketplace_id",)
QUARANTINE_SUFFIX = "quarantine"
# Delta column metadata: the Amazon header a column comes from (e.g. "amazon-order-id").
SOURCE_COLUMN_METADATA = "sp_reports.source_column"
MAX_ATTEMPTS = 12
# Commit metadata (besides sp_reports.selling_partner_id, sp_reports.report_id and sp_reports.mode): the landing that made the commit
# (its data files are named with it), its TableLanding counts, and the staging files' digest.
LANDING_METADATA = "sp_reports.landing"
COUNTS_METADATA = "sp_reports.counts"
# The same, as landings before the rename wrote it: a retry after upgrading still recognises their commits.
OLD_COUNTS_METADATA = "sp_reports.outcome"
STAGING_METADATA = "sp_reports.staging"
DOCUMENT_METADATA = "sp_reports.document"
# Markers of the landings of a report (``_Marker``): a directory of the report's staging directory.
MARKERS_DIR = "_landings"
# Commits read, at most, to find whether a killed landing committed (those made since it began).
HISTORY_LIMIT = 500
_BACKOFF_BASE, _BACKOFF_CAP = 0.1, 5.0  # seconds
_READ_BATCH_ROWS = 16_384


class LandingError(ValueError):
    """The staged rows can't be landed as they are (wrong report, missing or incompatible columns)."""


@dataclass
class TableLanding:
    name: str  # table name, e.g. get_merchant_listings_all_data__quarantine
    uri: str
    rows: int  # rows of this document in the table after the landing
    version: int | None  # the commit's table version; the current one if nothing changed; None: no table
    mode: str = "replace"  # "merge" (natural keys) or "replace" (the report's rows)
    replaced: int = 0  # table rows removed: the report's earlier rows, or older rows of the merged keys
    duplicates: int = 0  # document rows not landed: a later line of the document has the same key
    superseded: int = 0  # document rows not landed: a more recent report already landed the key


@dataclass
class LandResult:
    tables: dict[str, TableLanding]  # by suffix: "" = the main table, "summary", ...
    quarantine: TableLanding | None = None
    columns_added: list[str] = field(default_factory=list)
    columns_missing: list[str] = field(default_factory=list)

    # The main table's landing, as ``land_report`` used to return it.
    @property
    def rows(self) -> int:
        main = self.tables.get("")
        return main.rows if main else 0

    @property
    def table_uri(self) -> str | None:
        main = self.tables.get("")
        return main.uri if main else None

    @property
    def version(self) -> int | None:
        main = self.tables.get("")
        return main.version if main else None


def table_name_for(report_type: str) -> str:
    """Table name of a report type: ``GET_FLAT_FILE_OPEN_LISTINGS_DATA`` -> ``get_flat_file_open_listings_data``."""
    return report_type.lower()


# ----------------------------------------------------------------------------------------- public API


def land_tables(
    lake: Lake,
    table_name: str,
    parsed: ParseResult,
    *,
    report: Any,
    report_id: str,
    selling_partner_id: str,
    max_attempts: int = MAX_ATTEMPTS,
    spill_dir: str | None = None,
    delete_staging: bool = True,
    document: str | None = None,
) -> LandResult:
    """Land a parsed document (a ``ParseResult``: ``.tables``, ``.quarantine_files``, ``.columns``,
    ``.source_columns``) into ``tables/<table_name>``, its extra tables and its quarantine table.

    Each table is committed atomically on its own; the staging files are deleted once all are (unless
    ``delete_staging`` is false: the pipeline deletes them once the manifest and ledger are written).
    On an error nothing of the failing table is visible and the staging files stay for a retry. A retry
    of the same staging files recognises the tables an earlier attempt committed (it may have been
    killed) and does not commit them again; it removes the data files killed attempts left (see
    ``_Marker``). ``document`` (the raw document's sha256) is recorded in each commit's metadata.

    A report is (``selling_partner_id``, ``report_id``): a reportId is unique only per seller, so a
    replace replaces that pair's rows and every row staged must carry both.
    """
    staged: Mapping[str, Sequence[str]] = dict(getattr(parsed, "tables", {}) or {})
    quarantine_files = list(getattr(parsed, "quarantine_files", []) or [])
    aliases = dict(getattr(report, "header_aliases", {}) or {})
    headers = {**_staged_source_columns(lake, staged.get("", ())), **dict(getattr(parsed, "source_columns", {}) or {})}
    headers = {column: aliases.get(header, header) for column, header in headers.items()}
    attempts = _Attempts(
        lake, table_name, selling_partner_id, report_id, _staging_key(staged, quarantine_files), document
    )

    def land(
        name: str,
        files: Sequence[str],
        *,
        key_columns: tuple[str, ...] = (),
        partition_by: Sequence[str] = DEFAULT_PARTITION_BY,
        headers: Mapping[str, str] | None = None,
        document_columns: list[str] | None = None,
    ) -> _Landed:
        return _land_table(
            lake, name, files, key_columns=key_columns, partition_by=partition_by, headers=headers or {},
            document_columns=document_columns, report_id=report_id, selling_partner_id=selling_partner_id,
            max_attempts=max_attempts,
            spill_dir=spill_dir, attempts=attempts,
        )  # fmt: skip

    markers: list[str] = []
    tables: dict[str, TableLanding] = {}
    columns_added: list[str] = []
    columns_missing: list[str] = []
    for suffix in sorted(staged, key=lambda s: (s != "", s)):
        main = suffix == ""
        landed = land(
            table_name if main else f"{table_name}__{suffix}",
            staged[suffix],
            key_columns=natural_key_columns(report) if main else (),
            headers=headers if main else _with_aliases(_staged_source_columns(lake, staged[suffix]), aliases),
            document_columns=list(getattr(parsed, "columns", []) or []) if main else None,
        )
        markers += landed.markers
        if landed.landing is not None:
            tables[suffix] = landed.landing
        if main:
            columns_added, columns_missing = landed.columns_added, landed.columns_missing
    if "" not in staged and natural_key_columns(report) == ():
        # An empty document still replaces the report's earlier rows in the main table.
        landed = land(table_name, [])
        if landed.landing is not None:
            tables[""] = landed.landing
    landed = land(f"{table_name}__{QUARANTINE_SUFFIX}", quarantine_files, partition_by=QUARANTINE_PARTITION_BY)
    quarantine, markers = landed.landing, markers + landed.markers

    if delete_staging:
        _delete_staging(lake, [p for files in staged.values() for p in files] + quarantine_files + markers)
    return LandResult(
        tables=tables, quarantine=quarantine, columns_added=columns_added, columns_missing=columns_missing
    )


def land_report(
    lake: Lake,
    table_name: str,
    parquet_files: Sequence[str],
    *,
    report_id: str,
    selling_partner_id: str,
    partition_by: Sequence[str] = DEFAULT_PARTITION_BY,
    max_attempts: int = MAX_ATTEMPTS,
    delete_staging: bool = True,
) -> LandResult:
    """Replace report ``report_id``'s rows in ``tables/<table_name>`` by the staging ``parquet_files``.

    The single-table form of ``land_tables`` (no natural keys, no quarantine). ``partition_by`` applies
    when the table is created. With no files (an empty document) the report's earlier rows are deleted.
    """
    landed = _land_table(
        lake,
        table_name,
        parquet_files,
        report_id=report_id,
        selling_partner_id=selling_partner_id,
        key_columns=(),
        partition_by=partition_by,
        headers=_staged_source_columns(lake, parquet_files),
        document_columns=None,
        max_attempts=max_attempts,
        spill_dir=None,
        attempts=_Attempts(lake, table_name, selling_partner_id, report_id, _staging_key({"": parquet_files}, [])),
    )
    if delete_staging:
        _delete_staging(lake, list(parquet_files) + landed.markers)
    landing = landed.landing or TableLanding(table_name, lake.table_uri(table_name), 0, None)
    return LandResult(tables={"": landing}, columns_added=landed.columns_added, columns_missing=landed.columns_missing)


def open_table(lake: Lake, table_name: str) -> DeltaTable:
    return DeltaTable(lake.table_uri(table_name), storage_options=lake.storage_options)


def read_table(lake: Lake, table_name: str, columns: list[str] | None = None, filters=None) -> pa.Table:
    """Read a table through the lake's pyarrow filesystem.

    Preferred over ``DeltaTable.to_pyarrow_table()`` without a filesystem: on S3, deltalake 1.6's own
    pyarrow filesystem wrapper makes the Python process abort at exit
    ("terminate called without an active exception").
    """
    table = open_table(lake, table_name)
    root = pafs.SubTreeFileSystem(lake.fs_path(join_path("tables", table_name)), lake.filesystem)
    return table.to_pyarrow_table(columns=columns, filters=filters, filesystem=root)


def source_columns(lake: Lake, table_name: str) -> dict[str, str]:
    """{column: Amazon header} as recorded in the table's column metadata."""
    return {
        f.name: f.metadata[SOURCE_COLUMN_METADATA]
        for f in open_table(lake, table_name).schema().fields
        if f.metadata and SOURCE_COLUMN_METADATA in f.metadata
    }


# ----------------------------------------------------------------------------------------- one table


@dataclass
class _Landed:
    landing: TableLanding | None
    columns_added: list[str] = field(default_factory=list)
    columns_missing: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)  # of this landing, deleted with the staging files


def _land_table(
    lake: Lake,
    name: str,
    files: Sequence[str],
    *,
    report_id: str,
    selling_partner_id: str,
    key_columns: Sequence[str],
    partition_by: Sequence[str],
    headers: Mapping[str, str],
    document_columns: list[str] | None,
    max_attempts: int,
    spill_dir: str | None,
    attempts: _Attempts,
) -> _Landed:
    uri = lake.table_uri(name)
    files = list(files)
    committed, earlier = attempts.resume(name, uri)
    if committed is not None:
        if earlier is None:
            raise LandingError(f"{name}: report {report_id} found committed without its attempt's marker")
        log.info(
            "%s: report %s was committed by an earlier attempt (version %s); not committed again",
            name,
            report_id,
            committed.version,
        )
        return _Landed(committed, list(earlier[1].columns_added), list(earlier[1].columns_missing), [earlier[0]])
    schema = _staged_schema(lake, files)  # reads every footer first: a bad file fails before writing
    table = _open(lake, uri)
    if table is not None and SELLER_COLUMN not in table.schema().to_arrow().names:
        raise LegacyLakeError(f"table {name}", lake.root)
    if schema is not None:
        required = [
            SELLER_COLUMN,
            REPORT_ID_COLUMN,
            *key_columns,
            *(table.metadata().partition_columns if table else partition_by),
        ]
        lacking = [c for c in dict.fromkeys(required) if c not in schema.names]
        if lacking:
            raise LandingError(
                f"staging files for report {selling_partner_id}/{report_id} lack columns {lacking} (table {name})"
            )
    mode = "merge" if key_columns else "replace"

    if schema is None:  # an empty document: nothing staged
        if table is None:
            return _Landed(None)
        if mode == "merge":
            return _Landed(TableLanding(name, uri, 0, table.version(), mode))
        return _Landed(
            _Landing(
                lake,
                name,
                uri,
                [],
                None,
                {},
                report_id,
                (),
                max_attempts,
                spill_dir,
                metadata=attempts.metadata,
                selling_partner_id=selling_partner_id,
            ).run()
        )

    before = [f.name for f in _arrow_schema(table)] if table is not None else []
    document = document_columns or list(schema.names)
    document = [c for c in document if c not in SYSTEM_COLUMNS]
    added = [c for c in document if c not in before]
    missing = [c for c in before if c not in SYSTEM_COLUMNS and c not in document]
    if earlier is not None:  # the killed attempt may have added the columns already: its comparison stands
        added, missing = list(earlier[1].columns_added), list(earlier[1].columns_missing)
    if added or missing:
        log.info("%s: report %s adds columns %s, lacks columns %s", name, report_id, added, missing)

    landing_id = uuid.uuid4().hex[:12]
    marker = attempts.begin(
        _Marker(
            name,
            landing_id,
            table.version() if table is not None else None,
            attempts.key,
            socket.gethostname(),
            os.getpid(),
            added,
            missing,
        )
    )
    landing: _Landing | None = None
    try:
        if table is None:
            table = _create(lake, uri, schema, [c for c in partition_by if c in schema.names], headers)
        table = _evolve(lake, uri, table, schema, headers, max_attempts)
        plan = _conform_plan(schema, _arrow_schema(table), name)
        landing = _Landing(
            lake,
            name,
            uri,
            files,
            schema,
            plan,
            report_id,
            tuple(key_columns),
            max_attempts,
            spill_dir,
            headers,
            landing_id=landing_id,
            metadata=attempts.metadata,
            selling_partner_id=selling_partner_id,
        )
        result = landing.run()
    except BaseException:
        if landing is None or landing.cleaned_up:
            _delete_staging(lake, [marker])
        raise
    return _Landed(result, added, missing, [marker])


class _Landing:
    """One document into one table: write the data files, then commit (retrying on conflicts)."""

    def __init__(
        self,
        lake: Lake,
        name: str,
        uri: str,
        files: list[str],
        schema: pa.Schema | None,
        plan: dict[str, pa.DataType],
        report_id: str,
        key_columns: tuple[str, ...],
        max_attempts: int,
        spill_dir: str | None,
        headers: Mapping[str, str] | None = None,
        *,
        landing_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        selling_partner_id: str,
    ):
        self.lake, self.name, self.uri, self.files, self.schema = lake, name, uri, files, schema
        self.seller = selling_partner_id
        self.headers = dict(headers or {})
        self.plan, self.report_id, self.key_columns = plan, report_id, key_columns
        self.max_attempts, self.spill_root = max_attempts, spill_dir
        self.storage = TableStorage(lake, name)
        self.landing_id = landing_id or uuid.uuid4().hex[:12]
        self.metadata = dict(metadata or {})
        self.cleaned_up = False  # failed, and nothing it wrote is left
        self.merge = bool(key_columns)
        self.created_time: str | None = None
        self.marketplaces: set[str | None] = set()
        self.key_range: tuple[str, str] | None = None
        self._key_range_valid = True
        self.new_files: list[DataFile] = []
        self._filtered: dict[int, tuple[bytes, DataFile | None]] = {}
        self._rewritten: dict[str, DataFile | None] = {}
        self._matches: dict[str, FileMatch] = {}
        self._seq = 1_000_000  # file numbers of rewritten files (new files count from 0)
        self._landed_before: TableLanding | None = None
        self.partition_by: list[str] = []

    # ---------------------------------------------------------------- write

    def run(self) -> TableLanding:
        spill_dir = tempfile.mkdtemp(prefix="sp-reports-landing-", dir=self.spill_root) if self.merge else None
        index: MergeIndex | None = None
        committed = False
        try:
            if self.schema is not None:
                table = _open(self.lake, self.uri)
                if self.merge:
                    source_rows = _staged_rows(self.lake, self.files)
                    table_rows = sum(f.rows or 0 for f in _table_files(table)) if table else 0
                    index = MergeIndex(self.key_columns, source_rows, table_rows, spill_dir)
                self.partition_by = list(table.metadata().partition_columns) if table else []
                self._write(self.partition_by, index)
            landing = self._commit_loop(index)
            committed = True
            return landing
        finally:
            if index is not None:
                index.close()
            if spill_dir is not None:
                shutil.rmtree(spill_dir, ignore_errors=True)
            if not committed and not self._in_table():
                self._delete(self._all_written())
                self.cleaned_up = True

    def _write(self, partition_by: list[str], index: MergeIndex | None) -> None:
        schema = self.schema
        if schema is None:
            raise LandingError(f"{self.name}: report {self.report_id} staged no schema to write")
        if not self._adopt(partition_by):
            writer = PartitionedWriter(self.storage, partition_by, self.landing_id, text_statistics=self.key_columns)
            counted = [0]

            def batches() -> Iterator[pa.RecordBatch]:  # in the writer's worker thread
                for batch in _staged_batches(self.lake, self.files, schema, counted):
                    self._check_report(batch)
                    batch = _conform(batch, self.plan)
                    self._observe(batch)
                    yield batch

            try:
                self.new_files = writer.write_all(batches())
            except BaseException:
                writer.abort()
                raise
        if index is not None:
            # The key index is built from the files just written (their key columns read back) rather than
            # while writing: the two phases' memory doesn't add up.
            line_column = SOURCE_LINE_COLUMN if SOURCE_LINE_COLUMN in schema.names else None
            files = [
                (number, f.path, {k: v for k, v in f.partition_values.items() if k in self.key_columns})
                for number, f in enumerate(self.new_files)
                if f is not None
            ]
            index.add_source_files(files, self._read_columns, line_column)

    def _adopt(self, partition_by: list[str]) -> bool:
        """Take the staged files as the landing's data files, as they are, when the parse wrote them as
        such (``parsing.result.StagedDataFiles``: the table's partitions, its column types, data-file
        Parquet options); False (nothing done) when a file must be rewritten. Each file is copied into
        its partition directory under a name of this landing (a hard link locally, a server-side copy
        on S3): the staging files stay until the commit, for a retry."""
        footers = []
        for path in self.files:
            with self.lake.open_input_file(path) as f:
                parquet = pq.ParquetFile(f)
                metadata, schema = parquet.metadata, parquet.schema_arrow
            partition = StagedPartition.of(schema.metadata)
            if partition is None or sorted(partition.values) != sorted(partition_by):
                return False
            if any(self.plan.get(f.name) != f.type for f in partition.schema(schema)):
                return False  # a cast to the table's types: rewritten
            stats = json.loads(file_stats(metadata, schema))
            if metadata.num_rows and not all(
                (stats["minValues"].get(column), stats["maxValues"].get(column)) == (value, value)
                and not stats["nullCount"].get(column)
                for column, value in ((REPORT_ID_COLUMN, self.report_id), (SELLER_COLUMN, self.seller))
            ):
                return False  # not provably this report's rows only: rewritten (and checked row by row)
            footers.append((path, partition.values, metadata, stats))
        self.new_files = []
        try:
            for number, (path, values, metadata, stats) in enumerate(footers):
                directory, name = partition_dir(partition_by, values), data_file_name(self.landing_id, number)
                rel = f"{directory}/{name}" if directory else name
                self.lake.copy(path, self.storage.lake_path(rel))
                self.new_files.append(
                    DataFile(
                        rel,
                        {c: values[c] for c in partition_by},
                        self.storage.size(rel),
                        metadata.num_rows,
                        json.dumps(stats, separators=(",", ":")),
                    )
                )
                self._observe_stats(values, stats)
        except BaseException:
            self._delete({f.path for f in self.new_files})
            self.new_files = []
            raise
        log.info("%s: report %s's %d staged data files adopted as they are", self.name, self.report_id, len(footers))
        return True

    def _observe_stats(self, partition: Mapping[str, str | None], stats: dict) -> None:
        """``_observe`` from a file's partition values and statistics."""
        if self.created_time is None:
            self.created_time = partition.get(CREATED_TIME_COLUMN) or stats["minValues"].get(CREATED_TIME_COLUMN)
        if not self.merge:
            return
        if MARKETPLACE_COLUMN in partition:
            self.marketplaces.add(partition[MARKETPLACE_COLUMN])
        first = self._range_column()
        if first is not None and self._key_range_valid and stats["numRecords"]:
            low, high = stats["minValues"].get(first), stats["maxValues"].get(first)
            if stats["nullCount"].get(first, 1) or low is None or high is None:
                self._key_range_valid = False  # nulls, or bounds the statistics leave out
            else:
                if self.key_range is not None:
                    low, high = min(low, self.key_range[0]), max(high, self.key_range[1])
                self.key_range = (low, high)

    def _check_report(self, batch: pa.RecordBatch) -> None:
        for column, ours in ((REPORT_ID_COLUMN, self.report_id), (SELLER_COLUMN, self.seller)):
            values = batch.column(column)
            wrong = pc.invert(pc.fill_null(pc.equal(values, pa.scalar(ours, values.type)), False))
            if pc.any(wrong).as_py():
                other = values.filter(wrong)[0].as_py()
                what = "report" if column == REPORT_ID_COLUMN else "seller"
                raise LandingError(
                    f"staging files for report {self.report_id} of seller {self.seller} hold rows of {what} {other!r}"
                )

    def _observe(self, batch: pa.RecordBatch) -> None:
        """Remember what the MERGE needs: the report's created time, marketplaces, the first key's range."""
        if self.created_time is None and CREATED_TIME_COLUMN in batch.schema.names:
            values = pc.drop_null(batch.column(CREATED_TIME_COLUMN))
            if len(values):
                self.created_time = str(values[0].as_py())
        if not self.merge:
            return
        if MARKETPLACE_COLUMN in batch.schema.names:
            self.marketplaces.update(pc.unique(pc.cast(batch.column(MARKETPLACE_COLUMN), pa.string())).to_pylist())
        first = self._range_column()
        if first is not None and self._key_range_valid:
            column = batch.column(first)
            if column.null_count:
                self._key_range_valid = False
            elif len(column):
                bounds = pc.min_max(column).as_py()
                low, high = bounds["min"], bounds["max"]
                if self.key_range is not None:
                    low, high = min(low, self.key_range[0]), max(high, self.key_range[1])
                self.key_range = (low, high)

    def _range_column(self) -> str | None:
        """The first natural key column if it is text (files are skipped by its min/max statistics)."""
        for name in self.key_columns:
            if name in (MARKETPLACE_COLUMN, SELLER_COLUMN):
                continue
            target = self.plan.get(name)
            return name if target is not None and pa.types.is_string(target) else None
        return None

    # ---------------------------------------------------------------- commit

    def _commit_loop(self, index: MergeIndex | None) -> TableLanding:
        last_error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            table = _open(self.lake, self.uri)
            if table is None:
                return TableLanding(self.name, self.uri, 0, None, self._mode())
            snapshot = _table_files(table)
            if attempt > 1 and self._landed_before is not None and self._in_table(snapshot):
                # The failed attempt's commit did land (e.g. its response was lost): done.
                log.warning("%s: the commit of report %s landed despite an error", self.name, self.report_id)
                return self._landed_before
            if self._check_schema(table):
                # A column of ours is not in the table (a concurrent landing created the table without it).
                _evolve(self.lake, self.uri, table, self.schema, self.headers, self.max_attempts)
                continue
            deleted, drops, counts = self._plan(table, snapshot, index)
            actions, rows, replaced = self._actions(snapshot, deleted, drops)
            version = table.version()
            self._landed_before = TableLanding(self.name, self.uri, rows, version + 1, self._mode(), replaced, *counts)
            if not actions:
                # Files written for rows that all turned out superseded or duplicates: none is committed.
                self._delete(self._all_written())
                log.info("%s: report %s changes nothing (version %s)", self.name, self.report_id, version)
                return TableLanding(self.name, self.uri, rows, version, self._mode(), 0, *counts)
            try:
                table.create_write_transaction(
                    actions,
                    "append",
                    table.schema(),
                    partition_by=table.metadata().partition_columns,
                    commit_properties=CommitProperties(
                        custom_metadata={
                            "sp_reports.selling_partner_id": self.seller,
                            "sp_reports.report_id": self.report_id,
                            LANDING_METADATA: self.landing_id,
                            "sp_reports.mode": self._mode(),
                            # What a retry reports when it finds this commit its own (``_Attempts.resume``).
                            COUNTS_METADATA: json.dumps(
                                {"rows": rows, "replaced": replaced, "duplicates": counts[0], "superseded": counts[1]}
                            ),
                            **self.metadata,
                        },
                        max_commit_retries=0,  # any concurrent commit: recompute against it (see module doc)
                    ),
                )
            except CommitFailedError as e:
                last_error = e
                if attempt == self.max_attempts:
                    break
                delay = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
                log.warning(
                    "%s: report %s conflicted with a concurrent commit (attempt %d/%d), retrying in %.1fs",
                    self.name,
                    self.report_id,
                    attempt,
                    self.max_attempts,
                    delay,
                )
                time.sleep(delay)
                continue
            self._delete(self._all_written() - {a.path for a in actions if hasattr(a, "stats")})
            log.info(
                "%s: landed report %s (%s): %d rows, %d replaced, %d duplicates, %d superseded -> version %d",
                self.name,
                self.report_id,
                self._mode(),
                rows,
                replaced,
                *counts,
                version + 1,
            )
            return self._landed_before
        raise CommitFailedError(
            f"{self.uri}: report {self.report_id} still conflicted after {self.max_attempts} attempts: {last_error}"
        )

    def _mode(self) -> str:
        return "merge" if self.merge else "replace"

    def _check_schema(self, table: DeltaTable) -> list[str]:
        """Columns of ours the table lacks; raises if one has another type than the files were written with."""
        current = {f.name: f.type for f in _arrow_schema(table)}
        lacking = []
        for column, wanted in self.plan.items():
            have = current.get(column)
            if have is None:
                lacking.append(column)
            elif not _same_type(have, wanted):
                raise LandingError(f"{self.name}: column {column} became {have} while landing {wanted}")
        return lacking

    def _plan(self, table: DeltaTable, snapshot: list[TableFile], index: MergeIndex | None):
        """Table rows to delete {path: positions | None (all)}, document rows to drop, (duplicates, superseded)."""
        if not self.merge:
            return self._report_rows(snapshot), SourceDrops(), (0, 0)
        assert index is not None
        partition_columns = table.metadata().partition_columns
        candidates = [f for f in snapshot if self._may_match(f, partition_columns)]
        unseen = [f for f in candidates if f.path not in self._matches]
        if unseen:
            order = _ReportOrder(self.created_time, self.report_id)
            self._matches.update(
                index.match(
                    [(f.path, {k: v for k, v in f.partition_values.items() if k in self.key_columns}) for f in unseen],
                    self._read_columns,
                    order.newer,
                    (CREATED_TIME_COLUMN, REPORT_ID_COLUMN),
                )
            )
        else:
            index.deduplicate()
        current = [self._matches[f.path] for f in candidates]
        superseded = SourceDrops.of((m.superseded_file, m.superseded_pos) for m in current)
        drops = SourceDrops.of(
            [(np.full(len(p), n), p) for n, p in index.duplicates.positions.items()]
            + [(np.full(len(p), n), p) for n, p in superseded.positions.items()]
        )
        deleted = {f.path: self._matches[f.path].deleted for f in candidates if len(self._matches[f.path].deleted)}
        return deleted, drops, (index.duplicates.count, drops.count - index.duplicates.count)

    def _may_match(self, f: TableFile, partition_columns: list[str]) -> bool:
        if (
            MARKETPLACE_COLUMN in partition_columns
            and MARKETPLACE_COLUMN in self.key_columns
            and f.partition_values.get(MARKETPLACE_COLUMN) not in self.marketplaces
        ):
            return False
        column = self._range_column()
        if column is not None and self._key_range_valid and self.key_range is not None:
            low, high = f.stats.get("min", {}).get(column), f.stats.get("max", {}).get(column)
            if isinstance(high, str) and high < self.key_range[0]:
                return False
            if isinstance(low, str) and low > self.key_range[1] and not f.stats.get("null_count", {}).get(column):
                return False
        return True

    def _report_rows(self, snapshot: list[TableFile]) -> dict[str, np.ndarray | None]:
        """The report's rows in the table (this seller's, this report id's): whole files (None) or row
        positions. Files are skipped or taken whole by their partition values and statistics."""
        found: dict[str, np.ndarray | None] = {}
        ours = {SELLER_COLUMN: self.seller, REPORT_ID_COLUMN: self.report_id}
        for f in snapshot:
            verdicts = [_file_holds(f, column, value) for column, value in ours.items()]
            if False in verdicts:
                continue
            if all(verdicts):
                found[f.path] = None
                continue
            positions = []
            offset = 0
            for batch in self._read_columns(f.path, list(ours)):
                hit = pa.array(np.ones(batch.num_rows, dtype=bool))
                for i, value in enumerate(ours.values()):
                    column = batch.column(i)
                    hit = pc.and_(hit, pc.fill_null(pc.equal(column, pa.scalar(value, column.type)), False))
                positions.append(np.flatnonzero(hit.to_numpy(zero_copy_only=False)) + offset)
                offset += batch.num_rows
            hits = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
            if len(hits) == offset and offset:
                found[f.path] = None
            elif len(hits):
                found[f.path] = hits
        return found

    def _read_columns(self, path: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
        """A table file's ``columns`` (null where the file lacks one), one batch at a time."""
        with self.storage.open_input_file(path) as f:
            parquet = pq.ParquetFile(f, pre_buffer=self.lake.is_s3, buffer_size=0 if self.lake.is_s3 else 1 << 20)
            present = [c for c in columns if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=65_536, columns=present, use_threads=False):
                arrays = [batch.column(c) if c in present else pa.nulls(batch.num_rows, pa.string()) for c in columns]
                yield pa.RecordBatch.from_arrays(arrays, names=columns)

    def _actions(self, snapshot: list[TableFile], deleted: Mapping[str, np.ndarray | None], drops: SourceDrops):
        actions: list[Any] = []
        rows = 0
        data_file: DataFile | None  # filtering may leave nothing of a file
        for number, data_file in enumerate(self.new_files):
            if data_file is None:
                continue
            positions = drops.positions.get(number)
            if positions is not None and len(positions):
                data_file = self._filtered_file(number, data_file, positions)
            if data_file is not None:
                actions.append(data_file.add_action())
                rows += data_file.rows
        replaced = 0
        for f in snapshot:
            if f.path not in deleted:
                continue
            positions = deleted[f.path]
            if positions is None or (f.rows is not None and len(positions) >= f.rows):
                replaced += f.rows if f.rows is not None else _count_rows(self.storage, f.path)
                actions.append(f.remove_action())
                continue
            if f.path not in self._rewritten:
                self._seq += 1
                self._rewritten[f.path] = rewrite_without(
                    self.storage,
                    f.path,
                    positions,
                    f.partition_values,
                    self._partition_order(f.partition_values),
                    self.landing_id,
                    self._seq,
                )
            rewritten = self._rewritten[f.path]
            replaced += len(positions)
            if rewritten is not None:
                actions.append(rewritten.add_action())
            actions.append(f.remove_action())
        return actions, rows, replaced

    def _partition_order(self, values: Mapping[str, str | None]) -> list[str]:
        return [c for c in self.partition_by if c in values] + [c for c in values if c not in self.partition_by]

    def _filtered_file(self, number: int, data_file: DataFile, positions: np.ndarray) -> DataFile | None:
        fingerprint = hashlib.sha1(np.ascontiguousarray(positions, dtype=np.int64).tobytes()).digest()
        cached = self._filtered.get(number)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        if cached is not None and cached[1] is not None:
            self._delete({cached[1].path})
        self._seq += 1
        filtered = rewrite_without(
            self.storage,
            data_file.path,
            positions,
            data_file.partition_values,
            self._partition_order(data_file.partition_values),
            self.landing_id,
            self._seq,
        )
        self._filtered[number] = (fingerprint, filtered)
        return filtered

    def _in_table(self, snapshot: list[TableFile] | None = None) -> bool:
        """Whether a commit of this landing is in the table (its file names carry the landing id)."""
        if snapshot is None:
            if not self._all_written():
                return False
            try:
                table = _open(self.lake, self.uri)
                snapshot = _table_files(table) if table is not None else []
            except Exception:  # noqa: BLE001 - can't tell: keep the files (VACUUM removes unreferenced ones)
                return True
        return any(f"-{self.landing_id}-" in f.path for f in snapshot)

    def _all_written(self) -> set[str]:
        written = {f.path for f in self.new_files if f is not None}
        written |= {f.path for _, f in self._filtered.values() if f is not None}
        written |= {f.path for f in self._rewritten.values() if f is not None}
        return written

    def _delete(self, paths: set[str]) -> None:
        for path in paths:
            try:
                self.storage.delete(path)
            except Exception:
                log.warning("could not delete %s/%s", self.uri, path, exc_info=True)


# ----------------------------------------------------------------------------------------- attempts
#
# A landing can be killed at any point (a worker lost, SIGKILL); Airflow then retries it with the same
# staging files. The retry must neither land the document twice nor fail, and should not leave the dead
# attempt's files behind. So before a landing writes its first data file it records a marker in the
# report's staging directory (kept until the report's landing is complete, manifest and ledger written):
# its landing id (which names its data files), the table version it started from, and a digest of the
# staging files it lands. A later attempt reads the markers of the report:
# * a marker of the same staging files whose commit is in the table (found in the commits since its
#   version, a bounded read of the history, ``HISTORY_LIMIT``; commit metadata carries the landing id
#   and the landing's counts): that table is done, the retry returns that landing and commits nothing.
#   Relanding would be correct too (a MERGE changes nothing already merged, a replace replaces the
#   report's rows by the same rows), but costs a rewrite and a commit; the history read is a few small
#   files, and only after a crash, since a finished landing's markers are gone with its staging files.
# * a marker of a dead landing (its process, on this host, is gone): its data files that no commit
#   references are deleted, temporary files included. A landing of another host may be alive (its files
#   about to be committed), so its files are left to VACUUM; files of other reports are never looked at.


@dataclass
class _Marker:
    table: str
    landing_id: str
    version: int | None  # the table's version before the landing (None: no table yet)
    key: str  # digest of the staging files landed (``_staging_key``)
    host: str
    pid: int
    columns_added: list[str]  # as the landing's first attempt found them, before it evolved the table
    columns_missing: list[str]

    def dead(self) -> bool:
        return self.host == socket.gethostname() and not _process_alive(self.pid)


class _Attempts:
    """The attempts at landing one report's staging files (one ``land_tables`` call), through markers."""

    def __init__(
        self,
        lake: Lake,
        table_name: str,
        selling_partner_id: str,
        report_id: str,
        key: str = "",
        document: str | None = None,
    ):
        self.lake, self.key = lake, key
        self.dir = join_path(staging_dir(table_name, selling_partner_id, report_id), MARKERS_DIR)
        self.metadata = {STAGING_METADATA: key, **({DOCUMENT_METADATA: document} if document else {})}

    def markers(self, table: str | None = None) -> list[tuple[str, _Marker]]:
        found = []
        for path in self.lake.list(self.dir):
            try:
                marker = _Marker(**self.lake.read_json(path))
            except (OSError, ValueError, TypeError):  # vanished, or not a marker
                continue
            if table is None or marker.table == table:
                found.append((path, marker))
        return found

    def begin(self, marker: _Marker) -> str:
        path = join_path(self.dir, f"{marker.table}.{marker.landing_id}.json")
        self.lake.write_json(path, vars(marker))
        return path

    def resume(self, name: str, uri: str) -> tuple[TableLanding | None, tuple[str, _Marker] | None]:
        """Clear away the dead landings into table ``name``; the landing of an earlier attempt at these
        staging files if it committed, and that attempt's marker (committed or not) with its path."""
        committed, earlier = None, None
        for path, marker in self.markers(name):
            ours, dead = marker.key == self.key, marker.dead()
            if not (ours or dead):
                continue  # another landing of the report, maybe running
            commit, complete = _commit_of(self.lake, uri, marker)
            if ours:
                earlier = (path, marker)
                recorded = None if commit is None else commit.get(COUNTS_METADATA, commit.get(OLD_COUNTS_METADATA))
                if commit is not None and recorded is not None:
                    counts = json.loads(recorded)
                    committed = TableLanding(
                        name,
                        uri,
                        counts["rows"],
                        commit["version"],
                        commit.get("sp_reports.mode", "replace"),
                        counts["replaced"],
                        counts["duplicates"],
                        counts["superseded"],
                    )
            if dead:
                _remove_dead_landing(self.lake, marker, commit, complete)
                if not (ours and commit is not None):  # kept: a retry killed before the manifest needs it again
                    _delete_staging(self.lake, [path])
        return committed, earlier


def remove_landing_leftovers(lake: Lake, table_name: str, selling_partner_id: str, report_id: str) -> None:
    """What the landings of a report left once its landing is complete (manifest written): the data files
    of its dead landings that no commit references, and its staging directory (staging files of every
    parse, markers, temporary files)."""
    attempts = _Attempts(lake, table_name, selling_partner_id, report_id)
    for _, marker in attempts.markers():
        if marker.dead():
            _remove_dead_landing(lake, marker, *_commit_of(lake, lake.table_uri(marker.table), marker))
    lake.delete_dir(staging_dir(table_name, selling_partner_id, report_id))


def _commit_of(lake: Lake, uri: str, marker: _Marker) -> tuple[dict | None, bool]:
    """The commit info of the marker's landing, if it committed; and whether every commit it could be
    was read (False: older log files are gone, or more than HISTORY_LIMIT commits came since)."""
    table = _open(lake, uri)
    if table is None:
        return None, True
    since = table.version() - (-1 if marker.version is None else marker.version)
    if since <= 0:
        return None, True
    try:
        history = table.history(limit=min(since, HISTORY_LIMIT))
    except Exception:
        log.warning("%s: could not read the history", uri, exc_info=True)
        return None, False
    for commit in history:
        if commit.get(LANDING_METADATA) == marker.landing_id:
            return commit, True
    return None, len(history) >= since


def _remove_dead_landing(lake: Lake, marker: _Marker, commit: dict | None, complete: bool) -> None:
    """Delete the files a dead landing wrote into its table that its commit (if any) does not add."""
    root = join_path("tables", marker.table)
    added = _added_files(lake, root, commit["version"]) if commit is not None else set()
    # None: only temporary files are surely unused
    known = added if added is not None and (commit is not None or complete) else None
    removed = []
    for path in lake.list(root, hidden=True):
        name = path.rsplit("/", 1)[-1]
        if f"-{marker.landing_id}-" not in name or "/_delta_log/" in path:
            continue
        if (name.startswith(".") and name.endswith(".tmp")) or (known is not None and name not in known):
            lake.delete(path)
            removed.append(path)
    if removed:
        log.info(
            "%s: removed %d files that landing %s (%s, its process %d gone) left: %s",
            marker.table,
            len(removed),
            marker.landing_id,
            "committed" if commit else "never committed",
            marker.pid,
            removed,
        )


def _added_files(lake: Lake, root: str, version: int) -> set[str] | None:
    """Names of the data files commit ``version`` added (None if its log file is gone)."""
    try:
        text = lake.read_bytes(join_path(root, "_delta_log", f"{version:020d}.json")).decode()
    except OSError:
        return None
    actions = (json.loads(line) for line in text.splitlines() if line.strip())
    return {unquote(a["add"]["path"]).rsplit("/", 1)[-1] for a in actions if "add" in a}


def _staging_key(staged: Mapping[str, Sequence[str]], quarantine_files: Sequence[str]) -> str:
    # Staging file names are unique to a parse: a retry lands the same ones, a new parse other ones.
    files = sorted(p for paths in staged.values() for p in paths) + sorted(quarantine_files)
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class _ReportOrder:
    """Which table rows come from a report more recent than ours: (report_created_time, report_id)."""

    def __init__(self, created_time: str | None, report_id: str):
        self._ours = _order_key(created_time, report_id)

    def newer(self, batch: pa.RecordBatch) -> pa.Array:
        times = pc.fill_null(pc.cast(batch.column(CREATED_TIME_COLUMN), pa.string()), "\x00")
        ids = pc.fill_null(pc.cast(batch.column(REPORT_ID_COLUMN), pa.string()), "\x00")
        encoded = pc.dictionary_encode(pc.binary_join_element_wise(times, ids, "\x1f"))
        verdicts = []
        for pair in encoded.dictionary.to_pylist():
            created, _, rid = pair.partition("\x1f")
            verdicts.append(
                _order_key(None if created == "\x00" else created, None if rid == "\x00" else rid) > self._ours
            )
        return pa.array(verdicts, pa.bool_()).take(encoded.indices)


def _order_key(created_time: str | None, report_id: str | None) -> tuple:
    moment = _parse_time(created_time)
    rid: tuple = (
        (0, 0, "") if report_id is None else ((1, int(report_id), "") if report_id.isdigit() else (2, 0, report_id))
    )
    return (moment is not None, moment or datetime.min.replace(tzinfo=UTC), rid)


def _parse_time(value: str | None) -> datetime | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ----------------------------------------------------------------------------------------- helpers


def _file_holds(f: TableFile, column: str, value: str) -> bool | None:
    """Whether every row of table file ``f`` has ``column == value`` (True), none has (False), or the
    partition values and statistics can't tell (None: the file is read)."""
    if column in f.partition_values:
        return f.partition_values[column] == value
    low, high = f.stats.get("min", {}).get(column), f.stats.get("max", {}).get(column)
    nulls = f.stats.get("null_count", {}).get(column)
    if isinstance(low, str) and isinstance(high, str):
        if value < low or value > high:
            return False
        if low == high == value and nulls == 0:
            return True
    return None


def _open(lake: Lake, uri: str) -> DeltaTable | None:
    try:
        return DeltaTable(uri, storage_options=lake.storage_options)
    except TableNotFoundError:
        return None


def _arrow_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def _table_files(table: DeltaTable) -> list[TableFile]:
    actions = pa.table(table.get_add_actions(flatten=True))
    columns = actions.column_names
    partition_names = [c[len("partition.") :] for c in columns if c.startswith("partition.")]
    stat_columns = {
        kind: [c for c in columns if c.startswith(prefix)]
        for kind, prefix in (("min", "min."), ("max", "max."), ("null_count", "null_count."))
    }
    files = []
    for row in actions.to_pylist():
        stats = {
            kind: {c.split(".", 1)[1]: row[c] for c in names if row[c] is not None}
            for kind, names in stat_columns.items()
        }
        files.append(
            TableFile(
                path=unquote(row["path"]),
                partition_values={name: _partition_text(row[f"partition.{name}"]) for name in partition_names},
                size=row["size_bytes"],
                rows=row.get("num_records"),
                stats=stats,
            )
        )
    return files


def _partition_text(value: Any) -> str | None:
    from .datafiles import partition_value

    return partition_value(value)


def _count_rows(storage: TableStorage, path: str) -> int:
    with storage.open_input_file(path) as f:
        return pq.ParquetFile(f).metadata.num_rows


def _create(lake: Lake, uri: str, schema: pa.Schema, partition_by: list[str], headers: Mapping[str, str]) -> DeltaTable:
    storable = pa.schema([_with_header(pa.field(f.name, _storable_type(f.type)), headers) for f in schema])
    try:
        # Created empty first: the data commit is then the same for a new and an existing table. Retries
        # off: of concurrent creators exactly one wins (with them on, a loser would commit a second
        # CREATE TABLE, replacing the winner's schema).
        return DeltaTable.create(
            uri,
            schema=storable,
            partition_by=partition_by,
            mode="error",
            storage_options=lake.storage_options,
            commit_properties=CommitProperties(max_commit_retries=0),
        )
    except Exception:  # a concurrent creator won the race: use its table
        table = _open(lake, uri)
        if table is None:
            raise
        return table


def _evolve(
    lake: Lake, uri: str, table: DeltaTable, schema: pa.Schema, headers: Mapping[str, str], max_attempts: int
) -> DeltaTable:
    """Add the document's new columns to the table (a metadata-only commit of nullable columns)."""
    for attempt in range(1, max_attempts + 1):
        existing = {f.name for f in _arrow_schema(table)}
        new = [
            _with_header(pa.field(f.name, _storable_type(f.type)), headers) for f in schema if f.name not in existing
        ]
        if not new:
            return table
        try:
            table.alter.add_columns(DeltaSchema.from_arrow(pa.schema(new)).fields)
            log.info("%s: added columns %s", uri, [f.name for f in new])
            return _open(lake, uri) or table
        except Exception:  # a concurrent commit (maybe adding the same columns): look again
            if attempt == max_attempts:
                raise
            time.sleep(min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
            table = _open(lake, uri) or table
    return table


def _with_header(f: pa.Field, headers: Mapping[str, str]) -> pa.Field:
    header = headers.get(f.name)
    return f.with_metadata({SOURCE_COLUMN_METADATA: header}) if header else f


def _with_aliases(headers: Mapping[str, str], aliases: Mapping[str, str]) -> dict[str, str]:
    return {column: aliases.get(header, header) for column, header in headers.items()}


def _storable_type(t: pa.DataType) -> pa.DataType:
    """The type a new column gets in the table (Delta has one string and one binary type, no null type)."""
    if pa.types.is_null(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_dictionary(t):
        return _storable_type(t.value_type)
    return t


def _same_type(a: pa.DataType, b: pa.DataType) -> bool:
    return _storable_type(a) == _storable_type(b)


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    source = _storable_type(source)
    if source == target or pa.types.is_null(source):
        return True
    if pa.types.is_string(target):
        return not pa.types.is_nested(source)
    if pa.types.is_integer(source) and pa.types.is_integer(target):
        return pa.types.is_signed_integer(target) and target.bit_width >= source.bit_width
    if pa.types.is_integer(source) and pa.types.is_decimal(target):
        return True
    if pa.types.is_decimal(source) and pa.types.is_decimal(target):
        return target.scale >= source.scale and target.precision - target.scale >= source.precision - source.scale
    return bool(pa.types.is_timestamp(source) and pa.types.is_timestamp(target))


def _conform_plan(staged: pa.Schema, table: pa.Schema, name: str) -> dict[str, pa.DataType]:
    """The type every staged column is written as: the table's (casts checked here, up front)."""
    types = {f.name: f.type for f in table}
    plan: dict[str, pa.DataType] = {}
    wrong = []
    for f in staged:
        target = types.get(f.name, _storable_type(f.type))
        if not _castable(f.type, target):
            wrong.append(f"{f.name} ({f.type} -> {target})")
        plan[f.name] = target
    if wrong:
        raise LandingError(f"{name}: staged columns don't fit the table's types: {', '.join(wrong)}")
    return plan


def _conform(batch: pa.RecordBatch, plan: Mapping[str, pa.DataType]) -> pa.RecordBatch:
    if all(batch.schema.field(i).type == plan[batch.schema.names[i]] for i in range(batch.num_columns)):
        return batch
    arrays = [
        column if column.type == plan[name] else pc.cast(column, plan[name])
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _staged_schema(lake: Lake, files: Sequence[str]) -> pa.Schema | None:
    if not files:
        return None
    schemas = []
    for path in files:
        schema = pq.read_schema(lake.fs_path(path), filesystem=lake.filesystem)
        partition = StagedPartition.of(schema.metadata)
        schemas.append(partition.schema(schema) if partition else schema.remove_metadata())
    return pa.unify_schemas(schemas)


def _staged_rows(lake: Lake, files: Sequence[str]) -> int:
    rows = 0
    for path in files:
        with lake.open_input_file(path) as f:
            rows += pq.ParquetFile(f).metadata.num_rows
    return rows


def _staged_source_columns(lake: Lake, files: Sequence[str]) -> dict[str, str]:
    """{column: header} from the staging files' schema metadata (the parser writes it)."""
    headers: dict[str, str] = {}
    for path in files:
        try:
            metadata = pq.read_schema(lake.fs_path(path), filesystem=lake.filesystem).metadata or {}
        except (OSError, pa.ArrowInvalid):
            continue  # reported by _staged_schema
        raw = metadata.get(SOURCE_COLUMNS_KEY.encode())
        if raw:
            with contextlib.suppress(ValueError):
                headers.update({str(k): str(v) for k, v in json.loads(raw).items()})
    return headers


def _staged_batches(
    lake: Lake, files: Sequence[str], schema: pa.Schema, counted: list[int]
) -> Iterator[pa.RecordBatch]:
    """Stream the staging files (one batch at a time), conformed to the unified schema."""
    for path in files:
        with lake.open_input_file(path) as f:
            parquet = pq.ParquetFile(f, pre_buffer=lake.is_s3, buffer_size=0 if lake.is_s3 else 1 << 18)
            partition = StagedPartition.of(parquet.schema_arrow.metadata)  # a staged data file's partition columns
            for batch in parquet.iter_batches(batch_size=_READ_BATCH_ROWS, use_threads=False):
                if partition is not None:
                    batch = partition.restore(batch)
                columns = [
                    batch.column(field.name)
                    if field.name in batch.schema.names
                    else pa.nulls(batch.num_rows, field.type)
                    for field in schema
                ]
                counted[0] += batch.num_rows
                yield pa.RecordBatch.from_arrays(columns, schema=schema)


def _delete_staging(lake: Lake, paths: Sequence[str]) -> None:
    for path in paths:
        try:
            lake.delete(path)
        except OSError:  # the data is committed; a leftover staging file is only clutter
            log.warning("could not delete staging file %s", path, exc_info=True)
