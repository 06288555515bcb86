"""XML reports (e.g. GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL) -> staging Parquet, streamed.

Amazon's XML reports are an ``AmazonEnvelope`` of ``Message`` elements, each holding one record::

    <AmazonEnvelope><Header>..</Header><MessageType>AllOrdersReport</MessageType>
      <Message><MessageID>1</MessageID>
        <Order><AmazonOrderID>..</AmazonOrderID><PurchaseDate>..</PurchaseDate>
          <FulfillmentData><FulfillmentChannel>Amazon</FulfillmentChannel><Address><City>..</City>..</Address></FulfillmentData>
          <OrderItem><ASIN>..</ASIN><SKU>..</SKU><Quantity>1</Quantity>
            <ItemPrice><Component><Type>Principal</Type><Amount currency="USD">12.34</Amount></Component>..</ItemPrice>
          </OrderItem>..
        </Order></Message>..

Tables:
* ``tables[""]``: one row per record element, ``report.records[0]`` (e.g. ``Order``), wherever it sits
  in the document. Its leaf elements become columns named by their path below the record, each
  segment in snake_case, joined with ``_``: ``FulfillmentData/Address/City`` ->
  ``fulfillment_data_address_city``. An attribute becomes ``<element path>_<attribute>``.
* Child records: the elements named in ``report.records[1:]`` (for ``Order`` without such a list:
  ``OrderItem``) that are direct children of the record land as rows of their own table,
  ``tables[snake_case(name)]`` (``tables["order_item"]``), flattened the same way, carrying the parent's
  natural keys (``amazon_order_id``; ``order_amazon_order_id`` should the child have a column of that
  name), the parent's ``report_date`` and ``source_line``, and the system columns.
* Amazon's ``Type``/``Amount`` pairs (an element holding exactly a ``Type`` leaf and one other leaf,
  such as ``ItemPrice/Component``) are pivoted by type: ``item_price_principal_amount`` = 12.34 and
  ``item_price_principal_amount_currency`` = USD, one column pair per component type, instead of
  one unusable repeated column.
* A path that still repeats within one record keeps all its values, as a JSON array of strings.
* Empty elements are null. Comments, processing instructions and mixed-content text are ignored, as is
  everything outside the record elements (the envelope header).
Values are strings unless ``report.columns`` declares a type (matched on the snake_case name), in
which case they are cast like flat-file values (see ``types``); a failing value lands as null and is
quarantined.

Encoding: XML describes itself, so the Content-Type charset (often wrong at Amazon) is only used
when the document has neither a byte order mark nor an ``encoding`` in its XML declaration (RFC 7303
puts the Content-Type first; Amazon's labels do not deserve that). Order: BOM, XML declaration,
Content-Type charset, UTF-8. Labels are mapped as for flat files (``Shift_JIS`` -> cp932, which is
what Amazon JP really writes). Decoding is strict.

Streaming: the bytes are gunzipped (gzip detected by its magic bytes), decoded incrementally and fed
to lxml's pull parser; each record element is flattened when it ends and then removed from the tree,
so memory holds one record, not the document (``records`` explains how the schema is collected).

Errors: a document that breaks after its root element started (malformed XML, undecodable bytes, a
truncated file or gzip stream) keeps the records before the break; the break is quarantined as one
row record (``line`` = the index the next record would have had, ``reason`` says what and where,
``raw`` the bytes around it) and nothing after it is read. Only a document that is not XML at all
(nothing but whitespace before a syntax error, an unknown encoding) raises ``DocumentParseError``.
A record missing one of ``report.natural_keys`` (its direct child elements) is quarantined as a row,
with its child records; ``raw`` holds the record's XML.

Accounting: ``rows_read`` = record elements (+ the break), ``rows_parsed`` = rows of ``tables[""]``,
``rows_quarantined`` = quarantined records (+ the break); child rows are parts of their record and
are not counted. ``source_line`` and the quarantine ``line`` are record indexes (1-based).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any, Unpack

from lxml import etree

from sp_reports.columns import snake_case
from sp_reports.lake.storage import Lake
from sp_reports.payloads import ParseResult
from sp_reports.registry import ReportType

from .records import RAW_CONTEXT, Item, ItemSource, Path, TextBreak, decoded_text, python_codec, sniff_bom, stage_items
from .result import DocumentParseError, ParseOptions

# Child records of Amazon's XML record elements, for registry entries that name only the record.
DEFAULT_CHILD_RECORDS = {"Order": ("OrderItem",)}
_DECLARATION = re.compile(rb"""^\s*<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_FEED_BYTES = 64 * 1024
_START_TAG = re.compile(rb"<[A-Za-z_:]")


