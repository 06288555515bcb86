"""Property tests: whatever the bytes, the accounting holds and only DocumentParseError escapes.

rows_read is checked against an independent count made here from the raw bytes (decompressed prefix,
non-blank lines after the header, plus one record for a broken gzip stream).
"""

from __future__ import annotations

import gzip
import tempfile
import zlib
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parsing_support import DE, JP, ORDERS, UK, US, check_accounting, make_parse

import sp_reports.parsing.flatfile as flatfile
from sp_reports.lake import Lake
from sp_reports.parsing import DocumentParseError
from sp_reports.columns import snake_case

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def parse():
    with tempfile.TemporaryDirectory() as root:
        yield make_parse(Lake(root))


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    # Small blocks and reads put block boundaries, and the decision block, anywhere in small documents.
    monkeypatch.setattr(flatfile, "_BLOCK", 64)
    monkeypatch.setattr(flatfile, "_READ_CHUNK", 37)


def expected_rows_read(data: bytes) -> tuple[int, bool, bool]:
    """(rows read, the gzip stream broke, a header exists) computed from the raw bytes."""
    broken = False
    if data[:2] == b"\x1f\x8b":
        out, rest = [], data
        while True:
            inflater = zlib.decompressobj(wbits=31)
            try:
                out.append(inflater.decompress(rest))
            except zlib.error:
                broken = True  # (the parser salvages up to the error; only exercised with valid prefixes here)
                break
            if not inflater.eof:
                broken = True
                break
            rest = inflater.unused_data
            if not rest.strip(b"\0"):
                break
        text = b"".join(out)
    else:
        text = data
    text = text.removeprefix(b"\xef\xbb\xbf")
    if b"\n" not in text[: 1 << 20] and b"\r" in text[: 1 << 20]:
        text = text.replace(b"\r", b"\n")
    lines = text.split(b"\n")
    if broken or text.endswith(b"\n") or not text:
        lines.pop()  # the partial line of a broken stream is the break record; "" after a final \n
    blank = [not line.strip(b"\t\r") for line in lines]
    if False in blank:
        header = blank.index(False)
        rows = sum(1 for b in blank[header + 1 :] if not b)
        return rows + broken, broken, True
    return 0, broken, False


def check(parsed, data: bytes) -> None:
    check_accounting(parsed)
    rows, broken, _ = expected_rows_read(data)
    assert parsed.parse_result.rows_read == rows
    lines = parsed.main.column("source_line").to_pylist() if parsed.main.num_rows else []
    assert lines == sorted(lines) and len(set(lines)) == len(lines)


_ANY_TEXT_BYTES = st.binary(max_size=400)
_TSVISH = st.lists(
    st.one_of(st.sampled_from([b"\t", b"\n", b"\r\n", b"\r", b"\xef\xbb\xbf", b'"', b"\x81 ", b"\xff", b"\x82"]),
              st.binary(max_size=8), st.text(max_size=6).map(str.encode)),
    max_size=80,
).map(b"".join)


@FUZZ
@given(data=st.one_of(_ANY_TEXT_BYTES, _TSVISH), gz=st.booleans(), label=st.sampled_from(
    [None, "UTF-8", "Cp1252", "windows-31j", "Shift_JIS", "bogus"]), marketplace=st.sampled_from([US, DE, JP]))
def test_random_bytes(parse, data, gz, label, marketplace):
    raw = gzip.compress(data) if gz else data
    try:
        parsed = parse(raw, charset=label, marketplace=marketplace)
    except DocumentParseError as e:
        assert "header" in str(e) or "UTF-16" in str(e), e
        return
    check(parsed, raw)


def _document(n_rows: int) -> bytes:
    header = "amazon-order-id\tpurchase-date\tquantity\titem-price\tproduct-name\n"
    rows = "".join(f"{i}\t2026-11-{1 + i % 28:02d}T10:00:00+00:00\t{i % 7}\t{i}.99\tname {i} ✓\n"
                   for i in range(n_rows))
    return (header + rows).encode()


@FUZZ
@given(n_rows=st.integers(0, 300), cut=st.floats(0, 1), level=st.sampled_from([1, 9]))
def test_random_truncation_of_a_gzip_document(parse, n_rows, cut, level):
    text = _document(n_rows)
    whole = gzip.compress(text, compresslevel=level)
    data = whole[: int(len(whole) * cut)]
    rows, broken, has_header = expected_rows_read(data)
    try:
        parsed = parse(data, report=ORDERS)
    except DocumentParseError as e:
        assert broken and not has_header and "before the header line was complete" in str(e)
        return
    check(parsed, data)
    landed = parsed.main.column("source_line").to_pylist() if parsed.main.num_rows else []
    assert landed == list(range(2, 2 + len(landed)))  # the complete lines before the break, all of them
    assert parsed.parse_result.values_quarantined == 0
    records = parsed.quarantined()
    if broken and data[:2] == b"\x1f\x8b":
        assert len(records) == 1 and records[0]["reason"].startswith("document truncated after line")
        assert records[0]["line"] == 2 + len(landed)
        assert text.startswith(b"\n".join(text.split(b"\n")[: 1 + len(landed)]) + b"\n" + records[0]["raw"])
    else:
        assert records == []


