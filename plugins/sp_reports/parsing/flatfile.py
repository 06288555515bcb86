"""Amazon flat files (tab-separated text) -> typed staging Parquet, tolerant of Amazon's quirks.

The document streams through with bounded memory (a few blocks of a few MB in flight), in three
threads that overlap (pyarrow, numpy and zlib release the GIL; Python's codecs do not):

    decoding thread:  raw bytes -> gunzip (detected by magic bytes) -> blocks of whole lines (~2 MB)
                      -> encoding decided on the first non-ASCII block (encoding.py) -> strict
                      transcoding to UTF-8 (fast path: the whole block; slow path: line by line)
    parsing thread:   pyarrow's CSV parser on the block (rows with the header's field count: the fast
                      path) -> rows it rejects (ragged, lone \r) repaired in Python -> declared
                      columns cast (types.py) -> system columns; then the block is recorded: row
                      counts, row and value quarantine, the settlement summary row
    calling thread:   the main table's rows as the Delta table's data files, by partition
                      (``result.StagedDataFiles``: the landing adopts them as they are), other tables
                      and the quarantine as staging Parquet

Flat-file rules (docs/parsing.md):
* Line 1 is the first line of the decompressed document (after a BOM); the header is the first
  non-blank line. Lines end in ``\\n`` or ``\\r\\n``; a lone ``\\r`` is data (a document with no
  ``\\n`` in its first MB but a ``\\r`` uses ``\\r`` line ends). Fields are split on tabs; ``"`` is data.
* Blank lines (nothing but tabs and ``\\r``) are skipped and are not rows. Every other line after the
  header is a row read: it lands (rows_parsed) or is quarantined (rows_quarantined).
* Empty fields are null in every column. Trailing empty header fields (trailing tabs) are dropped.
  A row with fewer fields is padded with nulls; with more fields, extra fields that are all empty
  (trailing tabs) are dropped, otherwise the row is quarantined ("N fields, header has M").
* A line no candidate charset decodes is quarantined with its raw bytes (encoding.py).
* A gzip stream that breaks (ends early, corrupt data, non-gzip bytes after it) ends the document:
  every complete line before the break lands, and the break is one quarantined row: line = the line
  the break cut (N + 1), reason "document truncated after line N: <why>", raw = that line's partial
  bytes (possibly empty). It counts as a row read, so the truncation is visible in the counts.
  (Corrupt deflate data can inflate to garbage before zlib notices, at the latest at the member's
  CRC: such lines are parsed like any other, typically quarantined as too long.)
* Settlements (``summary_first_row``): the first data line is the summary row (tables["summary"],
  same columns); if it is quarantined there is no summary row.
* ``report_date`` (date32): the UTC date of ``report.date_column`` (the calendar date for a date
  column), else, and for rows where that is null, ``extra_columns["report_date"]``.
* Only ``DocumentParseError`` escapes for the document's content: no header line (e.g. the gzip
  stream breaks inside it), an undecodable header, a UTF-16 document, a line over 64 MB. Storage
  errors (``OSError``) propagate as they are: they are not the document's fault.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Unpack, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from zlib_ng import zlib_ng as zlib

from sp_reports.background import in_background
from sp_reports.columns import (
    MARKETPLACE_COLUMN,
    REPORT_DATE_COLUMN,
    SOURCE_COLUMNS_KEY,
    SOURCE_LINE_COLUMN,
    natural_key_columns,
    snake_case,
)
from sp_reports.lake.paths import join_path
from sp_reports.lake.storage import Lake
from sp_reports.payloads import ParseResult
from sp_reports.registry import ReportType

from .encoding import BLANKED, UTF8_BOM, EncodingChoice, decode_block
from .result import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_FILE_ROWS,
    QUARANTINE_SCHEMA,
    DocumentParseError,
    ParseOptions,
    QuarantineRecords,
    StagedDataFiles,
    StagingWriter,
)
from .types import ARROW_TYPES, Locale, cast_column, to_report_dates

log = logging.getLogger(__name__)

SUMMARY_TABLE = "summary"
# The main table's rows are staged as data files of the table's partitions (lake.DEFAULT_PARTITION_BY).
PARTITION_BY = (MARKETPLACE_COLUMN,)

_READ_CHUNK = 1 << 20  # bytes per read from storage
# Bytes of whole lines per block: one pyarrow CSV parse, one record batch. Larger blocks cost memory
# (several are in flight) without being faster.
_BLOCK = 2 << 20
_MAX_LINE = 64 << 20  # a "line" longer than this is not a flat file (and would not fit the budget)
_CR_PROBE = 1 << 20  # bytes looked at for classic Mac (\r-only) line ends
_GZIP_MAGIC = b"\x1f\x8b"
# zlib_ng's stub declares ``error`` an Exception instance; it is the exception class, as in zlib.
_ZlibError = cast("type[Exception]", zlib.error)


def parse_tsv(
    lake: Lake,
    raw_path: str,
    out_dir: str,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    file_rows: int = DEFAULT_FILE_ROWS,
    **options: Unpack[ParseOptions],
) -> ParseResult:
    """Parse the flat file at ``raw_path`` into staging Parquet under ``out_dir`` (see the module docstring).

    ``compressed`` is a hint only (gzip is detected by its magic bytes). On any exception no staging
    file is left behind.
    """
    out_dir = join_path(out_dir)
    if not out_dir.startswith("staging/"):
        raise ValueError(f"out_dir must be in the staging zone, got {out_dir!r}")
    report = options["report"]
    parser = _FlatFileParser(
        lake, raw_path, report, options["marketplace_id"], options["charset"], dict(options["extra_columns"])
    )
    tables: dict[str, StagingWriter | StagedDataFiles] = {}
    quarantine = StagingWriter(lake, join_path(out_dir, "quarantine"), QUARANTINE_SCHEMA)
    try:
        for kind, payload in _in_background(parser.items):
            if kind == "schema":
                tables[""] = StagedDataFiles(
                    lake,
                    out_dir,
                    payload,
                    PARTITION_BY,
                    key_columns=natural_key_columns(report),
                    batch_rows=batch_rows,
                    file_rows=file_rows,
                )
                if report.summary_first_row:
                    tables[SUMMARY_TABLE] = StagingWriter(lake, join_path(out_dir, SUMMARY_TABLE), payload)
            elif kind == "quarantine":
                quarantine.write(payload)
            else:  # typed rows of a table
                tables[kind].write(payload)
        # A header-only document still gets a (empty) main file: it carries the columns.
        files = {name: writer.close(always=name == "") for name, writer in tables.items()}
        quarantine_files = quarantine.close()
    except BaseException:
        for writer in [*tables.values(), quarantine]:
            writer.abort()
        raise
    if options["compressed"] is not None and options["compressed"] != parser.compressed:
        log.info(
            "%s: compressed=%s was given but the magic bytes say %s", raw_path, options["compressed"], parser.compressed
        )
    result = ParseResult(
        tables=files or {"": []},
        quarantine_files=quarantine_files,
        rows_read=parser.rows_read,
        rows_parsed=sum(writer.rows for writer in tables.values()),
        rows_quarantined=parser.quarantine.rows,
        values_quarantined=parser.quarantine.values,
        encoding=parser.encoding.as_dict(),
        compressed=parser.compressed,
        columns=list(parser.names),
        source_columns=dict(parser.source_columns),
    )
    log.info(
        "Parsed %s: %d rows read, %d parsed, %d quarantined, %d values quarantined; encoding %s",
        raw_path,
        result.rows_read,
        result.rows_parsed,
        result.rows_quarantined,
        result.values_quarantined,
        result.encoding,
    )
    return result


# --- column names ------------------------------------------------------------------------------------


def normalise_columns(header: list[str], reserved: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """snake_case names, unique, never empty (``column_3`` for a blank header field), none in ``reserved``."""
    names: list[str] = []
    seen: set[str] = set(reserved)
    for i, original in enumerate(header, start=1):
        base = snake_case(original) or f"column_{i}"
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        names.append(name)
    return names


# --- reading: gunzip and blocks of lines -------------------------------------------------------------


class _Stream:
    """The decompressed bytes of a raw document; gzip is detected by its magic bytes.

    A broken gzip stream ends the stream early and sets ``broken`` (why); storage errors propagate.
    """

    def __init__(self, raw):
        self._raw = raw
        self.compressed = False
        self.broken: str | None = None
        self.tail = b""  # set by _blocks: the partial last line of a broken stream

    def chunks(self) -> Iterator[bytes]:
        data = self._raw.read(_READ_CHUNK)
        self.compressed = data[:2] == _GZIP_MAGIC
        if not self.compressed:
            while data:
                yield data
                data = self._raw.read(_READ_CHUNK)
            return
        inflater = zlib.decompressobj(wbits=31)
        while True:
            if not data:
                data = self._raw.read(_READ_CHUNK)
                if not data:
                    if not inflater.eof:
                        try:
                            yield inflater.flush()  # output held back by max_length, if any
                        except _ZlibError:
                            pass  # the break is recorded either way
                        self.broken = "the gzip stream ends early"
                    return
            if inflater.eof:  # another gzip member follows (concatenated gzip is valid gzip)
                if not data.strip(b"\0"):
                    data = b""  # zero padding after the stream, as tape-era tools wrote it
                    continue
                inflater = zlib.decompressobj(wbits=31)
            backup = inflater.copy()  # type: ignore[attr-defined]  # zlib_ng's stub omits _Decompress.copy
            try:
                # max_length bounds the output when the input is extremely compressible.
                out = inflater.decompress(data, _READ_CHUNK)
            except _ZlibError as e:
                # zlib drops the output of a failing call: redo it in small steps to keep what came before.
                yield from _salvage(backup, data)
                self.broken = f"corrupt gzip data ({e})"
                return
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if out:
                yield out


def _salvage(inflater, data: bytes) -> Iterator[bytes]:
    """What ``inflater`` decompresses from ``data`` before the error it raises (1 KB steps, then bytes)."""
    for start in range(0, len(data), 1024):
        backup = inflater.copy()
        try:
            yield inflater.decompress(data[start : start + 1024])
        except _ZlibError:
            inflater = backup
            for i in range(start, min(start + 1024, len(data))):
                try:
                    yield inflater.decompress(data[i : i + 1])
                except _ZlibError:
                    return
            return


def _blocks(stream: _Stream, path: str) -> Iterator[tuple[int, bytearray, int]]:
    """(number of the first line, ~_BLOCK bytes or more of whole lines, number of lines); the
    unfinished tail of a broken stream is left in ``stream.tail``."""
    chunks = stream.chunks()
    # Classic Mac line ends: no \n at all in the first MB, but \r.
    head: list[bytes] = []
    for chunk in chunks:
        head.append(chunk)
        if b"\n" in chunk or sum(map(len, head)) >= _CR_PROBE:
            break
    first = b"".join(head)
    source: Iterator[bytes] = itertools.chain([first], chunks)
    if b"\n" not in first[:_CR_PROBE] and b"\r" in first[:_CR_PROBE]:
        source = (chunk.replace(b"\r", b"\n") for chunk in source)
    # Each byte is copied once, into the block it belongs to; a block is a bytearray of whole lines.
    line = 1
    buffer = bytearray()
    for chunk in source:
        cut = chunk.rfind(b"\n") + 1
        if len(buffer) + len(chunk) < _BLOCK:
            buffer += chunk
            continue
        if not cut:  # a long line: what ends before it is a block, the line must fit in _MAX_LINE
            done = buffer.rfind(b"\n") + 1
            if done:
                block, buffer = buffer[:done], buffer[done:]
                lines = _count_lines(block)
                yield line, block, lines
                line += lines
            buffer += chunk
            if len(buffer) > _MAX_LINE:
                raise DocumentParseError(f"line {line} is longer than {_MAX_LINE >> 20} MB", path=path, line=line)
            continue
        view = memoryview(chunk)
        buffer += view[:cut]
        # The only pass counting lines: every later step derives its line numbers from this count.
        lines = _count_lines(buffer)
        yield line, buffer, lines
        line += lines
        buffer = bytearray(view[cut:])
    if stream.broken:
        cut = buffer.rfind(b"\n") + 1
        if cut:
            yield line, buffer[:cut], _count_lines(buffer, cut)
        stream.tail = bytes(buffer[cut:])
    elif buffer:
        yield line, buffer, _count_lines(buffer) + (0 if buffer.endswith(b"\n") else 1)


def _count_lines(data: bytearray, end: int | None = None) -> int:
    """Line ends in ``data[:end]`` (numpy: a few times faster than bytes.count, and without the GIL)."""
    return int(np.count_nonzero(np.frombuffer(data, np.uint8, count=len(data) if end is None else end) == 10))


# --- parsing -----------------------------------------------------------------------------------------


@dataclass
class _Rows:
    """Rows of one block as string columns, with their line numbers."""

    columns: list[pa.Array]
    lines: pa.Array  # int64


@dataclass
class _Block:
    """A block parsed and cast, not yet recorded (``_FlatFileParser._record``)."""

    rows: pa.RecordBatch  # typed, in line order
    quarantined: list[tuple[int, str, bytes]]  # rows: (line, reason, raw bytes)
    failures: list[tuple[int, str, str, str]]  # values: (line, column, reason, text)


class _FlatFileParser:
    """One document. ``items`` (parsing thread, fed by ``_decoded`` in the decoding thread) yields
    ("schema", schema), then ("", rows), ("summary", rows) and ("quarantine", batch); ``finish``
    (calling thread) turns rows into a typed batch. Each attribute is written by one thread only;
    the counts are read once the items are exhausted."""

    def __init__(
        self,
        lake,
        path: str,
        report: ReportType,
        marketplace_id: str | None,
        charset: str | None,
        extra_columns: dict[str, str],
    ):
        self.lake, self.path, self.report = lake, path, report
        self.marketplace_id = marketplace_id
        self.locale = Locale.for_marketplace(marketplace_id)
        self.encoding = EncodingChoice(charset, marketplace_id)
        self.quarantine = QuarantineRecords(
            extra_columns.get("report_id"), report.report_type, marketplace_id, extra_columns.get("selling_partner_id")
        )
        fallback_date = extra_columns.pop(REPORT_DATE_COLUMN, None)
        self.fallback_date = _as_date(fallback_date, path)
        self.extras = extra_columns
        self._constants: dict[str, pa.Array] = {}  # by the parsing thread only
        self.compressed = False
        self.broken: str | None = None  # why the gzip stream broke, if it did
        self.tail = b""  # the partial line the break cut
        self.rows_read = 0
        self.names: list[str] = []
        self.source_columns: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self.schema: pa.Schema | None = None
        self.date_column: str | None = None
        self.summary_pending = report.summary_first_row

    # -- the document

    def items(self) -> Generator[tuple[str, Any], None, None]:
        # Decoding (Python codecs hold the GIL) runs a block ahead in a thread of its own, so that it
        # overlaps with pyarrow's parsing here and the writing in the caller's thread. A second parsing
        # thread is no faster on two cores and holds more blocks in memory (docs/benchmarks.md).
        for kind, payload in _in_background(self._decoded):
            if kind == "block":
                yield from self._record(self._parse_block(*payload))
            else:
                yield kind, payload
        if self.broken:
            self._break()
        batch = self.quarantine.take()
        if batch is not None:
            yield "quarantine", batch

    def _decoded(self) -> Generator[tuple[str, Any], None, None]:
        """("schema", schema) once the header is found, then ("block", what ``_parse_block`` parses)."""
        with self.lake.open_input(self.path) as raw:
            stream = _Stream(raw)
            first = True
            for first_line, block, n_lines in _blocks(stream, self.path):
                if first:
                    block = block[self.encoding.start(block) :]
                    first = False
                yield from self._block(first_line, block, n_lines)
            self.compressed, self.broken, self.tail = stream.compressed, stream.broken, stream.tail

    def _break(self) -> None:
        """The stream broke: one quarantined row stands for the line it cut (see the module docstring)."""
        if self.schema is None:
            raise DocumentParseError(f"{self.broken} before the header line was complete", path=self.path)
        line = self._next_line
        self.quarantine.row(line, f"document truncated after line {line - 1}: {self.broken}", self.tail)
        self.rows_read += 1
        self.summary_pending = False

    def _block(self, first_line: int, block: bytes | bytearray, n_lines: int) -> Iterator[tuple[str, Any]]:
        if not self.encoding.decided and not block.isascii():
            self.encoding.decide(block)
        decoded = decode_block(block, self.encoding)
        data = decoded.data
        original = _OriginalLines(block, first_line)
        bad = {first_line + index: (reason, raw) for index, reason, raw in decoded.bad}
        self._next_line = first_line + n_lines
        if self.schema is None:
            data, first_line = self._take_header(data, first_line, bad)
            if self.schema is None:
                return
            yield "schema", self.schema
        if self._next_line == first_line:  # nothing after the header in this block
            return
        yield "block", (data, first_line, self._next_line - first_line, bad, original)

    def _take_header(self, data: bytes | bytearray, line: int, bad: dict) -> tuple[bytes | bytearray, int]:
        """Find the header (the first non-blank line) at the start of ``data``; returns what follows it."""
        pos = 0
        while pos < len(data):
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            if line in bad:
                raise DocumentParseError(f"the header line is not decodable: {bad[line][0]}", path=self.path, line=line)
            text = data[pos:end]
            if text.strip(b"\t\r"):  # blank: nothing but tabs and \r, as for data lines
                self._set_header(text.decode("utf-8"))
                return data[end + 1 :], line + 1
            pos, line = end + 1, line + 1
        return b"", line

    def _set_header(self, text: str) -> None:
        written = text.removesuffix("\r").split("\t")
        while len(written) > 1 and not written[-1].strip():  # trailing tabs
            written.pop()
        written[0] = written[0].lstrip("\ufeff")
        aliases = self.report.header_aliases
        canonical = [aliases.get(w.strip().lstrip("\ufeff"), w.strip()) for w in written]
        system = [*self.extras, REPORT_DATE_COLUMN, SOURCE_LINE_COLUMN]
        self.names = normalise_columns(canonical, reserved=set(system))
        self.source_columns = dict(zip(self.names, written, strict=True))
        declared = {snake_case(name): kind for name, kind in self.report.columns.items()}
        self.kinds = {name: declared.get(name, "string") for name in self.names}
        if self.report.date_column and snake_case(self.report.date_column) in self.names:
            self.date_column = snake_case(self.report.date_column)
        elif self.report.date_column:
            log.warning("%s: date column %r is not in the header", self.path, self.report.date_column)
        fields = [pa.field(name, ARROW_TYPES[self.kinds[name]]) for name in self.names]
        fields += [pa.field(name, pa.string()) for name in self.extras]
        fields += [pa.field(REPORT_DATE_COLUMN, pa.date32()), pa.field(SOURCE_LINE_COLUMN, pa.int64())]
        metadata = {SOURCE_COLUMNS_KEY: json.dumps(self.source_columns, ensure_ascii=False)}
        self.schema = pa.schema(fields, metadata=metadata)

    # -- rows of one block

    def _parse_block(
        self, data: bytes | bytearray, first_line: int, n_lines: int, bad: dict, original: _OriginalLines
    ) -> _Block:
        """A decoded block's rows, parsed and cast; nothing recorded yet (``_record``)."""
        n = len(self.names)
        # Undecodable lines (blanked by decoding): quarantined with their raw bytes.
        quarantined = [(line, *bad[line]) for line in bad if line >= first_line]
        # Lines pyarrow must not see: a leading BOM (it would drop it) or a lone \r (it would end the
        # line there, which shows as more lines than counted). They are blanked out, like undecodable
        # lines, and parsed in Python with the rows pyarrow rejects.
        odd: dict[int, str] = {}
        if data.startswith(UTF8_BOM):
            data, odd = _take_odd_lines(data, first_line)
        parsed = self._parse(data, first_line, n_lines, n)
        if parsed is None:
            data, more = _take_odd_lines(data, first_line)
            odd.update(more)
            parsed = self._parse(data, first_line, n_lines, n)
            if parsed is None:  # never seen; would misnumber every row
                raise DocumentParseError("the CSV parser miscounts the lines", path=self.path, line=first_line)
        rows, rejected, too_long = parsed
        # Rows pyarrow rejected (ragged) and the odd lines, in Python; a blanked undecodable line that
        # pyarrow rejected is already quarantined.
        apart = {line: text for line, text in rejected.items() if line not in bad} | odd
        if apart:
            repaired, long_repaired = _repair(apart, n)
            rows = _merge(rows, repaired)
            too_long += long_repaired
        quarantined += [(line, f"{fields} fields, header has {n}", original.line(line)) for line, fields in too_long]
        typed, failures = self.finish(rows)
        return _Block(typed, quarantined, failures)

    def _record(self, block: _Block) -> Iterator[tuple[str, Any]]:
        """Count and quarantine a parsed block's rows, in document order; its typed rows by table."""
        for line, reason, raw in block.quarantined:
            self.quarantine.row(line, reason, raw)
        for line, name, reason, text in block.failures:
            self.quarantine.value(line, name, reason, text)
        rows = block.rows
        # Each non-blank line became a row or a quarantined row, exactly once (the tests count the lines
        # independently, from the raw bytes).
        self.rows_read += rows.num_rows + len(block.quarantined)
        if self.summary_pending and (rows.num_rows or block.quarantined):
            self.summary_pending = False
            lines = rows.column(SOURCE_LINE_COLUMN)
            first_row = lines[0].as_py() if rows.num_rows else None
            if first_row is not None and first_row < min((q[0] for q in block.quarantined), default=first_row + 1):
                yield SUMMARY_TABLE, rows.slice(0, 1)
                rows = rows.slice(1)
        if rows.num_rows:
            yield "", rows
        batch = self.quarantine.take()
        if batch is not None:
            yield "quarantine", batch

    def _parse(
        self, data: bytes | bytearray, first_line: int, n_lines: int, n: int
    ) -> tuple[_Rows, dict[int, str], list[tuple[int, int]]] | None:
        """pyarrow's CSV parser on ``n_lines`` whole lines.

        Returns (rows with the header's fields, blank lines dropped; rejected lines by number;
        [(line, fields)] of rows with extra non-empty fields), or None if pyarrow saw more lines (a
        lone \r)."""
        if data[:1] == b"\n" and not data.strip(b"\n"):  # only empty lines: nothing for pyarrow to parse
            return _Rows([pa.array([], pa.string())] * n, pa.array([], pa.int64())), {}, []
        width = _width(data, n)
        rejected: dict[int, str] = {}

        def reject(row) -> str:
            rejected[first_line + row.number - 1] = row.text
            return "skip"

        names = [f"f{i}" for i in range(width)]
        try:
            table = pacsv.read_csv(
                pa.BufferReader(data),
                read_options=pacsv.ReadOptions(
                    column_names=names,
                    block_size=len(data) + 1,  # one block, one batch
                    # Serial parsing is what makes pyarrow pass row numbers to the invalid-row handler;
                    # the parallelism comes from running the parser in its own thread.
                    use_threads=False,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter="\t",
                    quote_char=False,
                    escape_char=False,
                    newlines_in_values=False,
                    # Blank lines become rows of nulls (dropped below) so that row numbers stay line numbers.
                    ignore_empty_lines=False,
                    invalid_row_handler=reject,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in names},
                    strings_can_be_null=True,
                    null_values=[""],
                    check_utf8=False,  # transcoded and validated already
                ),
            )
        except pa.ArrowInvalid as e:
            raise DocumentParseError(f"unparseable block: {e}", path=self.path, line=first_line) from e
        if table.num_rows + len(rejected) != n_lines:
            return None
        columns = [c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in table.columns]
        lines = np.arange(first_line, first_line + n_lines, dtype=np.int64)
        if rejected:
            lines = lines[~np.isin(lines, np.fromiter(rejected, dtype=np.int64, count=len(rejected)))]
        lines = pa.array(lines)
        if columns[0].null_count:  # blank lines are rows of nulls: cheap to rule out on the first column
            keep = pc.invert(_all_null(columns))
            if not pc.all(keep).as_py():
                columns = [c.filter(keep) for c in columns]
                lines = lines.filter(keep)
        too_long: list[tuple[int, int]] = []
        if width > n:  # trailing-tab layout: the extra fields must be empty, else the row is too long
            extra = pc.invert(_all_null(columns[n:]))
            if pc.any(extra).as_py():
                too_long = [(line, width) for line in lines.filter(extra).to_pylist()]
                keep = pc.invert(extra)
                columns = [c.filter(keep) for c in columns]
                lines = lines.filter(keep)
        return _Rows(columns[:n], lines), rejected, too_long

    def finish(self, rows: _Rows) -> tuple[pa.RecordBatch, list[tuple[int, str, str, str]]]:
        """Cast the declared columns, add the system columns: (typed batch, [(line, column, reason,
        text)] of the values that failed their cast, null in the batch)."""
        arrays: list[pa.Array] = []
        lines = rows.lines
        line_list: list[int] | None = None
        failed: list[tuple[int, str, str, str]] = []
        for name, values in zip(self.names, rows.columns, strict=True):
            kind = self.kinds[name]
            if kind == "string":
                arrays.append(values)
                continue
            typed, failures = cast_column(values, kind, self.locale, empty_is_null=True)
            if failures:
                line_list = line_list or lines.to_pylist()
                raw = values.take(pa.array([i for i, _ in failures], pa.int64())).to_pylist()
                failed += [
                    (line_list[index], name, reason, text) for (index, reason), text in zip(failures, raw, strict=True)
                ]
            arrays.append(typed)
        count = len(lines)
        arrays += [self._constant(name, count) for name in self.extras]
        arrays.append(self._report_dates(arrays, count))
        arrays.append(lines)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema), failed

    def _constant(self, name: str, count: int) -> pa.Array:
        """``extras[name]`` repeated ``count`` times: a slice of one array made for the largest block, not
        a new one per block (repeating a 60-character marketplace list cost ~0.3 CPU s per GB)."""
        cached = self._constants.get(name)
        if cached is None or len(cached) < count:
            cached = self._constants[name] = pa.repeat(pa.scalar(self.extras[name], pa.string()), max(count, 1 << 14))
        return cached.slice(0, count)

    def _report_dates(self, arrays: list[pa.Array], count: int) -> pa.Array:
        fallback = pa.scalar(self.fallback_date, pa.date32())
        if self.date_column is None:
            return pa.repeat(fallback, count)
        values = arrays[self.names.index(self.date_column)]
        dates = to_report_dates(values, self.kinds[self.date_column], self.locale)
        return pc.fill_null(dates, fallback) if self.fallback_date is not None else dates