def parse_xml(lake: Lake, raw_path: str, out_dir: str, **options: Unpack[ParseOptions]) -> ParseResult:
    """Stream the XML document at ``raw_path`` into typed staging Parquet under ``out_dir``."""
    report, charset = options["report"], options["charset"]
    if not report.records:
        raise ValueError(f"{report.report_type}: XML reports need records (the record element)")
    record = report.records[0]
    children = tuple(report.records[1:]) or DEFAULT_CHILD_RECORDS.get(record, ())

    def open_items() -> _XmlItems:
        return _XmlItems(lake, raw_path, record, children, report, charset)

    return stage_items(lake, out_dir, open_items, report=report, marketplace_id=options["marketplace_id"],
                      extra_columns=options["extra_columns"], separator="/",
                      tables=[""] + [snake_case(name) for name in children])  # fmt: skip


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


class _Break(Exception):
    """The document breaks here: ``good`` is the UTF-8 text before the break, still to be parsed."""

    def __init__(self, reason: str, raw: bytes = b"", good: bytes = b""):
        super().__init__(reason)
        self.reason, self.raw, self.good = reason, raw, good


class _XmlItems(ItemSource):
    def __init__(self, lake: Lake, raw_path: str, record: str, children: tuple[str, ...], report: ReportType,
                 charset: str | None):  # fmt: skip
        self.lake, self.raw_path, self.record, self.children = lake, raw_path, record, frozenset(children)
        self.charset = charset
        self.keys: list[str] = list(report.natural_keys)
        self.key_paths: list[Path] = [(k,) for k in report.natural_keys]
        self.date_path: str | None = snake_case(report.date_column) if report.date_column else None
        self.encoding: dict[str, Any] = {"codec": "utf-8", "label": charset, "bom": False, "reason": "empty document"}
        self.compressed = False
        self._count = 0  # records seen
        self._root_started = False

    # -- decoding

    def _choose_codec(self, head: bytes) -> str:
        bom = sniff_bom(head)
        label = self.charset
        codec: str | None
        if bom:
            codec, name = bom
            self.encoding = {"codec": codec.replace("-sig", ""), "label": label, "bom": True,
                             "reason": f"{name} byte order mark"}  # fmt: skip
            return codec
        declared = _DECLARATION.match(head)
        if declared:
            name = declared.group(1).decode("ascii")
            codec = python_codec(name)
            if codec is None:
                raise DocumentParseError(
                    f"unknown encoding {name!r} in the XML declaration", path=self.raw_path, line=1
                )
            reason = f'XML declaration encoding="{name}"'
            label_codec = python_codec(label) if label else None
            if label and label_codec != codec:
                reason += f" (Content-Type charset {label} ignored: XML describes itself)"
            self.encoding = {"codec": codec, "label": label, "bom": False, "reason": reason}
            return codec
        if label:
            codec = python_codec(label)
            if codec is not None:
                self.encoding = {"codec": codec, "label": label, "bom": False,
                                 "reason": f"no XML encoding declaration: Content-Type charset {label}"}  # fmt: skip
                return codec
        self.encoding = {"codec": "utf-8", "label": label, "bom": False,
                         "reason": "no byte order mark, XML encoding declaration or usable charset label: UTF-8"}  # fmt: skip
        return "utf-8"

    def _texts(self, raw) -> Iterator[bytes]:
        """The document transcoded to UTF-8 (what lxml is fed), chunk by chunk, strictly decoded.

        Raises ``_Break`` (carrying the good text before the break) at undecodable bytes or a broken
        gzip stream.
        """
        try:
            for text in decoded_text(self, raw):
                yield text.encode("utf-8")
        except TextBreak as e:
            raise _Break(e.reason, e.raw, e.good.encode("utf-8")) from None

    # -- parsing

    def __iter__(self) -> Iterator[Item]:
        self._count = 0
        self._root_started = False  # a start tag has been fed
        self._lines_before = 0  # newlines fed before the last piece
        self._fed = b""
        self._content = False  # anything but whitespace fed
        self._xml_like = False  # the first thing fed is markup (not e.g. a JSON error document)
        with self.lake.open_input(self.raw_path) as raw:
            # Only the record elements' end events: the rest of the tree is never looked at.
            parser = etree.XMLPullParser(
                events=("end",), tag=f"{{*}}{self.record}", encoding="utf-8", resolve_entities=False,
                no_network=True, huge_tree=True, remove_comments=True, remove_pis=True,
            )  # fmt: skip
            closing = False
            try:
                try:
                    for data in self._texts(raw):
                        yield from self._feed(parser, data)
                except _Break as e:
                    if e.good:
                        yield from self._feed(parser, e.good)
                    yield self._break(e.reason, e.raw)
                    return
                if not self._content:
                    return  # an empty (or all-whitespace) document: no records
                closing = True
                parser.close()
            except etree.XMLSyntaxError as e:
                yield from self._drain(parser)
                if not self._root_started:
                    raise DocumentParseError(
                        f"not an XML document: {e.msg}", path=self.raw_path, line=e.lineno
                    ) from None
                # An error only found once the data ended: the document stops before it is complete.
                kind = "truncated document" if closing else "malformed XML"
                reason = f"{kind}: {(e.msg or str(e)).strip()} (XML line {e.lineno}, column {e.position[1]})"
                yield self._break(reason, self._line_at(e.lineno))

    def _feed(self, parser, data: bytes) -> Iterator[Item]:
        # Small pieces: lxml builds the tree of everything fed before its events can be read.
        for start in range(0, len(data), _FEED_BYTES):
            piece = data[start : start + _FEED_BYTES]
            self._lines_before += self._fed.count(b"\n")
            self._fed = piece
            if not self._content and piece.strip():
                self._content = True
                self._xml_like = piece.lstrip()[:1] == b"<"
            if not self._root_started and self._xml_like and _START_TAG.search(piece):
                self._root_started = True
            parser.feed(piece)
            yield from self._drain(parser, len(piece))

    def _drain(self, parser, size: int = 0) -> Iterator[Item]:
        events = parser.read_events()
        ended = [element for _, element in events]
        for element in ended:
            self._count += 1
            item = self._item(element, self._count)
            item.size = size // len(ended)  # about: the piece's bytes shared by the records it ended
            yield item
            _forget(element)

    def _line_at(self, lineno: int | None) -> bytes:
        """The bytes of document line ``lineno`` when it is in the last chunk fed (else b"")."""
        if not lineno:
            return b""
        lines = self._fed.split(b"\n")
        index = lineno - self._lines_before - 1
        return lines[index][: 2 * RAW_CONTEXT] if 0 <= index < len(lines) else b""

    def _break(self, reason: str, raw: bytes) -> Item:
        if not self._root_started:  # nothing of the document could be read
            raise DocumentParseError(reason, path=self.raw_path, line=1)
        return Item(line=self._count + 1, error=reason, raw=raw, is_break=True)

    def _item(self, element, index: int) -> Item:
        row: dict[Path, Any] = {}
        repeated: set[Path] = set()
        child_rows: list[tuple[str, dict[Path, Any]]] = []
        _flatten(element, (), row, repeated, self.children, child_rows)
        _finish(row, repeated)
        missing = [k for k, path in zip(self.keys, self.key_paths, strict=True) if row.get(path) in (None, "")]
        if missing:
            return Item(line=index, error=f"record {self.record} {index} has no {', '.join(missing)}",
                        raw=etree.tostring(element, encoding="utf-8")[:4096])  # fmt: skip
        date_value = None
        if self.date_path:
            date_value = next((v for p, v in row.items() if _joined(p) == self.date_path), None)
        rows: list[tuple[str, dict[Path, Any]]] = [("", row)]
        if child_rows:
            keys = {path: row[path] for path in self.key_paths}
            for name, child in child_rows:
                parent = {((self.record, *p) if p in child else p): v for p, v in keys.items()}
                rows.append((_table_name(name), {**parent, **child}))
        return Item(line=index, rows=rows, date_value=date_value if isinstance(date_value, str) else None)