_KNOWN = {"amazon-order-id": "x", "quantity": "integer", "item-price": "decimal", "purchase-date": "datetime",
          "is-business-order": "boolean", "sku": "x", "ship-city": "x"}


@FUZZ
@given(
    known=st.lists(st.sampled_from(sorted(_KNOWN)), unique=True, min_size=1),
    added=st.lists(st.text("abcdefghij-", min_size=1, max_size=8).filter(lambda s: snake_case(s)), max_size=3,
                   unique_by=snake_case),
    n_rows=st.integers(0, 40),
    crlf=st.booleans(),
    trailing_tab=st.booleans(),
    marketplace=st.sampled_from([US, DE, UK, JP]),
    data=st.data(),
)
def test_random_column_drift(parse, known, added, n_rows, crlf, trailing_tab, marketplace, data):
    """Columns added, removed and reordered: every row lands, every value under its own column."""
    added = [a for a in added if snake_case(a) not in {snake_case(k) for k in _KNOWN}
             and snake_case(a) not in ("report_id", "marketplace_id", "report_date", "source_line")]
    columns = data.draw(st.permutations(known + added))
    comma = marketplace == DE

    def value(column: str, i: int) -> tuple[str, object]:
        kind = _KNOWN.get(column, "x")
        if kind == "integer":
            return str(i), i
        if kind == "decimal":
            return (f"{i},5" if comma else f"{i}.5"), Decimal(f"{i}.5")
        if kind == "datetime":
            return f"2026-11-{1 + i % 28:02d}T10:00:00Z", f"2026-11-{1 + i % 28:02d}"
        if kind == "boolean":
            return ("true", True) if i % 2 else ("no", False)
        return f"{column} {i}", f"{column} {i}"

    end = ("\t" if trailing_tab else "") + ("\r\n" if crlf else "\n")
    lines = ["\t".join(columns) + end]
    expected = []
    for i in range(n_rows):
        cells = [value(c, i) for c in columns]
        lines.append("\t".join(text for text, _ in cells) + end)
        expected.append({snake_case(c): v for c, (_, v) in zip(columns, cells)})
    raw = "".join(lines).encode()
    parsed = parse(raw, report=ORDERS, marketplace=marketplace)
    check(parsed, raw)
    assert parsed.parse_result.columns == [snake_case(c) for c in columns]
    assert parsed.quarantined() == []
    got = parsed.rows()
    for row in got:
        if "purchase_date" in row:
            row["purchase_date"] = row["purchase_date"].date().isoformat()
    assert got == expected


_TEXT = st.text(st.sampled_from(list("abc XYZ 0123") + list("éüßÖ€–“”") + list("あア髙橋①～ＷＡ漢字")),
                min_size=1, max_size=12)
_LABELS = {
    "utf-8": ["UTF-8", "utf8"],
    "cp1252": ["Cp1252", "windows-1252"],
    "cp932": ["windows-31j", "Shift_JIS", "SJIS"],
}


@FUZZ
@given(
    cells=st.lists(st.tuples(_TEXT, _TEXT), max_size=8),
    codec=st.sampled_from(["utf-8", "cp1252", "cp932"]),
    label_kind=st.sampled_from(["right", "wrong", "none", "unknown"]),
    marketplace=st.sampled_from([US, DE, JP]),
    bom=st.booleans(),
    data=st.data(),
)
def test_random_encodings_and_labels(parse, cells, codec, label_kind, marketplace, bom, data):
    rows = []
    for a, b in cells:
        try:
            a.encode(codec), b.encode(codec)
        except UnicodeEncodeError:
            continue
        rows.append({"sku": a.strip() or "s", "name": b})
    text = "sku\tname\n" + "".join(f"{r['sku']}\t{r['name']}\n" for r in rows)
    raw = (b"\xef\xbb\xbf" if bom and codec == "utf-8" else b"") + text.encode(codec)
    if label_kind == "right":
        label = data.draw(st.sampled_from(_LABELS[codec]))
    elif label_kind == "wrong":
        label = data.draw(st.sampled_from([spelling for c, s in _LABELS.items() if c != codec for spelling in s]))
    else:
        label = None if label_kind == "none" else "x-unknown"
    parsed = parse(raw, charset=label, marketplace=marketplace)
    check(parsed, raw)
    enc = parsed.parse_result.encoding
    assert set(enc) == {"codec", "label", "bom", "reason"} and enc["label"] == label and enc["reason"]
    if enc["codec"] == codec:  # decoded with the right codec: lossless, nothing quarantined
        assert parsed.rows() == rows and parsed.quarantined() == []
    try:
        raw.decode("utf-8")
        valid_utf8 = True
    except UnicodeDecodeError:
        valid_utf8 = False
    if raw.isascii():
        assert parsed.rows() == rows
    elif label_kind == "right" and (codec == "utf-8" or not valid_utf8) and not (codec == "cp1252" and marketplace == JP):
        assert enc["codec"] == codec, enc  # a right label is kept unless the bytes contradict it
    elif codec == "utf-8":
        assert enc["codec"] == "utf-8", enc  # valid UTF-8 always wins
