"""Delta data files written by the landing itself: Parquet files in hive-style partition directories,
written one row group at a time with bounded memory, and described as Delta ``add`` actions (with
statistics) so that all of a landing's files are committed in one transaction (see ``delta.py``).

Why not ``write_deltalake``: delta-rs keeps one open writer (and its buffered row group) per partition
for the whole write, so its memory grows with the number of (marketplace_id, report_date) partitions
a document touches (measured 830 MB to 1.2 GB peak RSS for 0.2 to 1 GB documents spread over a month);
and a MERGE needs more than one file writer can offer anyway (see ``keyindex.py``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake.transaction import AddAction, RemoveAction

from sp_reports.background import in_background
from sp_reports.columns import CREATED_TIME_COLUMN, REPORT_ID_COLUMN, SELLER_COLUMN
from sp_reports.memory import release_memory

from .paths import join_path
from .storage import Lake

# Partition directories name values like delta-rs and Spark do; null is Hive's default partition.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_SAFE_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

ROW_GROUP_ROWS = 65_536  # rows per row group when a file is rewritten
FILE_ROWS = 1_048_576  # rows per data file (a MERGE rewrites whole files: keep them moderate)
# A Parquet writer keeps every row group's metadata until the file is closed: ~30 KB per row group of a
# 35-column table (measured, pyarrow 26), whatever the row group's size. With a document in random date
# order (many open files, small row groups) that would grow with the document, so the open files
# together hold at most OPEN_ROW_GROUPS row groups (~8 MB): beyond, the file with most is closed.
OPEN_ROW_GROUPS = 256
# Rows pooled (all partitions) before they are sorted and written. While one pool is written the next
# is read and sorted (``write_all``): up to four pools' worth of rows are in memory, and as many as
# BUFFERED_POOLS more that small partitions' rows still wait in (below).
BUFFER_BYTES = 12 * 1024 * 1024
# A partition's rows from one pool become a row group of their own when there are at least
# MIN_ROW_GROUP_ROWS of them (a document grouped by date). Fewer (rows in random partition order: a
# 12 MB pool over 31 days gives ~1,500 rows each) wait, as slices of their sorted pool, until the
# partition has that many or until BUFFERED_POOLS newer pools have been sorted: row groups of ~1,000
# rows cost the writer far more CPU per row than large ones (a zstd context per column chunk, footer
# metadata each), and waiting slices hold at most BUFFERED_POOLS pools in memory (docs/benchmarks.md, "Measurements behind the code").
MIN_ROW_GROUP_ROWS = 16_384
BUFFERED_POOLS = 4
MAX_OPEN_FILES_LOCAL = 32
MAX_OPEN_FILES_S3 = 4  # each open S3 file holds a 16 MiB multipart part in memory
# zstd level 1 without dictionary pages: as fast to write as snappy, smaller, and faster to read than with
# dictionaries (measured: docs/benchmarks.md); with dictionaries the writer would buffer a column chunk's
# pages until its dictionary is complete.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": False,
}
# Statistics (min/max, null counts) for every column but text; text columns only when named
# (``statistics_columns``): min/max of text costs the writer a good part of its time, and text columns are in
# no order within a file, so their bounds hardly ever let a reader skip one. Named are the report's
# natural keys (the MERGE skips table files by the first one's range) and these, whose bounds the
# landing reads (a staged file holds one report's rows; the report's created time).
TEXT_STATISTICS = (SELLER_COLUMN, REPORT_ID_COLUMN, CREATED_TIME_COLUMN)
# Dictionary encoding, though, for the columns with few distinct values (``dictionary_columns``).
DICTIONARY_RATIO = 16
DICTIONARY_MIN_ROWS = 8192  # rows per partition in the first pool below which no column gets a dictionary
_MAX_STAT_CHARS = 64
# Parquet writes many small pieces (page headers, pages): buffered in Arrow, they reach the lake's output
# (a Python object: every call takes the GIL, which the landing's reading thread holds at times) as
# few large writes. Per open file, so small.
SINK_BUFFER_BYTES = 256 * 1024
# Schema metadata of a data file written ahead of its landing (the parse step writes the main table's
# rows as data files in staging: ``StagedDataFiles`` in parsing/result.py): the partition it belongs
# to, {"values": {column: Delta partition value}, "schema": the partition columns' Arrow schema (IPC,
# base64)}, since a data file does not hold its partition columns.
PARTITION_KEY = "sp_reports.partition"


@dataclass
class DataFile:
    """A Parquet file in a table's directory, not yet (or already) part of the table."""

    path: str  # relative to the table root, as stored (not URL-encoded; the Delta log encodes it)
    partition_values: dict[str, str | None]
    size: int
    rows: int
    stats: str = ""
    modification_time: int = field(default_factory=lambda: int(time.time() * 1000))

    def add_action(self) -> AddAction:
        return AddAction(self.path, self.size, self.partition_values, self.modification_time, True, self.stats)


