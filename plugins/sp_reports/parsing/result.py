"""What every parser shares: the quarantine schema, and the staging Parquet writers.

Shared by every document format (flat files here, XML and JSON in their own modules).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

import pyarrow as pa
import pyarrow.parquet as pq

from sp_reports.lake.datafiles import PartitionedWriter, StagedPartition, TableStorage, buffered_sink
from sp_reports.lake.paths import join_path
from sp_reports.lake.storage import Lake

if TYPE_CHECKING:
    from sp_reports.registry import ReportType

# One record per quarantined row (a line that could not become a row) or value (a field that failed
# its declared type: the row landed with null there).
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("selling_partner_id", pa.string()),
        pa.field("report_id", pa.string()),
        pa.field("report_type", pa.string()),
        pa.field("marketplace_id", pa.string()),
        pa.field("line", pa.int64()),  # 1-based line in the decompressed document (record index: XML/JSON)
        pa.field("kind", pa.string()),  # "row" | "value"
        pa.field("reason", pa.string()),
        pa.field("column", pa.string()),  # null for kind=row
        pa.field("raw", pa.binary()),  # the undecoded line bytes, or the value's text in UTF-8
    ]
)
ROW, VALUE = "row", "value"

DEFAULT_BATCH_ROWS = 100_000  # rows per Parquet row group
DEFAULT_FILE_ROWS = 5_000_000  # rows per staging file
DATA_FILE_ROWS = 1_048_576  # rows per staged data file (datafiles.FILE_ROWS: a MERGE rewrites whole files)
# Staging files are written once and read once (by the Delta landing), so favour cheap encoding over
# size: lz4 without dictionaries writes faster than the zstd+dictionary default, at a larger size.
STAGING_PARQUET: dict[str, Any] = {"compression": "lz4", "use_dictionary": False, "write_statistics": False}
STAGING_SINK_BYTES = 1 << 20


class ParseOptions(TypedDict):
    """What every parser is told about a document besides where it is (``parse_document``'s keywords)."""

    report: ReportType
    marketplace_id: str
    charset: str | None  # Amazon's label from the Content-Type; the parsers sniff BOMs and declarations
    compressed: bool | None  # a hint only: gzip is detected by its magic bytes
    extra_columns: Mapping[str, str]  # system columns every row gets (report_id, marketplace_id, ...)


class DocumentParseError(Exception):
    """The document cannot be read at all; ``line`` (1-based) says where, when known.

    Bad rows and bad values never raise: they are quarantined and the rest of the document lands.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path, self.line, self.reason = path, line, message
        where = ": ".join(p for p in (path, f"line {line}" if line is not None else None) if p)
        super().__init__(f"{where}: {message}" if where else message)


class StagingWriter:
    """Writes record batches as Parquet row groups of ~batch_rows rows, in files of ~file_rows rows.

    Files are opened lazily (a table nobody writes to gets no file unless ``close(always=True)``);
    ``abort`` deletes whatever was written, so a failed parse leaves nothing behind.
    """

    def __init__(
        self,
        lake: Lake,
        out_dir: str,
        schema: pa.Schema,
        *,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        file_rows: int = DEFAULT_FILE_ROWS,
    ):
        self._lake, self._dir, self.schema = lake, out_dir, schema
        self._batch_rows, self._file_rows = batch_rows, file_rows
        self._prefix = uuid.uuid4().hex[:12]  # unique per parse: a re-parse never collides with old files
        self.files: list[str] = []
        self.rows = 0
        self._output: Any = None  # the lake's atomic-output context manager of the open file
        self._writer: pq.ParquetWriter | None = None
        self._in_file = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            if self._writer is None or self._in_file >= self._file_rows:
                self._open()
            part = batch.slice(0, self._file_rows - self._in_file)
            batch = batch.slice(part.num_rows)
            self._pending.append(part)
            self._pending_rows += part.num_rows
            self._in_file += part.num_rows
            self.rows += part.num_rows
            if self._pending_rows >= self._batch_rows:
                self._flush()

    def close(self, *, always: bool = False) -> list[str]:
        """Finish the last file; with ``always`` an empty file carries the schema when nothing was written."""
        if self._writer is None and always:
            self._open()
        self._close_file()
        return self.files

    def abort(self) -> None:
        if self._output is not None:  # the open file: the lake discards it when its block "raises"
            output, writer, self._output, self._writer = self._output, self._writer, None, None
            # No writer when ParquetWriter failed in _open, after the output was opened
            finishes = (self._sink.detach,) if writer is None else (writer.close, self._sink.detach)
            for finish in finishes:  # into the file being thrown away
                try:
                    finish()
                except Exception:  # noqa: BLE001 - the file is being thrown away
                    pass
            try:
                output.__exit__(RuntimeError, RuntimeError("parse aborted"), None)
            except Exception:  # noqa: BLE001 - nothing more to clean up
                pass
            self.files.pop()
        for path in self.files:
            self._lake.delete(path)
        self.files = []

    def _open(self) -> None:
        self._close_file()
        path = join_path(self._dir, f"part-{self._prefix}-{len(self.files):05d}.parquet")
        self.files.append(path)
        self._output = self._lake.open_output(path)
        # Buffered in Arrow: the lake's output is a Python object, and the parser's other threads hold
        # the GIL at times; a few large writes instead of one per page header and page.
        self._sink = buffered_sink(self._output.__enter__(), STAGING_SINK_BYTES)
        self._writer = pq.ParquetWriter(self._sink, self.schema, **STAGING_PARQUET)
        self._in_file = 0

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, self.schema)
            self._pending, self._pending_rows = [], 0
            assert self._writer is not None
            self._writer.write_table(table, row_group_size=self._batch_rows)

    def _close_file(self) -> None:
        if self._writer is None:
            return
        self._flush()
        self._writer.close()
        self._sink.detach()  # flushed; the lake's output stays open until it is committed
        output, self._output, self._writer = self._output, None, None
        output.__exit__(None, None, None)  # commits the file


class StagedDataFiles:
    """The main table's rows written as the Delta table's data files will be (``lake/datafiles.py``:
    partition directories, the same Parquet options and statistics), so that the landing can adopt the
    files instead of decoding and re-encoding every row (``delta._Landing``). Each file records its
    partition in its schema metadata (``datafiles.PARTITION_KEY``); partitioned by those of
    ``partition_by`` the schema has. The ``StagingWriter`` interface.
    """

    def __init__(
        self,
        lake: Lake,
        out_dir: str,
        schema: pa.Schema,
        partition_by: tuple[str, ...],
        *,
        key_columns: tuple[str, ...] = (),
        batch_rows: int = DEFAULT_BATCH_ROWS,
        file_rows: int = DEFAULT_FILE_ROWS,
    ):
        self._lake, self._dir, self.schema = lake, out_dir, schema
        partition = [c for c in partition_by if c in schema.names]
        self._writer = PartitionedWriter(
            TableStorage(lake, "", root=out_dir),
            partition,
            uuid.uuid4().hex[:12],
            file_rows=min(file_rows, DATA_FILE_ROWS),
            row_group_rows=batch_rows,
            staged=True,
            release=False,
            text_statistics=key_columns,
        )
        self.files: list[str] = []
        self._empty: StagingWriter | None = None

    @property
    def rows(self) -> int:
        return self._writer.rows

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write(batch)

    def close(self, *, always: bool = False) -> list[str]:
        self.files = [join_path(self._dir, f.path) for f in self._writer.close() if f is not None]
        if not self.files and always:  # no rows: an empty (unpartitioned) file carries the columns
            self._empty = StagingWriter(self._lake, self._dir, self.schema)
            self.files = self._empty.close(always=True)
        return self.files

    def abort(self) -> None:
        self._writer.abort()
        if self._empty is not None:
            self._empty.abort()
        for path in self.files:
            self._lake.delete(path)
        self.files = []


def read_staged(lake: Lake, path: str) -> pa.Table:
    """A staging file as a table (a staged data file with its partition columns restored; no metadata)."""
    table = pq.read_table(lake.fs_path(path), filesystem=lake.filesystem)
    partition = StagedPartition.of(table.schema.metadata)
    return table if partition is None else partition.restore(table)


class QuarantineRecords:
    """Quarantine records of one document, accumulated as columns and emitted as QUARANTINE_SCHEMA batches."""

    def __init__(
        self,
        report_id: str | None,
        report_type: str,
        marketplace_id: str | None,
        selling_partner_id: str | None = None,
    ):
        self._constants = (report_id, report_type, marketplace_id)
        self._seller = selling_partner_id
        self._clear()
        self.rows = 0
        self.values = 0

    def _clear(self) -> None:
        self._line: list[int] = []
        self._kind: list[str] = []
        self._reason: list[str] = []
        self._column: list[str | None] = []
        self._raw: list[bytes] = []

    def __len__(self) -> int:
        return len(self._line)

    def row(self, line: int, reason: str, raw: bytes) -> None:
        self._add(line, ROW, reason, None, raw)
        self.rows += 1

    def value(self, line: int, column: str, reason: str, raw: str) -> None:
        self._add(line, VALUE, reason, column, raw.encode("utf-8", "surrogatepass"))
        self.values += 1

    def _add(self, line: int, kind: str, reason: str, column: str | None, raw: bytes) -> None:
        self._line.append(line)
        self._kind.append(kind)
        self._reason.append(reason)
        self._column.append(column)
        self._raw.append(raw)

    def take(self) -> pa.RecordBatch | None:
        """The records added since the last call, as a batch (None if there are none)."""
        n = len(self._line)
        if not n:
            return None
        report_id, report_type, marketplace_id = self._constants
        batch = pa.RecordBatch.from_arrays(
            [
                pa.repeat(pa.scalar(self._seller, pa.string()), n),
                pa.repeat(pa.scalar(report_id, pa.string()), n),
                pa.repeat(pa.scalar(report_type, pa.string()), n),
                pa.repeat(pa.scalar(marketplace_id, pa.string()), n),
                pa.array(self._line, pa.int64()),
                pa.array(self._kind, pa.string()),
                pa.array(self._reason, pa.string()),
                pa.array(self._column, pa.string()),
                pa.array(self._raw, pa.binary()),
            ],
            schema=QUARANTINE_SCHEMA,
        )
        self._clear()
        return batch