def _as_date(value: str | None, path: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ValueError(f"{path}: extra_columns['report_date'] must be YYYY-MM-DD, got {value!r}") from None


class _OriginalLines:
    """A block's lines as they were before decoding (raw bytes for quarantine records), split on demand."""

    def __init__(self, block: bytes | bytearray, first_line: int):
        self._block, self._first = block, first_line
        self._lines: Sequence[bytes | bytearray] | None = None

    def line(self, number: int) -> bytes | bytearray:
        if self._lines is None:
            self._lines = self._block.split(b"\n")
        raw = self._lines[number - self._first]
        return raw[:-1] if raw.endswith(b"\r") else raw


def _width(data: bytes | bytearray, n: int) -> int:
    """Fields per row to parse with: the header's, or more when the first row has trailing tabs.

    Amazon writes some reports with a tab after every row; parsing those with one extra (empty)
    column keeps them on pyarrow's fast path instead of the invalid-row handler."""
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).removesuffix(b"\r")
    fields = first.count(b"\t") + 1
    if fields > n and not first.split(b"\t", n)[-1].strip(b"\t"):
        return fields
    return n


def _all_null(columns: list[pa.Array]) -> pa.Array:
    mask = pc.is_null(columns[0])
    for column in columns[1:]:
        mask = pc.and_(mask, pc.is_null(column))
    return mask


