"""Transitional: the first flat-file parser (all columns strings, strict: a bad line raises).

Kept, unchanged in behaviour, for ``sp_reports.pipeline`` and the lake tests until they move to
``sp_reports.parsing.parse_document`` (``sp_reports.landing``); delete it then.

Amazon flat-file reports (tab-separated text) -> Parquet files in the staging zone.

The document is streamed with bounded memory: raw bytes -> gunzip (detected by magic bytes) -> strict
decoding (pyarrow transcodes non-UTF-8 charsets with the Python codec) -> pyarrow's streaming CSV
parser -> Parquet row groups. Parsing runs in a worker thread so that it overlaps with Parquet encoding.

Amazon flat files: the first line is the header; fields are separated by tabs and never quoted (a ``"``
is data); lines end in ``\\n`` or ``\\r\\n``. All columns are kept as strings.
"""

from __future__ import annotations

import codecs
import json
import logging
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sp_reports.lake.paths import join_path

from .encoding import codec_for_label
from .flatfile import _in_background, normalise_columns
from .names import snake_case
from .result import STAGING_PARQUET as _STAGING_PARQUET
from .result import SOURCE_COLUMNS_KEY, DocumentParseError

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 100_000  # rows per Parquet row group
DEFAULT_FILE_ROWS = 5_000_000  # rows per staging file
REPORT_DATE_COLUMN = "report_date"

_READ_CHUNK = 1 << 20  # bytes per read when decoding in Python (header, error location)
# Bytes per pyarrow CSV block (one record batch per block). pyarrow reads dozens of blocks ahead, so
# this sets the parser's memory (~40 MB at 1 MiB); larger blocks are not faster.
_CSV_BLOCK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ParseResult:
    files: list[str]  # lake paths of the staging Parquet files, in document order
    rows: int
    columns: list[str]  # output columns: normalised header names, then extra columns, then report_date
    source_columns: dict[str, str] = field(default_factory=dict)  # normalised -> original header name
    codec: str = "utf-8"  # Python codec used to decode
    compressed: bool = False  # gzip detected by magic bytes
    padded_rows: int = 0  # rows with fewer fields than the header, padded with nulls


def python_codec(charset: str | None) -> str:
    """Python codec for Amazon's charset label (``None`` means UTF-8)."""
    codec, problem = codec_for_label(charset)
    if problem:
        raise DocumentParseError(problem)
    return codec or "utf-8"


def parse_flat_file(
    lake,
    raw_path: str,
    out_dir: str,
    *,
    charset: str | None,
    compressed: bool | None = None,
    extra_columns: Mapping[str, str] | None = None,
    date_column: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    file_rows: int = DEFAULT_FILE_ROWS,
) -> ParseResult:
    """Stream the flat file at ``raw_path`` into Parquet files under ``out_dir`` (e.g. ``staging/...``).

    ``compressed`` is only a hint: gzip is detected by its magic bytes. ``extra_columns`` are added as
    constant string columns (e.g. ``report_id``, ``marketplace_id``). With ``date_column`` (original or
    normalised header name) a ``report_date`` column (``YYYY-MM-DD`` or null) is derived from it.
    Raises ``DocumentParseError`` on undecodable bytes, a truncated/corrupt gzip stream or a row with
    more fields than the header; rows with fewer fields are padded with nulls. On error, no staging
    file is left behind.
    """
    out_dir = join_path(out_dir)
    if not out_dir.startswith("staging/"):
        raise ValueError(f"out_dir must be in the staging zone, got {out_dir!r}")
    codec = python_codec(charset)
    with lake.open_input(raw_path) as raw:
        probe = _Document(raw, codec, raw_path)
        header = probe.header()
    is_gzip = bool(probe.compressed)
    if compressed is not None and compressed != is_gzip:
        log.info("%s: compressed=%s was hinted but the magic bytes say %s", raw_path, compressed, is_gzip)
    if header is None:  # empty document: nothing to stage
        return ParseResult([], 0, [], {}, codec, is_gzip, 0)

    original = header.split("\t")
    names = normalise_columns(original)
    output = _OutputSchema(names, original, dict(extra_columns or {}), date_column, raw_path)
    repair = _RowRepair(len(names), raw_path)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from parsed()
        except (pa.ArrowInvalid, UnicodeError, OSError) as e:
            # pyarrow reports undecodable bytes, truncated gzip and ragged rows without a reliable line
            # number: name the line (re-reading the document in Python, only on this failure path).
            repair.raise_recorded()
            _locate_error(lake, raw_path, codec)
            if isinstance(e, OSError):
                raise  # the document itself reads fine: a storage error, not a parse error
            raise DocumentParseError(f"{type(e).__name__}: {e}", path=raw_path) from e

    def parsed() -> Iterator[pa.RecordBatch]:
        with lake.open_input(raw_path) as raw:
            # The fast path is all native: pyarrow gunzips, transcodes (via the Python codec) and parses.
            reader = pacsv.open_csv(
                pa.CompressedInputStream(raw, "gzip") if is_gzip else raw,
                read_options=pacsv.ReadOptions(
                    column_names=names,
                    skip_rows=1,
                    block_size=_CSV_BLOCK,
                    encoding=codec,
                    # Serial parsing is what makes pyarrow pass row numbers to the invalid-row handler;
                    # the parallelism comes from running this generator in its own thread.
                    use_threads=False,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter="\t",
                    quote_char=False,
                    escape_char=False,
                    newlines_in_values=False,
                    # Blank lines become rows of empty strings (dropped below) so that row numbers stay
                    # line numbers.
                    ignore_empty_lines=False,
                    invalid_row_handler=repair,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in names}, strings_can_be_null=False
                ),
            )
            for batch in reader:
                batch = _drop_blank_lines(batch)
                if batch.num_rows:
                    yield output.finish(batch)
                padded = repair.take_padded()
                if padded is not None:
                    yield output.finish(padded)

    background = _in_background(batches)
    try:
        files, rows = _write_staging(lake, out_dir, output.schema, background, batch_rows, file_rows)
    finally:
        background.close()  # stops the parser thread if writing failed
    return ParseResult(
        files=files,
        rows=rows,
        columns=output.schema.names,
        source_columns=dict(zip(names, original)),
        codec=codec,
        compressed=is_gzip,
        padded_rows=repair.padded,
    )


