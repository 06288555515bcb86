"""Structured records (XML elements, JSON objects) -> typed staging Parquet tables and quarantine records.

Shared by ``xml_reports`` and ``json_reports``. A format reader yields ``Item``s in document order: a
record of the main table (with the rows of its child records, for XML), a record of another table
(JSON arrays), a record that cannot be used (quarantined as a row), or the break of a malformed or
truncated document (also a row record; nothing after it is read). ``stage_items`` turns them into
staging Parquet files and a ``ParseResult``.

Schema: the columns of a table are the union, in first-seen order, of the flattened paths of all its
records, so every staging file of a table has one schema. The document is therefore read once for the
schema, and the items are kept for the writing pass: in memory up to ``BUFFER_ITEMS`` items /
``BUFFER_BYTES``, beyond that pickled to a local temporary file (the "spill"), never re-parsed.
Memory holds the buffer, one batch per table (``BATCH_ROWS`` rows or ~``BATCH_BYTES`` of records) and
the reader's chunk, whatever the document's size.

Column names: each path segment in snake_case (``AmazonOrderID`` -> ``amazon_order_id``, ``PromotionIDs``
-> ``promotion_ids``, ``salesByDate`` -> ``sales_by_date``, ``orderedProductSalesB2B`` ->
``ordered_product_sales_b2b``), joined with ``_``; a name that two paths share gets ``_2``, ``_3``...;
a name that clashes with a system column gets the prefix ``document_``. ``ParseResult.source_columns``
(and the staging files' schema metadata) map each name back to its path (``FulfillmentData/Address/City``,
``salesByDate.orderedProductSales.amount``).

Types: a column declared in ``report.columns`` (Amazon's name or path, matched through snake_case) is
cast to its declared type with the flat files' marketplace-aware casts (``types.cast_column``); a value
that fails lands as null and is quarantined (kind "value", ``line`` = the record index). Undeclared XML
values stay strings. Undeclared JSON values keep their JSON type: integers int64, other numbers float64
(integers in the same column become float64), booleans bool, strings string; a column whose values mix
kinds is a string column (numbers written as JSON text); nested arrays and objects inside arrays are
JSON text. Numbers under a key named ``amount`` or ending in ``Amount`` (Amazon's Amount/Money objects)
are decimal128(20, 4): JSON numbers are read as decimals, so money stays exact.

System columns of every table: the ``extra_columns`` as strings (``report_date`` excepted),
``report_date`` (date32: the UTC date of the record's ``report.date_column`` value, read as a date or
date-time in any layout ``types`` knows; XML child rows take their parent's; a record without one, or
whose value is no date, takes ``extra_columns["report_date"]``) and ``source_line`` (int64: the record's
1-based index in its array or document; XML child rows carry their parent's).
"""

from __future__ import annotations

import codecs
import json
import pickle
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sp_reports.columns import REPORT_DATE_COLUMN, SOURCE_COLUMNS_KEY, SOURCE_LINE_COLUMN, snake_case
from sp_reports.lake.paths import join_path
from sp_reports.lake.storage import Lake
from sp_reports.payloads import ParseResult
from sp_reports.registry import ReportType

from .encoding import codec_for_label
from .result import QUARANTINE_SCHEMA, DocumentParseError, QuarantineRecords, StagingWriter
from .types import ARROW_TYPES, Locale, cast_column, to_report_dates

# Items of the schema pass kept in memory for the writing pass; beyond either limit they are spilled
# to a local temporary file.
BUFFER_ITEMS = 2_000
BUFFER_BYTES = 4 * 1024 * 1024
# Rows per Parquet row group: up to BATCH_ROWS rows or about BATCH_BYTES of record text, whichever first.
BATCH_ROWS = 5_000
BATCH_BYTES = 8 * 1024 * 1024
FILE_ROWS = 1_000_000  # rows per staging file
READ_CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
QUARANTINE_DIR = "_quarantine"

Path = tuple[str, ...]


# --- names ------------------------------------------------------------------------------------------

# --- items ------------------------------------------------------------------------------------------