@dataclass(frozen=True)
class TableFile:
    """A data file of the table's current snapshot (from its add actions)."""

    path: str  # decoded: the storage path relative to the table root
    partition_values: dict[str, str | None]
    size: int
    rows: int | None
    stats: dict[str, Any]  # {"min": {...}, "max": {...}, "null_count": {...}}; missing entries = unknown

    def remove_action(self) -> RemoveAction:
        return RemoveAction(self.path, True, int(time.time() * 1000), self.size, self.partition_values)


class TableStorage:
    """The files of one table (``tables/<name>``, or ``root``) through the lake's storage."""

    def __init__(self, lake: Lake, table_name: str, root: str | None = None):
        self.lake = lake
        self.root = join_path(root) if root else join_path("tables", table_name)

    def lake_path(self, rel: str) -> str:
        return join_path(self.root, rel)

    def open_output(self, rel: str):
        return self.lake.open_output(self.lake_path(rel))

    def open_input_file(self, rel: str) -> pa.NativeFile:
        return self.lake.open_input_file(self.lake_path(rel))

    def size(self, rel: str) -> int:
        return self.lake.size(self.lake_path(rel))

    def delete(self, rel: str) -> None:
        self.lake.delete(self.lake_path(rel))

    @property
    def max_open_files(self) -> int:
        return MAX_OPEN_FILES_S3 if self.lake.is_s3 else MAX_OPEN_FILES_LOCAL


def buffered_sink(output, buffer_size: int) -> pa.BufferedOutputStream:
    """An Arrow output stream buffering ``buffer_size`` bytes in front of a lake output (``Lake.open_output``).
    ``detach()`` it when done: that flushes it and leaves the output open for the lake to complete."""
    return pa.BufferedOutputStream(pa.PythonFile(output, mode="w"), buffer_size=buffer_size)


def partition_metadata(schema: pa.Schema, values: dict[str, str | None]) -> bytes:
    """``PARTITION_KEY``'s value for a file of partition ``values`` of rows of ``schema`` (all columns)."""
    fields = pa.schema([schema.field(name) for name in values])
    return json.dumps(
        {
            "values": values,
            "columns": schema.names,
            "schema": base64.b64encode(fields.serialize().to_pybytes()).decode(),
        },
        ensure_ascii=False,
    ).encode()