class _Document:
    """A raw document decompressed (gzip detected by magic bytes) and strictly decoded in Python.

    Used to read the header and, after a failure of the native path, to name the offending line;
    it counts lines so that decoding and gzip errors carry their line number.
    """

    def __init__(self, raw: pa.NativeFile, codec: str, path: str):
        self._raw, self._codec, self._path = raw, codec, path
        self._lines = 0  # newlines decoded so far
        self.compressed: bool | None = None  # known once reading started

    def _error(self, message: str, newlines_before: int = 0) -> DocumentParseError:
        return DocumentParseError(message, path=self._path, line=self._lines + newlines_before + 1)

    def _chunks(self) -> Iterator[bytes]:
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
                        raise self._error("truncated gzip stream: the document ends before the gzip trailer")
                    return
            if inflater.eof:  # another gzip member follows (concatenated gzip is valid gzip)
                inflater = zlib.decompressobj(wbits=31)
            try:
                # max_length bounds the output when the input is extremely compressible.
                out = inflater.decompress(data, 4 * _READ_CHUNK)
            except zlib.error as e:
                raise self._error(f"corrupt gzip stream: {e}") from None
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if out:
                yield out

    def texts(self) -> Iterator[str]:
        """The document as text, chunk by chunk."""
        decoder = codecs.getincrementaldecoder(self._codec)("strict")
        try:
            for chunk in self._chunks():
                yield decoder.decode(chunk)
                self._lines += chunk.count(b"\n")
            yield decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            # A decoder's pending bytes (a split character) never hold a newline, so newlines in
            # e.object before the error are newlines of this chunk.
            raise self._error(
                f"bytes {e.object[e.start : e.end]!r} are not valid {self._codec} ({e.reason})",
                e.object[: e.start].count(b"\n"),
            ) from None

    def header(self) -> str | None:
        """The first line; None for an empty (or all blank) document."""
        parts: list[str] = []
        for text in self.texts():
            parts.append(text)
            if "\n" in text:
                break
        start = "".join(parts)
        first = start.partition("\n")[0].lstrip("\ufeff").rstrip("\r")
        if first.strip():
            return first
        if start.strip():
            raise DocumentParseError("the header line is blank", path=self._path, line=1)
        return None


def _locate_error(lake, raw_path: str, codec: str) -> None:
    """Re-read the whole document in Python; raises its decoding/gzip error with the line number."""
    with lake.open_input(raw_path) as raw:
        for _ in _Document(raw, codec, raw_path).texts():
            pass