@functools.lru_cache(maxsize=4096)
def _joined(path: Path) -> str:
    return "_".join(snake_case(p) for p in path)


@functools.lru_cache(maxsize=256)
def _table_name(element_name: str) -> str:
    return snake_case(element_name)


def _flatten(element, prefix: Path, row: dict[Path, Any], repeated: set[Path], children: frozenset[str],
             child_rows: list[tuple[str, dict[Path, Any]]] | None) -> None:  # fmt: skip
    """Leaves of ``element`` into ``row`` (path -> text); child records into ``child_rows``."""
    for child in element:
        tag = child.tag
        if tag.__class__ is not str:
            continue  # comments and processing instructions
        name = tag.rpartition("}")[2] if tag[0] == "{" else tag
        if child_rows is not None and name in children:
            child_row: dict[Path, Any] = {}
            child_repeated: set[Path] = set()
            _attributes(child, (), child_row, child_repeated)
            _flatten(child, (), child_row, child_repeated, children, None)
            _finish(child_row, child_repeated)
            child_rows.append((name, child_row))
            continue
        path = (*prefix, name)
        size = len(child)
        if size == 0:
            _put(row, repeated, path, child.text or None)
            if child.attrib:
                _attributes(child, path, row, repeated)
            continue
        pivot = _type_pair(child) if size == 2 else None
        if pivot is not None:
            kind, other = pivot
            pivoted = (*prefix, kind, local_name(other.tag))
            _put(row, repeated, pivoted, other.text or None)
            if other.attrib:
                _attributes(other, pivoted, row, repeated)
            continue
        if child.attrib:
            _attributes(child, path, row, repeated)
        _flatten(child, path, row, repeated, children, None)