def _take_odd_lines(data: bytes | bytearray, first_line: int) -> tuple[bytes, dict[int, str]]:
    """Blank out the lines pyarrow would misread (a lone \\r, a leading BOM); returns them by line number."""
    lines: list[bytes | bytearray] = list(data.split(b"\n"))
    odd: dict[int, str] = {}
    for index, line in enumerate(lines):
        body = line.removesuffix(b"\r")
        if b"\r" in body or (index == 0 and body.startswith(UTF8_BOM)):
            odd[first_line + index] = body.decode("utf-8")
            lines[index] = BLANKED
    return b"\n".join(lines), odd


def _repair(rejected: dict[int, str], n: int) -> tuple[_Rows, list[tuple[int, int]]]:
    """Rows pyarrow rejected (field count differs from the header) or did not see, fixed in Python.

    Returns (rows, [(line, field count)] of rows that are too long); blank lines are dropped."""
    lines: list[int] = []
    values: list[list[str | None]] = []
    too_long: list[tuple[int, int]] = []
    for line in sorted(rejected):
        text = rejected[line].removesuffix("\r")
        if not text.strip("\t\r"):
            continue
        fields: list[str | None] = [f or None for f in text.split("\t")]
        if len(fields) > n:
            if any(fields[n:]):
                too_long.append((line, len(fields)))
                continue
            fields = fields[:n]
        lines.append(line)
        values.append(fields + [None] * (n - len(fields)))
    columns = [pa.array([row[i] for row in values], pa.string()) for i in range(n)]
    return _Rows(columns, pa.array(lines, pa.int64())), too_long


def _merge(a: _Rows, b: _Rows) -> _Rows:
    """Both sets of rows, in line order."""
    if not len(b.lines):
        return a
    lines = pa.concat_arrays([a.lines, b.lines])
    order = pc.sort_indices(lines)
    columns = [pa.concat_arrays([x, y]).take(order) for x, y in zip(a.columns, b.columns, strict=True)]
    return _Rows(columns, lines.take(order))


# --- a worker thread ---------------------------------------------------------------------------------


def _in_background(produce: Callable[[], Generator[Any, None, None]], depth: int = 2) -> Iterator[Any]:
    """Iterate ``produce()`` in a worker thread, ``depth`` items ahead of the consumer.

    pyarrow releases the GIL while parsing, casting and encoding Parquet, so a parser thread and the
    writing thread use two cores. The worker's exceptions are re-raised in the consumer.
    """
    return in_background(produce, depth=depth, name="sp-reports-parse")