class _RowRepair:
    """pyarrow invalid-row handler: keeps short rows (to pad with nulls) and records the first long row."""

    def __init__(self, n_columns: int, path: str):
        self._n, self._path = n_columns, path
        self._short: list[list[str | None]] = []
        self._long: tuple[int | None, int] | None = None
        self.padded = 0

    def __call__(self, row) -> str:
        if row.actual_columns > self._n:
            # Raising here would be swallowed by pyarrow; record the row and let pyarrow stop with an error.
            self._long = (row.number, row.actual_columns)
            return "error"
        values: list[str | None] = list(row.text.rstrip("\r").split("\t"))
        self._short.append(values + [None] * (self._n - len(values)))
        self.padded += 1
        return "skip"

    def raise_recorded(self) -> None:
        if self._long is not None:
            line, fields = self._long
            raise DocumentParseError(f"row has {fields} fields but the header has {self._n}", path=self._path, line=line)

    def take_padded(self) -> pa.RecordBatch | None:
        """Short rows seen since the last call, as a batch (they follow the block they were found in)."""
        if not self._short:
            return None
        rows, self._short = self._short, []
        columns = [pa.array([r[i] for r in rows], pa.string()) for i in range(self._n)]
        return pa.RecordBatch.from_arrays(columns, names=[f"c{i}" for i in range(self._n)])


class _OutputSchema:
    """Staging schema (header columns, extra constant columns, report_date) and the per-batch transform."""

    def __init__(
        self, names: list[str], original: list[str], extras: dict[str, str], date_column: str | None, path: str
    ):
        self._extras = extras
        self._date_index: int | None = None
        if date_column is not None:
            wanted = snake_case(date_column)
            if wanted not in names:
                raise DocumentParseError(f"date column {date_column!r} is not in the header", path=path, line=1)
            self._date_index = names.index(wanted)
        added = list(extras) + ([REPORT_DATE_COLUMN] if date_column is not None else [])
        clash = sorted(set(added) & set(names))
        if clash:
            raise DocumentParseError(f"added columns {clash} clash with the document's own columns", path=path, line=1)
        metadata = {SOURCE_COLUMNS_KEY: json.dumps(dict(zip(names, original)), ensure_ascii=False)}
        self.schema = pa.schema([pa.field(n, pa.string()) for n in names + added], metadata=metadata)

    def finish(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        n = batch.num_rows
        arrays = list(batch.columns)
        arrays += [pa.repeat(pa.scalar(value, pa.string()), n) for value in self._extras.values()]
        if self._date_index is not None:
            arrays.append(report_dates(batch.column(self._date_index)))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _drop_blank_lines(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Drop rows whose fields are all empty (blank lines); cheap unless the first column has empty values."""
    if not pc.any(pc.equal(pc.binary_length(batch.column(0)), 0)).as_py():
        return batch
    lengths = [pc.binary_length(column) for column in batch.columns]
    return batch.filter(pc.greater(pc.max_element_wise(*lengths), 0))


def report_dates(values: pa.Array) -> pa.Array:
    """``YYYY-MM-DD`` from values starting with ``YYYY-MM-DD`` or ``YYYY/MM/DD``; null otherwise."""
    looks_like_date = pc.match_substring_regex(values, r"^\d{4}[-/]\d{2}[-/]\d{2}")
    head = pc.replace_substring(pc.utf8_slice_codeunits(values, 0, 10), "/", "-")
    return pc.if_else(looks_like_date, head, pa.scalar(None, pa.string()))


def _write_staging(
    lake,
    out_dir: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    batch_rows: int,
    file_rows: int,
) -> tuple[list[str], int]:
    """Write batches as row groups of ~batch_rows rows into files of ~file_rows rows (rolled between batches)."""
    batches = iter(batches)
    prefix = uuid.uuid4().hex[:12]  # unique per parse, so a re-parse never collides with old files
    files: list[str] = []
    total = 0
    try:
        batch = next(batches, None)
        while True:  # one file per iteration; a header-only document still gets one (empty) file
            path = join_path(out_dir, f"part-{prefix}-{len(files):05d}.parquet")
            in_file = 0
            with lake.open_output(path) as sink, pq.ParquetWriter(sink, schema, **_STAGING_PARQUET) as writer:
                pending: list[pa.RecordBatch] = []
                pending_rows = 0
                while batch is not None and in_file < file_rows:
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    in_file += batch.num_rows
                    if pending_rows >= batch_rows:
                        writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=batch_rows)
                        pending, pending_rows = [], 0
                    batch = next(batches, None)
                if pending:
                    writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=batch_rows)
            files.append(path)
            total += in_file
            if batch is None:
                break
    except BaseException:
        for path in files:
            lake.delete(path)
        raise
    return files, total
