"""JSON reports (e.g. GET_SALES_AND_TRAFFIC_REPORT) -> staging Parquet, one table per record array.

Amazon's JSON reports are one object whose top-level arrays hold the records, e.g. the
``sellerSalesAndTrafficReport`` schema::

    {"reportSpecification": {...},
     "salesAndTrafficByDate": [{"date": "2026-11-20", "salesByDate": {"orderedProductSales":
                                {"amount": 12.5, "currencyCode": "USD"}, "unitsOrdered": 3, ...}, ...}, ...],
     "salesAndTrafficByAsin": [{"parentAsin": "B0...", "salesByAsin": {...}, "trafficByAsin": {...}}, ...]}

Tables: ``report.records`` names the top-level arrays that hold records. ``records[0]`` lands in
``tables[""]``, every other one in ``tables[snake_case(name)]`` (``tables["sales_and_traffic_by_asin"]``).
Each array element (an object) is one row. Nested objects are flattened into columns named by their
path, each key in snake_case, joined with ``_``: ``salesByDate.orderedProductSales.amount`` ->
``sales_by_date_ordered_product_sales_amount``. A nested array inside a record lands as one string
column holding the array as JSON text (``[{"a":1},{"a":2}]``): its elements have no row of their
own. Other top-level members (``reportSpecification``) are skipped, as are arrays not named in
``records``; an array named in ``records`` but absent from the document gives an empty table.

Types: JSON values keep their JSON type (integers int64, other numbers float64, booleans, strings),
except keys named ``amount`` or ending in ``Amount`` (Amazon's Amount/Money objects), which are
decimal128(20, 4) so that money is exact (numbers are read as decimals, never through binary floating
point); types declared in
``report.columns`` (matched on the snake_case name) override, and a value that fails its cast lands as
null and is quarantined. See ``records`` for the details (mixed kinds -> string).

Accounting: ``rows_read`` = elements of ``records[0]`` + every row quarantined in any array (a
record that is not an object, a record missing a natural key, the break of a malformed document);
``rows_parsed`` = rows landed in ``tables[""]``; so ``rows_read == rows_parsed + rows_quarantined``.
``report.natural_keys`` are checked on ``records[0]`` elements (top-level keys).
``source_line`` and the quarantine ``line`` are the 1-based index of the element in its array.

Streaming (ijson is not a dependency): the decompressed text is read in chunks into a sliding buffer
and scanned with a small tokenizer for the document's structure; each array element is decoded by
the standard library's C-accelerated ``json`` decoder on its own, then dropped. Memory holds one
element (plus a read chunk), never the document; a single huge element is read whole (up to
``MAX_RECORD_CHARS``). ``records`` explains how the schema is collected.

Encoding: JSON is UTF-8 (RFC 8259). A byte order mark (UTF-8/16/32) is honoured; otherwise UTF-8,
unless the document's first bytes are not UTF-8 while the Content-Type charset decodes them (then
that charset). Decoding is strict.

Errors: a document that breaks after its top-level ``{`` (malformed JSON, undecodable bytes, a
truncated file or gzip stream, data after the top-level object) keeps the records before the break;
the break is quarantined as one row record and nothing after it is read. A document whose top level
is not an object raises ``DocumentParseError``; an empty document has no records.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Unpack

from sp_reports.columns import snake_case
from sp_reports.lake.storage import Lake
from sp_reports.payloads import ParseResult
from sp_reports.registry import ReportType

from .records import Item, ItemSource, Path, TextBreak, decoded_text, python_codec, sniff_bom, stage_items
from .result import DocumentParseError, ParseOptions

MAX_RECORD_CHARS = 64 * 1024 * 1024  # a single array element larger than this is a malformed document
_COMPACT_AT = 1 << 20  # drop consumed text from the buffer once this much has been consumed
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(parse_float=Decimal)
# Incomplete input (not malformed): how close to the end of the buffer an error may be.
_INCOMPLETE_MARGIN = 64


def parse_json(lake: Lake, raw_path: str, out_dir: str, **options: Unpack[ParseOptions]) -> ParseResult:
    """Stream the JSON document at ``raw_path`` into typed staging Parquet under ``out_dir``."""
    report, charset = options["report"], options["charset"]
    if not report.records:
        raise ValueError(f"{report.report_type}: JSON reports need records (the arrays that become tables)")

    def open_items() -> _JsonItems:
        return _JsonItems(lake, raw_path, report, charset)

    return stage_items(lake, out_dir, open_items, report=report, marketplace_id=options["marketplace_id"],
                      extra_columns=options["extra_columns"], separator=".",
                      tables=[""] + [snake_case(name) for name in report.records[1:]])  # fmt: skip


class _Scanner:
    """A sliding window over the document's text with just enough tokenizing for its structure."""

    def __init__(self, chunks: Iterator[str]):
        self._chunks = chunks
        self.buf = ""
        self.pos = 0
        self.consumed = 0  # characters dropped from the front of buf
        self.eof = False
        self.broken: TextBreak | None = None  # the text ends early because of this

    def _more(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self.eof = True
            return False
        except TextBreak as e:  # the good text before the break, then the end
            self.broken, self.eof = e, True
            chunk = e.good
        if self.pos >= _COMPACT_AT:
            self.buf = self.buf[self.pos :]
            self.consumed += self.pos
            self.pos = 0
        self.buf += chunk
        return True

    def elements(self, close: str, between: str) -> Iterator[None]:
        """Just after an opening bracket: once per member or element (the caller reads it), with the commas
        between them consumed, until the closing bracket ``close``, which is consumed too."""
        first = True
        while self.peek() != close:
            if not first:
                self.expect(",", between)
            first = False
            yield
        self.pos += 1

    def fail(self, reason: str) -> TextBreak:
        """The break to report: a decoding/gzip break that ended the text early wins over its symptom."""
        if self.broken is not None:
            return self.broken
        near = self.buf[max(0, self.pos - 100) : self.pos + 100]
        return TextBreak(f"{reason} at character {self.consumed + self.pos} of the document", near.encode("utf-8"))

    def peek(self) -> str | None:
        """The next non-whitespace character (not consumed), None at the end."""
        while True:
            blank = _WHITESPACE.match(self.buf, self.pos)
            if blank is None:  # a pattern of ``*`` matches everywhere
                raise AssertionError("the whitespace pattern did not match")
            self.pos = blank.end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return None

    def expect(self, chars: str, what: str) -> str:
        char = self.peek()
        if char is None:
            raise self.fail(f"truncated document: expected {what}, found the end")
        if char not in chars:
            raise self.fail(f"malformed JSON: expected {what}, found {char!r}")
        self.pos += 1
        return char

    def value(self) -> tuple[Any, str]:
        """The next JSON value and its text."""
        if self.peek() is None:
            raise self.fail("truncated document: expected a value, found the end")
        start = self.pos
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, start)
            except json.JSONDecodeError as e:
                if not self.eof:
                    # Maybe the value just continues in the next chunk: read on, unless the error is
                    # well inside the text already read (then more text cannot help).
                    near_end = e.msg.startswith("Unterminated string") or e.pos >= len(self.buf) - _INCOMPLETE_MARGIN
                    if near_end and len(self.buf) - start < MAX_RECORD_CHARS:
                        start -= self.pos  # _more may drop consumed text: keep start relative to pos
                        self._more()
                        start += self.pos
                        continue
                if self.eof and _ends_early(e, self.buf):
                    self.pos = start
                    raise self.fail(f"truncated document: {e.msg}") from None
                self.pos = e.pos
                raise self.fail(f"malformed JSON: {e.msg}") from None
            if end == len(self.buf) and not self.eof and not isinstance(value, (dict, list, str)):
                # A number (or literal) at the end of the buffer may continue in the next chunk.
                start -= self.pos
                self._more()
                start += self.pos
                continue
            self.pos = end
            return value, self.buf[start:end]