def _type_pair(element):
    """(type, value element) for an element holding exactly a ``Type`` leaf and one other leaf."""
    first, second = element[0], element[1]
    if first.tag.__class__ is not str or second.tag.__class__ is not str or len(first) or len(second):
        return None
    if local_name(first.tag) == "Type":
        type_element, other = first, second
    elif local_name(second.tag) == "Type":
        type_element, other = second, first
    else:
        return None
    kind = (type_element.text or "").strip()
    if not kind or local_name(other.tag) == "Type":
        return None
    return kind, other


def _attributes(element, path: Path, row: dict[Path, Any], repeated: set[Path]) -> None:
    for key, value in element.items():
        if key.startswith("{http://www.w3.org/2001/XMLSchema-instance}"):
            continue  # xsi:type, xsi:noNamespaceSchemaLocation: schema plumbing, not data
        _put(row, repeated, (*path, "@" + local_name(key)), value)


def _put(row: dict[Path, Any], repeated: set[Path], path: Path, value: Any) -> None:
    if path not in row:
        row[path] = value
    elif path in repeated:
        row[path].append(value)
    else:
        row[path] = [row[path], value]
        repeated.add(path)


def _finish(row: dict[Path, Any], repeated: set[Path]) -> None:
    """A path that occurred more than once keeps all its values, as a JSON array."""
    for path in repeated:
        row[path] = json.dumps(row[path], ensure_ascii=False)


def _forget(element) -> None:
    """Free a finished record and everything before it in the tree (bounded memory): along the path
    to the root, each ancestor keeps only its last child."""
    element.clear(keep_tail=False)
    node = element
    parent = node.getparent()
    while parent is not None:
        while node.getprevious() is not None:
            del parent[0]
        node, parent = parent, parent.getparent()