@dataclass
class Item:
    """One unit of a document, in document order."""

    line: int  # 1-based record index in its array (JSON) or in the document (XML)
    rows: list[tuple[str, dict[Path, Any]]] = field(default_factory=list)  # (table, flattened row)
    main: bool = True  # a record of tables[""] (counted in rows_read)
    date_value: Any = None  # the value report_date is taken from (XML child rows use their parent's)
    error: str | None = None  # set: the item is quarantined as a row (reason)
    raw: bytes = b""  # for errors: the undecoded bytes or the record's text
    is_break: bool = False  # the document ends here (malformed or truncated)
    size: int = 0  # about how many bytes of the document the item came from (bounds the buffers)


class ItemSource:
    """A reader over one document; iterate it for Items. ``encoding`` and ``compressed`` are known
    once iteration has started."""

    encoding: dict[str, Any]
    compressed: bool

    def __iter__(self) -> Iterator[Item]:  # pragma: no cover - interface
        raise NotImplementedError


# --- raw bytes ------------------------------------------------------------------------------------


class Truncated(Exception):
    """The (gzip) stream ended or broke before its end; the bytes yielded so far are good."""


def decompressed_chunks(raw: pa.NativeFile, state: dict[str, Any]) -> Iterator[bytes]:
    """The document's bytes, gunzipped when they start with gzip's magic bytes (``state["compressed"]``).

    Raises ``Truncated`` after the last good bytes of a truncated or corrupt gzip stream.
    """
    data = raw.read(READ_CHUNK)
    state["compressed"] = compressed = data[:2] == GZIP_MAGIC
    if not compressed:
        while data:
            yield data
            data = raw.read(READ_CHUNK)
        return
    inflater = zlib.decompressobj(wbits=31)
    while True:
        if not data:
            data = raw.read(READ_CHUNK)
            if not data:
                if not inflater.eof:
                    raise Truncated("truncated document: the gzip stream ends before its trailer")
                return
        if inflater.eof:  # another gzip member follows (concatenated gzip is valid gzip)
            if not data.startswith(GZIP_MAGIC):
                return  # trailing garbage after the gzip stream, as gzip(1) ignores it
            inflater = zlib.decompressobj(wbits=31)
        try:
            out = inflater.decompress(data, READ_CHUNK)
        except zlib.error as e:
            raise Truncated(f"truncated document: corrupt gzip stream ({e})") from None
        data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        if out:
            yield out


class TextBreak(Exception):
    """The document's text breaks here: ``good`` is the text before the break (still to be parsed), ``raw``
    the bytes around it (for the quarantine record)."""

    def __init__(self, reason: str, raw: bytes = b"", good: str = ""):
        super().__init__(reason)
        self.reason, self.raw, self.good = reason, raw, good


SNIFF_BYTES = 4096  # what a structured document's codec is chosen from (BOM, XML declaration, charset)
RAW_CONTEXT = 200  # bytes kept on each side of a break


def decoded_text(source: Any, raw: pa.NativeFile) -> Iterator[str]:
    """The document's text, chunk by chunk, strictly decoded in the codec ``source._choose_codec`` picks from
    its first ``SNIFF_BYTES`` (which also sets ``source.encoding``); sets ``source.compressed``.

    Raises ``TextBreak`` at undecodable bytes or a broken gzip stream, ``DocumentParseError`` when not a byte
    of the document can be read.
    """
    state: dict[str, Any] = {}
    chunks = decompressed_chunks(raw, state)
    head, truncated = b"", None
    try:
        for chunk in chunks:
            head += chunk
            if len(head) >= SNIFF_BYTES:
                break
    except Truncated as e:
        truncated = e
    finally:
        source.compressed = bool(state.get("compressed"))
    if not head:
        if truncated is not None:
            raise DocumentParseError(str(truncated), path=source.raw_path)
        return
    codec = source._choose_codec(head)
    decoder = codecs.getincrementaldecoder(codec)("strict")
    offset = 0  # bytes decoded so far (for error messages)

    def decode(data: bytes, final: bool = False) -> str:
        nonlocal offset
        try:
            text = decoder.decode(data, final)
        except UnicodeDecodeError as e:
            raise TextBreak(
                f"undecodable bytes {bytes(e.object[e.start : e.end])!r} at byte {offset + e.start} of the "
                f"decompressed document: not valid {source.encoding['codec']} ({e.reason})",
                bytes(e.object[max(0, e.start - RAW_CONTEXT) : e.end + RAW_CONTEXT]),
                bytes(e.object[: e.start]).decode(codec),
            ) from None
        offset += len(data)
        return text

    yield decode(head)
    if truncated is not None:
        raise TextBreak(str(truncated))
    try:
        for chunk in chunks:
            yield decode(chunk)
    except Truncated as e:
        raise TextBreak(str(e)) from None
    yield decode(b"", final=True)