class _JsonItems(ItemSource):
    def __init__(self, lake: Lake, raw_path: str, report: ReportType, charset: str | None):
        self.lake, self.raw_path, self.report, self.charset = lake, raw_path, report, charset
        self.arrays = {name: ("" if i == 0 else snake_case(name)) for i, name in enumerate(report.records)}
        self.main = report.records[0]
        self.keys = list(report.natural_keys)
        self.date_key: Path | None = (report.date_column,) if report.date_column else None
        self.encoding: dict[str, Any] = {"codec": "utf-8", "label": charset, "bom": False, "reason": "empty document"}
        self.compressed = False

    # -- text

    def _choose_codec(self, head: bytes) -> str:
        label = self.charset
        bom = sniff_bom(head)
        if bom:
            codec, name = bom
            self.encoding = {"codec": codec.replace("-sig", ""), "label": label, "bom": True,
                             "reason": f"{name} byte order mark"}  # fmt: skip
            return codec
        label_codec = python_codec(label) if label else None
        reason = "JSON is UTF-8 (RFC 8259)"
        if label_codec not in (None, "utf-8"):
            try:
                codecs.getincrementaldecoder("utf-8")("strict").decode(head, False)
            except UnicodeDecodeError:
                try:
                    codecs.getincrementaldecoder(label_codec)("strict").decode(head, False)
                except UnicodeDecodeError:
                    pass
                else:
                    self.encoding = {"codec": label_codec, "label": label, "bom": False,
                                     "reason": f"Content-Type charset {label}: the bytes are not UTF-8"}  # fmt: skip
                    return label_codec
            reason += f"; Content-Type charset {label} ignored"
        self.encoding = {"codec": "utf-8", "label": label, "bom": False, "reason": reason}
        return "utf-8"

    # -- structure

    def __iter__(self) -> Iterator[Item]:
        with self.lake.open_input(self.raw_path) as raw:
            scanner = _Scanner(decoded_text(self, raw))
            rows_before = 0  # items yielded: where a break lands when it is outside the arrays
            line, in_array = 0, False
            try:
                first = scanner.peek()
                if first is None:
                    if scanner.broken is not None:
                        raise DocumentParseError(scanner.broken.reason, path=self.raw_path)
                    return  # an empty document
                if first != "{":
                    raise DocumentParseError(
                        f"not a JSON object: the document starts with {first!r}", path=self.raw_path, line=1
                    )
                scanner.pos += 1
                for _ in scanner.elements("}", "',' or '}' after a member"):
                    key, _ = scanner.value()
                    if not isinstance(key, str):
                        raise scanner.fail("malformed JSON: object keys must be strings")
                    scanner.expect(":", "':' after a key")
                    if key in self.arrays and scanner.peek() == "[":
                        scanner.pos += 1
                        line, in_array = 0, True
                        for _ in scanner.elements("]", "',' or ']' between elements"):
                            value, text = scanner.value()
                            line += 1
                            rows_before += 1
                            item = self._item(key, line, value, text)
                            item.size = len(text)
                            yield item
                        in_array = False
                    else:
                        scanner.value()  # reportSpecification and the like
                if scanner.peek() is not None:
                    raise scanner.fail("malformed JSON: data after the top-level object")
                if scanner.broken is not None:
                    raise scanner.broken
            except TextBreak as e:
                # In an array: the element that broke; elsewhere: after everything read so far.
                yield Item(line=line + 1 if in_array else rows_before + 1, error=e.reason, raw=e.raw, is_break=True)

    def _item(self, array: str, line: int, value: Any, text: str) -> Item:
        table = self.arrays[array]
        main = array == self.main
        if not isinstance(value, dict):
            return Item(line=line, main=main, error=f"element {line} of {array} is not a JSON object",
                        raw=text[:4096].encode("utf-8"))  # fmt: skip
        row: dict[Path, Any] = {}
        _flatten(value, (), row)
        if main:
            missing = [k for k in self.keys if row.get((k,)) in (None, "")]
            if missing:
                return Item(line=line, main=main, error=f"element {line} of {array} has no {', '.join(missing)}",
                            raw=text[:4096].encode("utf-8"))  # fmt: skip
        date_value = row.get(self.date_key) if self.date_key else None
        return Item(line=line, rows=[(table, row)], main=main,
                    date_value=date_value if isinstance(date_value, str) else None)  # fmt: skip


_PARTIAL_LITERAL = re.compile(r"\s*(t|tr|tru|f|fa|fal|fals|n|nu|nul|-|[-\d.eE+]*[eE.+-])?\s*")


def _ends_early(error: json.JSONDecodeError, text: str) -> bool:
    """Whether a decoding error at the end of the text means the text stops early (not malformed)."""
    if error.msg.startswith("Unterminated string"):
        return True
    return bool(_PARTIAL_LITERAL.fullmatch(text, error.pos))


def _flatten(obj: dict, prefix: Path, row: dict[Path, Any]) -> None:
    for key, value in obj.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            _flatten(value, path, row)
        else:
            row[path] = value  # lists stay lists: written as JSON text