@dataclass(frozen=True)
class StagedPartition:
    """The partition of a data file written ahead of its landing (from its ``PARTITION_KEY`` metadata)."""

    fields: pa.Schema  # the partition columns
    values: dict[str, str | None]  # Delta partition values
    columns: list[str]  # all columns, in the order of the rows written

    @classmethod
    def of(cls, metadata: dict[bytes, bytes] | None) -> StagedPartition | None:
        raw = (metadata or {}).get(PARTITION_KEY.encode())
        if raw is None:
            return None
        decoded = json.loads(raw)
        fields = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(decoded["schema"])))
        return cls(fields, decoded["values"], decoded["columns"])

    def schema(self, file_schema: pa.Schema) -> pa.Schema:
        """The rows' schema (no metadata): the file's columns and the partition columns, in order."""
        fields = {f.name: f for f in [*file_schema, *self.fields]}
        return pa.schema([fields[name] for name in self.columns if name in fields])

    def restore(self, data: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
        """The rows of ``data`` (read from the file) with their partition columns, in order."""
        arrays = dict(zip(data.schema.names, data.columns, strict=True))
        for f in self.fields:
            arrays[f.name] = pa.repeat(pa.scalar(self.values[f.name], pa.string()).cast(f.type), data.num_rows)
        schema = self.schema(data.schema)
        return type(data).from_arrays([arrays[name] for name in schema.names], schema=schema)


# ----------------------------------------------------------------------------------------- partitions


def partition_value(value: Any) -> str | None:
    """A partition value as Delta stores it in ``partitionValues``."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def partition_dir(partition_by: Sequence[str], values: dict[str, str | None]) -> str:
    """``marketplace_id=A1PA/report_date=2026-11-20`` (characters outside [A-Za-z0-9._-] percent-encoded)."""
    parts = []
    for name in partition_by:
        value = values.get(name)
        if value is None:
            text = HIVE_NULL
        else:
            text = "".join(
                ch if ch in _SAFE_PATH_CHARS else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in value
            )
        parts.append(f"{name}={text}")
    return "/".join(parts)


def data_file_name(landing_id: str, seq: int) -> str:
    return f"part-{seq:05d}-{landing_id}-{uuid.uuid4().hex[:8]}-c000.zstd.parquet"


def sort_by_partition(
    table: pa.Table, partition_by: Sequence[str]
) -> tuple[pa.Table, list[tuple[tuple[str | None, ...], int, int]]]:
    """The table's rows ordered by partition (document order kept within one), with each partition's
    (key, first row, rows), partitions in order of first appearance. One take of the whole table;
    none when all rows share a partition."""
    if not partition_by or table.num_rows == 0:
        return table, [((), 0, table.num_rows)] if table.num_rows else []
    # Each partition column dictionary-encoded on its own (nulls get a code of their own), the codes
    # combined into one integer per row and that encoded once more: numbering in first-appearance
    # order, without formatting every value as text.
    codes: np.ndarray | None = None
    for name in partition_by:
        column = table.column(name)
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        encoded = pc.dictionary_encode(column, null_encoding="encode")
        indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        codes = indices if codes is None else codes * len(encoded.dictionary) + indices
    encoded = pc.dictionary_encode(pa.array(codes))
    if len(encoded.dictionary) == 1:
        return table, [(_partition_key(table, partition_by, 0), 0, table.num_rows)]
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    if len(encoded.dictionary) <= 1 << 16:  # numpy sorts 16-bit integers stably with a radix sort (fast)
        indices = indices.astype(np.uint16)
    counts = np.bincount(indices, minlength=len(encoded.dictionary))
    # Numbered in order of first appearance: non-decreasing numbers are rows grouped already (a document
    # in date order), which need no take.
    ordered = table if np.all(indices[1:] >= indices[:-1]) else table.take(pa.array(np.argsort(indices, kind="stable")))
    groups = []
    start = 0
    for count in counts:
        if count:
            groups.append((_partition_key(ordered, partition_by, start), start, int(count)))
            start += int(count)
    return ordered, groups


def _partition_key(table: pa.Table, partition_by: Sequence[str], row: int) -> tuple[str | None, ...]:
    return tuple(partition_value(table.column(name)[row].as_py()) for name in partition_by)


# ----------------------------------------------------------------------------------------- statistics


def file_stats(metadata: pq.FileMetaData, arrow_schema: pa.Schema) -> str:
    """Delta ``stats`` JSON (numRecords, minValues, maxValues, nullCount) from a Parquet footer.

    Only top-level primitive columns get statistics; a bound that can't be represented exactly is
    rounded outwards (timestamps to milliseconds, decimals to doubles) or left out (long strings'
    maxima), so that readers skipping files by these statistics never skip a matching row.
    """
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    index = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    for arrow_field in arrow_schema:
        i = index.get(arrow_field.name)
        if i is None:
            continue
        has_bounds, has_nulls = True, True
        low = high = None
        null_count = 0
        for rg in range(metadata.num_row_groups):
            column = metadata.row_group(rg).column(i)
            if column.num_values == 0 and metadata.row_group(rg).num_rows == 0:
                continue
            stats = column.statistics
            if stats is None:
                has_bounds = has_nulls = False
                break
            if stats.has_null_count:
                null_count += stats.null_count
            else:
                has_nulls = False
            if stats.has_min_max:
                low = stats.min if low is None or stats.min < low else low
                high = stats.max if high is None or stats.max > high else high
            elif stats.null_count != metadata.row_group(rg).num_rows:
                has_bounds = False  # values without bounds
        if has_nulls:
            nulls[arrow_field.name] = null_count
        if has_bounds and low is not None:
            lo, hi = _json_bound(low, arrow_field.type, "min"), _json_bound(high, arrow_field.type, "max")
            if lo is not None:
                mins[arrow_field.name] = lo
            if hi is not None:
                maxs[arrow_field.name] = hi
    return json.dumps(
        {"numRecords": metadata.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _json_bound(value: Any, type_: pa.DataType, side: str) -> Any:
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        if not isinstance(value, str):
            return None
        if len(value) <= _MAX_STAT_CHARS:
            return value
        return value[:_MAX_STAT_CHARS] if side == "min" else None  # a prefix is a lower bound only
    if pa.types.is_integer(type_):
        return int(value)
    if pa.types.is_floating(type_):
        return None if math.isnan(value) else float(value)
    if pa.types.is_decimal(type_):
        as_float = float(Decimal(value))
        return math.nextafter(as_float, -math.inf if side == "min" else math.inf)
    if pa.types.is_date(type_):
        return value.isoformat()
    if pa.types.is_timestamp(type_):
        if type_.tz is None or not isinstance(value, dt.datetime):
            return None  # Delta's timestamp_ntz is not used by this project
        value = value.astimezone(dt.UTC)
        micros = value.microsecond
        if side == "min":
            value = value.replace(microsecond=micros - micros % 1000)
        elif micros % 1000:
            value = value.replace(microsecond=micros - micros % 1000) + dt.timedelta(milliseconds=1)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return None


# ----------------------------------------------------------------------------------------- writing


def dictionary_columns(sample: pa.Table | pa.RecordBatch) -> list[str]:
    """Columns of few distinct values in ``sample`` (at most one in DICTIONARY_RATIO rows): dictionary
    encoded, they cost less to write and to read (constant columns next to nothing)."""
    rows = sample.num_rows
    return [
        name
        for name, column in zip(sample.schema.names, sample.columns, strict=True)
        if rows
        and not pa.types.is_nested(column.type)
        and pc.count_distinct(column, mode="all").as_py() * DICTIONARY_RATIO <= rows
    ]


def statistics_columns(schema: pa.Schema, text_columns: Iterable[str]) -> list[str]:
    """The columns a data file keeps statistics for: all but text, and the text columns named (and
    ``TEXT_STATISTICS``)."""
    named = {*text_columns, *TEXT_STATISTICS}
    return [
        f.name
        for f in schema
        if f.name in named or not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]


class _OpenFile:
    def __init__(
        self,
        storage: TableStorage,
        rel: str,
        partition: dict[str, str | None],
        schema: pa.Schema,
        no: int,
        statistics: Sequence[str],
        dictionary: Sequence[str] = (),
    ):
        self.rel, self.partition, self.no, self.rows, self.row_groups = rel, partition, no, 0, 0
        self._stack = contextlib.ExitStack()
        self._sink = buffered_sink(self._stack.enter_context(storage.open_output(rel)), SINK_BUFFER_BYTES)
        options = {**PARQUET_OPTIONS, "use_dictionary": list(dictionary) or False, "write_statistics": list(statistics)}
        self.writer = pq.ParquetWriter(self._sink, schema, **options)
        self.schema = schema
        self._storage = storage

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.rows += table.num_rows
        self.row_groups += 1

    def close(self) -> DataFile:
        self.writer.close()
        self._sink.detach()  # flushes into the lake's output (left open: the lake completes it)
        metadata = self.writer.writer.metadata
        self._stack.close()  # completes the atomic write (rename / multipart upload)
        return DataFile(
            self.rel, self.partition, self._storage.size(self.rel), self.rows, file_stats(metadata, self.schema)
        )

    def abort(self) -> None:
        for finish in (self.writer.close, self._sink.detach):
            try:
                finish()
            except Exception:  # noqa: BLE001 - the file is being thrown away
                pass
        error = RuntimeError("aborted")
        self._stack.__exit__(type(error), error, None)  # deletes the temporary file / aborts the upload


class PartitionedWriter:
    """Rows -> data files, one directory per partition, memory bounded whatever the rows' order.

    Incoming batches are pooled until they hold ``buffer_bytes``; the pool is then sorted by partition
    (one take) and each partition's rows are written as a row group of that partition's open file, or,
    when they are fewer than MIN_ROW_GROUP_ROWS, kept until that partition has that many (for at most
    BUFFERED_POOLS pools). So memory is a few times ``buffer_bytes`` whatever the number of
    partitions; a document grouped by date (as Amazon sorts them) gives row groups of up to the pool's
    rows, a document in random date order smaller ones. At most ``max_open`` files are open (least
    recently used closed first; a partition may then get several files); a file is closed at
    ``file_rows`` rows, or when the open files hold more than OPEN_ROW_GROUPS row groups.
    """

    def __init__(
        self,
        storage: TableStorage,
        partition_by: Sequence[str],
        landing_id: str,
        *,
        file_rows: int | None = None,
        buffer_bytes: int | None = None,
        max_open: int | None = None,
        row_group_rows: int | None = None,
        staged: bool = False,
        release: bool = True,
        text_statistics: Sequence[str] = (),
    ):
        self._storage, self._partition_by, self._landing_id = storage, list(partition_by), landing_id
        self._text_statistics = tuple(text_statistics)  # see statistics_columns
        self._file_rows = file_rows or FILE_ROWS
        self._row_group_rows = row_group_rows or self._file_rows
        # staged: each file's schema keeps the batches' metadata and records its partition (PARTITION_KEY).
        self._staged = staged
        # release: hand freed memory back to the OS after every pool (flat peak RSS, at some system time);
        # the parse step, whose blocks keep allocating the same sizes, rather keeps it for reuse.
        self._release = release
        self._batch_schema: pa.Schema | None = None
        self._dictionary: list[str] | None = None
        self._buffer_bytes = buffer_bytes or BUFFER_BYTES
        self._max_open = max_open or storage.max_open_files
        self._pool: list[pa.RecordBatch] = []
        self._pool_bytes = 0
        self._open: OrderedDict[tuple, _OpenFile] = OrderedDict()
        self._open_row_groups = 0
        self._min_group_rows = min(MIN_ROW_GROUP_ROWS, self._row_group_rows)
        # partition -> (number of the pool of its first waiting rows, the waiting rows: slices of pools)
        self._waiting: dict[tuple, tuple[int, list[pa.Table]]] = {}
        self._pools_sorted = 0
        self._file_schema: pa.Schema | None = None
        self._closed: dict[int, DataFile] = {}  # by file number: files close in any order
        self._next_no = 0
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self._pool_batch(batch):
            self._write_sorted(*self._sorted_pool())

    def write_all(self, batches: Iterable[pa.RecordBatch]) -> list[DataFile]:
        """``write`` every batch, then ``close``; the batches are produced, pooled and sorted in a worker
        thread while this one encodes the previous pool as Parquet (pyarrow releases the GIL in both),
        so a landing uses two cores. At most one sorted pool waits between the two."""

        def sorted_pools() -> Generator[tuple[pa.Table, list], None, None]:
            try:
                for batch in batches:
                    if self._pool_batch(batch):
                        yield self._sorted_pool()
                if self._pool:
                    yield self._sorted_pool()
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()  # a generator reading files: closes them now, in this thread

        for ordered, groups in in_background(sorted_pools, depth=1):
            self._write_sorted(ordered, groups)
            del ordered
        return self.close()

    @property
    def _schema(self) -> pa.Schema:
        """The files' schema, which the first batch decides."""
        if self._file_schema is None:
            raise RuntimeError("no batch was written yet: the files' schema is not known")
        return self._file_schema

    def _pool_batch(self, batch: pa.RecordBatch) -> bool:
        """Pool a batch; True when the pool is full."""
        if self._file_schema is None:
            self._batch_schema = batch.schema
            metadata = batch.schema.metadata if self._staged else None
            self._file_schema = pa.schema(
                [f for f in batch.schema if f.name not in self._partition_by], metadata=metadata
            )
        if batch.num_rows == 0:
            return False
        self._pool.append(batch)
        self._pool_bytes += batch.nbytes
        return self._pool_bytes >= self._buffer_bytes

    def _sorted_pool(self) -> tuple[pa.Table, list]:
        pooled = pa.Table.from_batches(self._pool)
        self._pool, self._pool_bytes = [], 0
        ordered, groups = sort_by_partition(pooled, self._partition_by)
        if self._dictionary is None:  # decided on the first pool, for every file
            # Row groups of a few thousand rows (rows in random partition order) pay more for their
            # dictionaries than they save: no dictionaries then.
            large = pooled.num_rows >= DICTIONARY_MIN_ROWS * len(groups)
            self._dictionary = dictionary_columns(pooled.select(self._schema.names)) if large else []
        del pooled  # the sorted copy is all that's kept
        if self._release:
            release_memory()  # what this thread freed goes back to the OS
        return ordered, groups

    def _drain(self) -> None:
        if self._pool:
            self._write_sorted(*self._sorted_pool())

    def _write_sorted(self, ordered: pa.Table, groups: list) -> None:
        pool = self._pools_sorted
        self._pools_sorted += 1
        for key, start, count in groups:
            if count >= self._min_group_rows and key not in self._waiting:
                self._write_rows(key, ordered, start, count)
                continue
            _first, parts = self._waiting.setdefault(key, (pool, []))
            parts.append(ordered.slice(start, count))
            if sum(part.num_rows for part in parts) >= self._min_group_rows:
                self._write_waiting(key)
        del ordered
        for key in [key for key, (first, _) in self._waiting.items() if pool - first + 1 >= BUFFERED_POOLS]:
            self._write_waiting(key)
        if self._release:
            release_memory()

    def _write_waiting(self, key: tuple) -> None:
        _, parts = self._waiting.pop(key)
        rows = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        self._write_rows(key, rows, 0, rows.num_rows)

    def _write_rows(self, key: tuple, table: pa.Table, start: int, count: int) -> None:
        end = start + count
        while start < end:
            target = self._target(key)
            n = min(end - start, self._file_rows - target.rows, self._row_group_rows)
            target.write(table.slice(start, n).select(self._schema.names))
            self.rows += n
            start += n
            self._open_row_groups += 1
            if target.rows >= self._file_rows:
                self._close(key)
            while self._open_row_groups > OPEN_ROW_GROUPS:
                self._close(max(self._open, key=lambda k: self._open[k].row_groups))

    def _target(self, key: tuple) -> _OpenFile:
        if key in self._open:
            self._open.move_to_end(key)
            return self._open[key]
        while len(self._open) >= self._max_open:
            self._close(next(iter(self._open)))
        values = dict(zip(self._partition_by, key, strict=True))
        directory = partition_dir(self._partition_by, values)
        name = data_file_name(self._landing_id, self._next_no)
        rel = f"{directory}/{name}" if directory else name
        schema = self._schema
        if self._staged:
            schema = schema.with_metadata(
                {**(schema.metadata or {}), PARTITION_KEY: partition_metadata(self._batch_schema, values)}
            )
        opened = _OpenFile(
            self._storage,
            rel,
            values,
            schema,
            self._next_no,
            statistics_columns(schema, self._text_statistics),
            self._dictionary or (),
        )
        self._next_no += 1
        self._open[key] = opened
        return opened

    def _close(self, key: tuple) -> None:
        opened = self._open.pop(key)
        self._open_row_groups -= opened.row_groups
        self._closed[opened.no] = opened.close()

    def close(self) -> list[DataFile]:
        """Write what is pooled and close every file; returns the files indexed by file number."""
        self._drain()
        for key in list(self._waiting):
            self._write_waiting(key)
        for key in list(self._open):
            self._close(key)
        return [self._closed[no] for no in sorted(self._closed)]

    def abort(self) -> None:
        """Throw away everything written (after a failure); never raises."""
        self._pool = []
        self._waiting = {}
        for opened in self._open.values():
            opened.abort()
        self._open.clear()
        for data_file in self._closed.values():
            with contextlib.suppress(Exception):
                self._storage.delete(data_file.path)


def rewrite_without(
    storage: TableStorage,
    source_rel: str,
    deleted: np.ndarray,
    partition_values: dict[str, str | None],
    partition_by: Sequence[str],
    landing_id: str,
    seq: int,
) -> DataFile | None:
    """Copy a data file without the rows at the (sorted, unique) positions ``deleted``, streaming one
    row group at a time. Returns None (and writes nothing) when no row remains."""
    with storage.open_input_file(source_rel) as f:
        parquet = pq.ParquetFile(f, pre_buffer=False, buffer_size=1 << 20)
        total = parquet.metadata.num_rows
        if len(deleted) >= total:
            return None
        schema = parquet.schema_arrow
        directory = partition_dir(partition_by, partition_values)
        name = data_file_name(landing_id, seq)
        rel = f"{directory}/{name}" if directory else name
        # The same columns' statistics as the file it replaces (Parquet columns are leaves: a struct
        # field has several, named "field.leaf").
        first = parquet.metadata.row_group(0) if parquet.metadata.num_row_groups else None
        with_statistics = (
            {
                first.column(i).path_in_schema.split(".")[0]
                for i in range(first.num_columns)
                if first.column(i).statistics is not None
            }
            if first is not None
            else set(schema.names)
        )
        statistics = [name for name in schema.names if name in with_statistics]
        opened = _OpenFile(storage, rel, partition_values, schema, seq, statistics)
        try:
            offset = 0
            for batch in parquet.iter_batches(batch_size=ROW_GROUP_ROWS, use_threads=False):
                n = batch.num_rows
                lo, hi = np.searchsorted(deleted, [offset, offset + n])
                if hi > lo:
                    keep = np.ones(n, dtype=bool)
                    keep[deleted[lo:hi] - offset] = False
                    batch = batch.filter(pa.array(keep))
                offset += n
                if batch.num_rows:
                    opened.write(pa.Table.from_batches([batch], schema))
        except BaseException:
            opened.abort()
            raise
        return opened.close()