def python_codec(label: str) -> str | None:
    """Python codec for a charset label (Amazon's Java names too: Cp1252, windows-31j, Shift_JIS -> cp932);
    None when unknown. Unlike flat files, XML/JSON are decoded as a stream, so UTF-16/32 labels work."""
    codec, _ = codec_for_label(label)
    if codec:
        return codec
    try:
        return codecs.lookup(label.strip()).name
    except LookupError:
        return None


BOMS = ((codecs.BOM_UTF8, "utf-8-sig", "UTF-8"), (codecs.BOM_UTF32_LE, "utf-32", "UTF-32LE"),
        (codecs.BOM_UTF32_BE, "utf-32", "UTF-32BE"), (codecs.BOM_UTF16_LE, "utf-16", "UTF-16LE"),
        (codecs.BOM_UTF16_BE, "utf-16", "UTF-16BE"))  # fmt: skip


def sniff_bom(head: bytes) -> tuple[str, str] | None:
    """(Python codec that consumes the BOM, label) for a document starting with a byte order mark."""
    for bom, codec, label in BOMS:
        if head.startswith(bom):
            return codec, label
    return None


# --- schema ------------------------------------------------------------------------------------------


def value_text(value: Any) -> str:
    """A value as text: strings as they are, JSON values as JSON (true, 12.5, [1,2])."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_KINDS = {str: "str", int: "int", bool: "bool", Decimal: "float", float: "float", type(None): "null"}


@dataclass
class Column:
    name: str
    source: str
    kinds: set[str] = field(default_factory=set)
    declared: str | None = None

    @property
    def is_amount(self) -> bool:
        return self.name == "amount" or self.name.endswith("_amount")

    @property
    def cast_kind(self) -> str:
        """A declared type, else the one the JSON values have: integer, float, decimal, bool or string."""
        if self.declared:
            return self.declared
        kinds = self.kinds - {"null"}
        if kinds and kinds <= {"int", "float"}:
            if self.is_amount:
                return "decimal"
            return "integer" if kinds == {"int"} else "float"
        if kinds == {"bool"}:
            return "bool"
        return "string"

    def arrow_type(self) -> pa.DataType:
        kind = self.cast_kind
        if kind == "float":
            return pa.float64()
        if kind == "bool":
            return pa.bool_()
        return ARROW_TYPES[kind]


class Schema:
    """Columns per table, in first-seen order; paths -> unique snake_case column names."""

    def __init__(self, report: ReportType, system_columns: Iterable[str], separator: str):
        self.report = report
        self.separator = separator
        self._system = set(system_columns)
        self._declared = {snake_case(name): kind for name, kind in report.columns.items()}
        self.tables: dict[str, dict[Path, Column]] = {}
        self._names: dict[str, set[str]] = {}

    def table(self, name: str) -> dict[Path, Column]:
        if name not in self.tables:
            self.tables[name] = {}
            self._names[name] = set()
        return self.tables[name]

    def observe(self, item: Item) -> None:
        kinds = _KINDS
        for table_name, row in item.rows:
            columns = self.table(table_name)
            for path, value in row.items():
                column = columns.get(path)
                if column is None:
                    column = columns[path] = self._new_column(table_name, path)
                column.kinds.add(kinds.get(value.__class__, "json"))

    def _new_column(self, table_name: str, path: Path) -> Column:
        base = "_".join(part for part in (snake_case(p) for p in path) if part) or "field"
        declared = self._declared.get(base)
        if base in self._system:
            base = f"document_{base}"
        names = self._names[table_name]
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.add(name)
        return Column(name, self.separator.join(path), declared=declared)


# --- writing --------------------------------------------------------------------------------------------


class _Buffer:
    def __init__(self) -> None:
        self.rows: list[dict[Path, Any]] = []
        self.lines: list[int] = []
        self.dates: list[Any] = []
        self.size = 0


class Writer:
    """Typed staging Parquet per table plus quarantine records; counts rows for ParseResult."""

    def __init__(self, lake: Lake, out_dir: str, schema: Schema, *, report: ReportType, marketplace_id: str,
                 extra_columns: Mapping[str, str]):  # fmt: skip
        self.lake, self.out_dir, self.schema, self.report = lake, out_dir, schema, report
        self.locale = Locale.for_marketplace(marketplace_id)
        self.extras = {k: v for k, v in extra_columns.items() if k != REPORT_DATE_COLUMN}
        self.fallback_date = pa.scalar(_date_or_none(extra_columns.get(REPORT_DATE_COLUMN)), pa.date32())
        self.quarantine = QuarantineRecords(
            extra_columns.get("report_id"), report.report_type, marketplace_id, extra_columns.get("selling_partner_id")
        )
        self._quarantine_writer = StagingWriter(lake, join_path(out_dir, QUARANTINE_DIR), QUARANTINE_SCHEMA,
                                                batch_rows=BATCH_ROWS, file_rows=FILE_ROWS)  # fmt: skip
        self._buffers: dict[str, _Buffer] = {name: _Buffer() for name in schema.tables}
        self._writers: dict[str, StagingWriter] = {}
        self.rows_read = self.rows_parsed = 0

    def add(self, item: Item) -> None:
        if item.error is not None:
            self.rows_read += 1
            self.quarantine.row(item.line, item.error, item.raw)
            self._flush_quarantine()
            return
        if item.main:
            self.rows_read += 1
            self.rows_parsed += 1
        for table_name, row in item.rows:
            buffer = self._buffers[table_name]
            buffer.rows.append(row)
            buffer.lines.append(item.line)
            buffer.dates.append(item.date_value)
            buffer.size += item.size
            if len(buffer.rows) >= BATCH_ROWS or buffer.size >= BATCH_BYTES:
                self._flush(table_name)

    def arrow_schema(self, table_name: str) -> pa.Schema:
        fields = [pa.field(c.name, c.arrow_type()) for c in self.schema.tables[table_name].values()]
        fields += [pa.field(name, pa.string()) for name in self.extras]
        fields += [pa.field(REPORT_DATE_COLUMN, pa.date32()), pa.field(SOURCE_LINE_COLUMN, pa.int64())]
        return pa.schema(
            fields,
            metadata={
                SOURCE_COLUMNS_KEY: json.dumps(
                    {c.name: c.source for c in self.schema.tables[table_name].values()}, ensure_ascii=False
                )
            },
        )

    def _writer(self, table_name: str, batch_rows: int = BATCH_ROWS) -> StagingWriter:
        writer = self._writers.get(table_name)
        if writer is None:
            directory = join_path(self.out_dir, table_name) if table_name else self.out_dir
            # Row groups as large as the first batch: BATCH_ROWS rows, fewer when records are big.
            writer = self._writers[table_name] = StagingWriter(
                self.lake, directory, self.arrow_schema(table_name), batch_rows=max(1, batch_rows), file_rows=FILE_ROWS
            )
        return writer

    def _flush(self, table_name: str) -> None:
        buffer = self._buffers[table_name]
        if not buffer.rows:
            return
        self._buffers[table_name] = _Buffer()
        n = len(buffer.rows)
        writer = self._writer(table_name, n)
        arrays = [
            self._column_array(column, [row.get(path) for row in buffer.rows], buffer.lines)
            for path, column in self.schema.tables[table_name].items()
        ]
        arrays += [pa.repeat(pa.scalar(value, pa.string()), n) for value in self.extras.values()]
        arrays.append(self._report_dates(buffer.dates))
        arrays.append(pa.array(buffer.lines, pa.int64()))
        writer.write(pa.RecordBatch.from_arrays(arrays, schema=writer.schema))
        self._flush_quarantine()

    def _column_array(self, column: Column, values: list[Any], lines: list[int]) -> pa.Array:
        kind = column.cast_kind
        if kind == "float":
            return pa.array([None if v is None else float(v) for v in values], pa.float64())
        if kind == "bool":
            return pa.array(values, pa.bool_())
        texts = pa.array([None if v is None else value_text(v) for v in values], pa.string())
        if kind == "string":
            return texts
        typed, failures = cast_column(texts, kind, self.locale)
        for index, reason in failures:
            self.quarantine.value(lines[index], column.name, reason, texts[index].as_py())
        return typed

    def _report_dates(self, values: list[Any]) -> pa.Array:
        texts = pa.array([v if isinstance(v, str) else None for v in values], pa.string())
        if texts.null_count == len(texts):
            return pa.repeat(self.fallback_date, len(texts))
        return pc.fill_null(to_report_dates(texts, "string", self.locale), self.fallback_date)

    def _flush_quarantine(self) -> None:
        if len(self.quarantine) >= BATCH_ROWS:
            self._quarantine_writer.write(self.quarantine.take())

    def finish(self, main_table: str) -> tuple[dict[str, list[str]], list[str]]:
        tables: dict[str, list[str]] = {}
        for name in self.schema.tables:
            self._flush(name)
            if name in self._writers or (name == main_table and self.schema.tables[name]):
                # The main table always gets a file (maybe empty) once its columns are known.
                tables[name] = self._writer(name).close(always=name == main_table)
            else:
                tables[name] = []
        batch = self.quarantine.take()
        if batch is not None:
            self._quarantine_writer.write(batch)
        return tables, self._quarantine_writer.close()

    def abort(self) -> None:
        for writer in [*self._writers.values(), self._quarantine_writer]:
            try:
                writer.abort()
            except Exception:  # noqa: BLE001 - the original error matters more
                pass


def _date_or_none(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


class _Spill:
    """The items of the schema pass, for the writing pass: in memory up to BUFFER_ITEMS, then in a local
    temporary file (pickled one by one), so the document is read once and memory stays bounded."""

    def __init__(self) -> None:
        self._items: list[Item] | None = []
        self._size = 0
        self._file: Any = None

    def add(self, item: Item) -> None:
        if self._items is not None:
            self._items.append(item)
            self._size += item.size
            if len(self._items) <= BUFFER_ITEMS and self._size <= BUFFER_BYTES:
                return
            self._file = tempfile.TemporaryFile(prefix="sp-reports-spill-")  # noqa: SIM115 - closed by close()
            items, self._items = self._items, None
            for buffered in items:
                self._dump(buffered)
            return
        self._dump(item)

    def _dump(self, item: Item) -> None:
        pickle.dump(_fields(item), self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def items(self) -> Iterator[Item]:
        if self._items is not None:
            yield from self._items
            return
        self._file.seek(0)
        while True:
            try:
                fields = pickle.load(self._file)
            except EOFError:
                return
            yield Item(*fields)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _fields(item: Item) -> tuple:
    return (item.line, item.rows, item.main, item.date_value, item.error, item.raw, item.is_break, item.size)


def stage_items(
    lake: Lake,
    out_dir: str,
    open_items: Callable[[], ItemSource],
    *,
    report: ReportType,
    marketplace_id: str,
    extra_columns: Mapping[str, str],
    separator: str,
    tables: Iterable[str] = ("",),
) -> ParseResult:
    """Read the document once (schema pass, items spilled), then write the staging tables from the spill."""
    out_dir = join_path(out_dir)
    if not out_dir.startswith("staging/"):
        raise ValueError(f"out_dir must be in the staging zone, got {out_dir!r}")
    extras = dict(extra_columns)
    system = [k for k in extras if k != REPORT_DATE_COLUMN] + [REPORT_DATE_COLUMN, SOURCE_LINE_COLUMN]
    schema = Schema(report, system, separator)
    main_table = ""
    for name in tables:  # every table the report type has gets its key in ParseResult.tables
        schema.table(name)
    source = open_items()
    spill = _Spill()
    try:
        for item in source:
            schema.observe(item)
            spill.add(item)
        encoding, compressed = source.encoding, source.compressed
        writer = Writer(lake, out_dir, schema, report=report, marketplace_id=marketplace_id, extra_columns=extras)
        try:
            for item in spill.items():
                writer.add(item)
            tables, quarantine_files = writer.finish(main_table)
        except BaseException:
            writer.abort()
            raise
    finally:
        spill.close()
    main = schema.tables[main_table]
    return ParseResult(
        tables=tables,
        quarantine_files=quarantine_files,
        rows_read=writer.rows_read,
        rows_parsed=writer.rows_parsed,
        rows_quarantined=writer.quarantine.rows,
        values_quarantined=writer.quarantine.values,
        encoding=encoding,
        compressed=compressed,
        columns=[c.name for c in main.values()],
        source_columns={c.name: c.source for c in main.values()},
    )
