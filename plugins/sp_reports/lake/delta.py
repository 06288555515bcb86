"""Delta landing: all rows of one report go into ``tables/{table_name}`` in one atomic commit.

The commit is a predicate overwrite (``report_id = '<id>'``) with ``schema_mode="merge"``: it removes the
report's earlier rows (if any) and adds the new ones together, so landing is idempotent, a reader never
sees half a report, and a column Amazon adds later is merged into the table schema (older rows read
as null). Commits of different reports into one table (parallel Airflow tasks) are serialised by
delta-rs' optimistic concurrency; the conflicts it can't resolve itself are retried here.

On S3, delta-rs (>= 1.0) makes the commit safe with conditional writes (``PutObject`` with
``If-None-Match: *``), which AWS S3 and moto support; no locking provider is needed. S3-compatible
stores without conditional writes need ``AWS_S3_ALLOW_UNSAFE_RENAME=true`` in the storage options,
which is only safe with a single writer per table.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from pyarrow import fs as pafs

from .paths import join_path
from .storage import Lake

log = logging.getLogger(__name__)

DEFAULT_PARTITION_BY = ("marketplace_id", "report_date")
REPORT_ID_COLUMN = "report_id"
MAX_ATTEMPTS = 8
_BACKOFF_BASE, _BACKOFF_CAP = 0.2, 10.0  # seconds
# delta-rs keeps a number of input batches in flight: small batches keep its memory down (measured:
# ~400 MB peak RSS at 8k rows vs ~850 MB at 64k rows for an unpartitioned 1M-row write).
_READ_BATCH_ROWS = 8192


@dataclass(frozen=True)
class LandResult:
    rows: int
    table_uri: str
    version: int | None  # the table version of the commit; None when there was nothing to land and no table


def table_name_for(report_type: str) -> str:
    """Table name of a report type: ``GET_FLAT_FILE_OPEN_LISTINGS_DATA`` -> ``get_flat_file_open_listings_data``."""
    return report_type.lower()


def land_report(
    lake: Lake,
    table_name: str,
    parquet_files: Sequence[str],
    *,
    report_id: str,
    partition_by: Sequence[str] = DEFAULT_PARTITION_BY,
    max_attempts: int = MAX_ATTEMPTS,
    delete_staging: bool = True,
) -> LandResult:
    """Commit the rows of the staging ``parquet_files`` as report ``report_id``, replacing its earlier rows.

    ``partition_by`` applies when the table is created. With no files (an empty document) the report's
    earlier rows are deleted. Every row must have ``report_id`` equal to ``report_id`` (delta-rs checks
    the rows against the overwrite predicate). On any error nothing is committed; the staging files
    are deleted only after a successful commit.
    """
    uri = lake.table_uri(table_name)
    schema = _staged_schema(lake, parquet_files)  # reads every footer first: a bad file fails before writing
    if schema is not None:
        missing = [c for c in (REPORT_ID_COLUMN, *partition_by) if c not in schema.names]
        if missing:
            raise ValueError(f"staging files for report {report_id} lack columns {missing}")
    predicate = f"{REPORT_ID_COLUMN} = '{report_id.replace(chr(39), chr(39) * 2)}'"

    for attempt in range(1, max_attempts + 1):
        try:
            rows, version = _replace_report(lake, uri, parquet_files, schema, partition_by, predicate, report_id)
            break
        except CommitFailedError as e:
            if attempt == max_attempts:
                raise
            delay = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
            log.warning(
                "landing report %s into %s conflicted with a concurrent commit (attempt %d/%d), retrying in %.1fs: %s",
                report_id, uri, attempt, max_attempts, delay, e,
            )
            time.sleep(delay)

    log.info("landed report %s into %s: %d rows, version %s", report_id, uri, rows, version)
    if delete_staging:
        for path in parquet_files:
            try:
                lake.delete(path)
            except OSError:  # the data is committed; a leftover staging file is only clutter
                log.warning("could not delete staging file %s", path, exc_info=True)
    return LandResult(rows=rows, table_uri=uri, version=version)


def _replace_report(
    lake: Lake,
    uri: str,
    files: Sequence[str],
    schema: pa.Schema | None,
    partition_by: Sequence[str],
    predicate: str,
    report_id: str,
) -> tuple[int, int | None]:
    """One attempt: a single commit replacing the report's rows. Returns (rows, version)."""
    commit = CommitProperties(custom_metadata={"sp_reports.report_id": report_id})
    try:
        table = DeltaTable(uri, storage_options=lake.storage_options)
    except TableNotFoundError:
        if schema is None:
            return 0, None
        # Created empty first so the data goes through the same path as for an existing table (and
        # table.version() then names our commit). A concurrent creator makes this raise CommitFailedError.
        table = DeltaTable.create(
            uri, schema=schema, partition_by=list(partition_by), mode="ignore", storage_options=lake.storage_options
        )
    if schema is None:
        table.delete(predicate, commit_properties=commit)
        return 0, table.version()
    missing = [c for c in table.metadata().partition_columns if c not in schema.names]
    if missing:
        raise ValueError(f"{uri} is partitioned by {missing}, which the staging files lack")
    counted = [0]
    write_deltalake(
        table,
        pa.RecordBatchReader.from_batches(schema, _staged_batches(lake, files, schema, counted)),
        mode="overwrite",
        predicate=predicate,
        schema_mode="merge",
        commit_properties=commit,
    )
    return counted[0], table.version()


def _staged_schema(lake: Lake, files: Sequence[str]) -> pa.Schema | None:
    if not files:
        return None
    schemas = [pq.read_schema(lake.fs_path(path), filesystem=lake.filesystem) for path in files]
    return pa.unify_schemas(schemas).remove_metadata()


def _staged_batches(lake: Lake, files: Sequence[str], schema: pa.Schema, counted: list[int]) -> Iterator[pa.RecordBatch]:
    """Stream the staging files (one row group at a time), conformed to the unified schema."""
    for path in files:
        with lake.open_input_file(path) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=_READ_BATCH_ROWS):
                columns = [
                    batch.column(field.name) if field.name in batch.schema.names else pa.nulls(batch.num_rows, field.type)
                    for field in schema
                ]
                counted[0] += batch.num_rows
                yield pa.RecordBatch.from_arrays(columns, schema=schema)


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
