"""Flat files: Amazon's quirks, localised headers, settlements, system columns, staging files."""

import datetime as dt
import gzip
import json
import zlib
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from parsing_support import DE, JP, LISTINGS, ORDERS, OUT, PLAIN, RAW, SETTLEMENT, US, check_accounting

import sp_reports.parsing.flatfile as flatfile
from sp_reports.parsing import DocumentParseError, parse_document
from sp_reports.parsing.flatfile import normalise_columns, snake_case
from sp_reports.columns import SOURCE_COLUMNS_KEY


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few hundred bytes: block boundaries in small documents."""
    monkeypatch.setattr(flatfile, "_BLOCK", 300)
    monkeypatch.setattr(flatfile, "_READ_CHUNK", 256)


def test_basic_document_with_system_columns(lake, parse):
    data = b"amazon-order-id\tItem Price (EUR)\tsellerSku\n028-1\t9.99\tA\n028-2\t\tB\n"
    p = parse(data, extra={"report_id": "r1", "marketplace_id": US, "report_created_time": "2026-11-21T00:00:00Z",
                           "report_date": "2026-11-20"})
    o = p.parse_result
    assert o.columns == ["amazon_order_id", "item_price_eur", "seller_sku"]
    assert o.source_columns == {"amazon_order_id": "amazon-order-id", "item_price_eur": "Item Price (EUR)",
                                "seller_sku": "sellerSku"}
    assert p.main.schema.names == o.columns + ["report_id", "marketplace_id", "report_created_time", "report_date",
                                               "source_line"]
    assert p.main.schema.field("report_date").type == pa.date32()
    assert p.main.schema.field("source_line").type == pa.int64()
    assert p.rows(system=True) == [
        {"amazon_order_id": "028-1", "item_price_eur": "9.99", "seller_sku": "A", "report_id": "r1",
         "marketplace_id": US, "report_created_time": "2026-11-21T00:00:00Z", "report_date": dt.date(2026, 11, 20),
         "source_line": 2},
        {"amazon_order_id": "028-2", "item_price_eur": None, "seller_sku": "B", "report_id": "r1",
         "marketplace_id": US, "report_created_time": "2026-11-21T00:00:00Z", "report_date": dt.date(2026, 11, 20),
         "source_line": 3},
    ]  # fmt: skip
    assert (o.rows_read, o.rows_parsed, o.rows_quarantined, o.values_quarantined) == (2, 2, 0, 0)
    assert o.quarantine_files == [] and not o.compressed
    assert all(f.startswith(OUT + "/") and f.endswith(".parquet") for f in o.tables[""])
    schema = pq.read_schema(lake.fs_path(o.tables[""][0]), filesystem=lake.filesystem)
    assert json.loads(schema.metadata[SOURCE_COLUMNS_KEY.encode()]) == o.source_columns


def test_crlf_line_ends(parse):
    p = parse(b"a\tb\r\n1\t2\r\n3\t4\r\n")
    assert p.rows() == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


def test_trailing_tabs_on_every_line(parse):
    p = parse(b"a\tb\t\r\n1\t2\t\r\n3\t\t\r\n")
    assert p.parse_result.columns == ["a", "b"]
    assert p.rows() == [{"a": "1", "b": "2"}, {"a": "3", "b": None}]
    assert not p.quarantined()


def test_trailing_tabs_on_rows_only(parse):
    p = parse(b"a\tb\n1\t2\t\n3\t4\n5\t6\t\t\t\n")
    assert p.rows() == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}, {"a": "5", "b": "6"}]
    check_accounting(p)


def test_short_rows_are_padded_with_null(parse):
    p = parse(b"a\tb\tc\r\n1\t2\t3\r\n4\t5\r\n6\r\n7\t8\t9\r\n")
    assert p.rows() == [
        {"a": "1", "b": "2", "c": "3"},
        {"a": "4", "b": "5", "c": None},
        {"a": "6", "b": None, "c": None},
        {"a": "7", "b": "8", "c": "9"},
    ]
    assert p.main.column("source_line").to_pylist() == [2, 3, 4, 5]  # document order kept
    assert p.parse_result.rows_parsed == 4 and p.parse_result.rows_quarantined == 0


def test_long_rows_are_quarantined(parse):
    data = b"a\tb\n1\t2\n\n3\t4\t5\n6\t7\n8\t9\t\t10\t\n"
    p = parse(data)
    assert p.rows() == [{"a": "1", "b": "2"}, {"a": "6", "b": "7"}]
    assert [(r["line"], r["reason"], r["raw"]) for r in p.quarantined()] == [
        (4, "3 fields, header has 2", b"3\t4\t5"),
        (6, "5 fields, header has 2", b"8\t9\t\t10\t"),
    ]
    assert (p.parse_result.rows_read, p.parse_result.rows_parsed, p.parse_result.rows_quarantined) == (4, 2, 2)
    check_accounting(p)


def test_long_row_deep_in_a_large_document(parse):
    """One pyarrow block of 60,000 lines: the rejected row is numbered by its line in the document."""
    lines = [b"a\tb"] + [b"%d\tvalue %d" % (i, i) for i in range(60_000)]
    lines[50_001] = b"x\ty\tz"  # line 50002 (the header is line 1)
    p = parse(b"\n".join(lines) + b"\n")
    [record] = p.quarantined()
    assert (record["line"], record["reason"], record["raw"]) == (50_002, "3 fields, header has 2", b"x\ty\tz")
    assert 50_002 not in p.main.column("source_line").to_pylist() and p.parse_result.rows_parsed == 59_999
    check_accounting(p)


def test_long_rows_in_a_trailing_tab_layout(parse):
    p = parse(b"a\tb\t\n1\t2\t\n3\t4\tX\n5\t6\t\n")
    assert p.rows() == [{"a": "1", "b": "2"}, {"a": "5", "b": "6"}]
    assert [(r["line"], r["reason"]) for r in p.quarantined()] == [(3, "3 fields, header has 2")]


def test_double_quotes_are_data(parse):
    p = parse(b'sku\tname\tnote\nA\t12" ruler\t"quoted"\nB\t"unbalanced\tx""y\n')
    assert p.rows() == [
        {"sku": "A", "name": '12" ruler', "note": '"quoted"'},
        {"sku": "B", "name": '"unbalanced', "note": 'x""y'},
    ]


def test_blank_lines_are_skipped_and_not_counted(parse):
    p = parse(b"\n\r\na\tb\n\n1\t2\n\r\n\t\n\t\t\r\n3\t4")  # leading blank lines, last line without \n
    assert p.rows() == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    assert p.main.column("source_line").to_pylist() == [5, 9]
    assert p.parse_result.rows_read == 2


def test_a_lone_carriage_return_is_data(parse):
    p = parse(b"a\tb\r\n1\tx\ry\r\n2\tz\r\n")
    assert p.rows() == [{"a": "1", "b": "x\ry"}, {"a": "2", "b": "z"}]
    assert p.main.column("source_line").to_pylist() == [2, 3]


def test_classic_mac_line_ends(parse):
    p = parse(b"a\tb\r1\t2\r3\t4\r")
    assert p.rows() == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\r\n\t\n", gzip.compress(b""), b"\xef\xbb\xbf"])
def test_empty_document(parse, data):
    p = parse(data)
    o = p.parse_result
    assert (o.rows_read, o.rows_parsed, o.rows_quarantined) == (0, 0, 0)
    assert o.tables == {"": []} and o.columns == [] and o.quarantine_files == []


def test_header_only(parse):
    p = parse(b"sku\tpurchase-date\r\n", report=ORDERS)
    o = p.parse_result
    assert (o.rows_read, o.rows_parsed) == (0, 0) and len(o.tables[""]) == 1  # an empty file with the schema
    assert p.main.num_rows == 0
    assert p.main.schema.names == ["sku", "purchase_date", "report_id", "marketplace_id", "report_date", "source_line"]
    assert p.main.schema.field("purchase_date").type == pa.timestamp("us", "UTC")


@pytest.mark.parametrize("hint", [None, False, True])
def test_gzip_is_detected_by_magic_bytes(parse, hint):
    text = b"sku\tqty\r\nA\t1\r\nB\t2\r\n"
    p = parse(gzip.compress(text), compressed=hint)
    assert p.parse_result.compressed and p.rows() == [{"sku": "A", "qty": "1"}, {"sku": "B", "qty": "2"}]
    p = parse(text, compressed=hint)
    assert not p.parse_result.compressed and p.main.num_rows == 2


def test_concatenated_gzip_members_and_zero_padding(parse):
    p = parse(gzip.compress(b"sku\tqty\nA\t1\n") + gzip.compress(b"B\t2\n") + b"\0" * 100)
    assert p.rows() == [{"sku": "A", "qty": "1"}, {"sku": "B", "qty": "2"}]
    assert not p.quarantined()


def _gzip_lines(n):
    body = b"".join(b"%d\tsome value %d\n" % (i, i) for i in range(n))
    return b"a\tb\n" + body, gzip.compress(b"a\tb\n" + body)


def test_truncated_gzip_lands_what_came_before_and_quarantines_the_break(parse):
    text, data = _gzip_lines(100_000)
    cut = data[: len(data) // 2]
    p = parse(cut)
    o = p.parse_result
    # What a decompressor gets from the cut stream: whole lines land, the partial one is the break record.
    inflated = zlib.decompressobj(wbits=31).decompress(cut)
    complete = inflated[: inflated.rfind(b"\n") + 1]
    landed = complete.count(b"\n") - 1
    assert o.rows_parsed == landed and p.main.column("source_line").to_pylist()[-1] == landed + 1
    [record] = p.quarantined()
    assert record["kind"] == "row" and record["line"] == landed + 2
    assert record["reason"] == f"document truncated after line {landed + 1}: the gzip stream ends early"
    assert record["raw"] == inflated[len(complete):]
    assert o.rows_read == landed + 1 and o.rows_quarantined == 1
    check_accounting(p)


def test_corrupt_gzip_ends_the_document(parse):
    data = bytearray(gzip.compress(b"a\tb\n" + b"%d\t2\n" * 50_000))
    data[200:260] = bytes(range(60))
    p = parse(bytes(data))
    # Corrupt deflate data may inflate to garbage before zlib notices (the CRC comes last): those lines
    # go through the usual rules; the break is the last record.
    records = p.quarantined()
    assert records[-1]["reason"].startswith("document truncated after line") and "gzip" in records[-1]["reason"]
    assert p.main.column("source_line").to_pylist()[:100] == list(range(2, 102))
    check_accounting(p)


def test_garbage_after_the_gzip_stream(parse):
    p = parse(gzip.compress(b"a\tb\n1\t2\n") + b"this is not gzip")
    assert p.rows() == [{"a": "1", "b": "2"}]
    [record] = p.quarantined()
    assert record["line"] == 3 and "corrupt gzip data" in record["reason"]
    check_accounting(p)


def test_gzip_broken_inside_the_header_is_a_document_error(parse):
    data = gzip.compress(b"a" * 10_000 + b"\tb\n1\t2\n")
    with pytest.raises(DocumentParseError, match="before the header line was complete"):
        parse(data[:20])


def test_rows_cross_block_boundaries(parse, small_blocks):
    rows = [f"{i}\t{'v' * (i % 50)}" for i in range(2_000)]
    data = ("n\tv\r\n" + "\r\n".join(rows) + "\r\n").encode()
    p = parse(data)
    assert p.main.column("n").to_pylist() == [str(i) for i in range(2_000)]
    assert p.main.column("source_line").to_pylist() == list(range(2, 2_002))


def test_every_quirk_across_small_blocks(parse, small_blocks):
    """Blank, short, long, undecodable, lone-CR and trailing-tab lines spread over many blocks."""
    lines, expected_rows, expected_bad = [b"a\tb\tc"], [], []
    for i in range(300):
        kind = i % 6
        line = [b"%d\tx\ty" % i, b"", b"%d\tshort" % i, b"%d\t1\t2\t3" % i, b"%d\t\xff" % i, b"%d\tx\ry\t" % i][kind]
        lines.append(line)
        if kind in (0, 2, 5):
            expected_rows.append(len(lines))
        elif kind in (3, 4):
            expected_bad.append(len(lines))
    p = parse(b"\n".join(lines) + b"\n")
    assert p.main.column("source_line").to_pylist() == expected_rows
    assert sorted(r["line"] for r in p.quarantined()) == expected_bad
    assert p.parse_result.rows_read == 250
    check_accounting(p)


def test_a_line_over_64_mb_is_a_document_error(parse, monkeypatch):
    monkeypatch.setattr(flatfile, "_MAX_LINE", 2000)
    monkeypatch.setattr(flatfile, "_BLOCK", 500)
    monkeypatch.setattr(flatfile, "_READ_CHUNK", 100)
    with pytest.raises(DocumentParseError, match="longer than"):
        parse(b"a\tb\n1\t" + b"x" * 5000 + b"\n")


# --- headers -----------------------------------------------------------------------------------------


def test_localised_japanese_listing_headers(parse):
    header = "出品者SKU\t商品名\t価格\t数量\t出品日\t新しい列\n"
    row = "SKU-1\t髙橋の本～ＷＡＶＥ\t1500\t3\t2026/11/20 14:03:12 JST\tx\n"
    p = parse((header + row).encode("cp932"), report=LISTINGS, marketplace=JP, charset="Shift_JIS")
    o = p.parse_result
    assert o.columns == ["seller_sku", "item_name", "price", "quantity", "open_date", "新しい列"]
    assert o.source_columns["seller_sku"] == "出品者SKU" and o.source_columns["新しい列"] == "新しい列"
    [r] = p.rows()
    assert r["price"] == Decimal("1500") and r["quantity"] == 3
    assert r["open_date"] == dt.datetime(2026, 11, 20, 5, 3, 12, tzinfo=dt.timezone.utc)


def test_localised_german_listing_headers(parse):
    header = "Händler-SKU\tArtikelbezeichnung\tPreis\tMenge\tErstellungsdatum\tVersender-Gruppe\n"
    row = "SKU-1\tKaffeemühle\t1.234,56\t2\t20.11.2026 14:03:12 MEZ\tStandard\n"
    p = parse((header + row).encode("cp1252"), report=LISTINGS, marketplace=DE, charset="Cp1252")
    assert p.parse_result.columns == ["seller_sku", "item_name", "price", "quantity", "open_date",
                                 "merchant_shipping_group"]
    assert p.parse_result.source_columns["seller_sku"] == "Händler-SKU"
    [r] = p.rows()
    assert r["price"] == Decimal("1234.56") and r["item_name"] == "Kaffeemühle"
    assert r["open_date"] == dt.datetime(2026, 11, 20, 13, 3, 12, tzinfo=dt.timezone.utc)


def test_alias_match_strips_bom_and_whitespace(parse):
    p = parse("\ufeff 出品者SKU \t価格\r\nA\t1\r\n".encode(), report=LISTINGS, marketplace=JP)
    assert p.parse_result.columns == ["seller_sku", "price"]
    assert p.parse_result.source_columns["seller_sku"] == " 出品者SKU "


def test_duplicate_blank_and_reserved_header_names(parse):
    p = parse(b"item-name\titem_name\t\tsource-line\treport_id\n1\t2\t3\t4\t5\n")
    assert p.parse_result.columns == ["item_name", "item_name_2", "column_3", "source_line_2", "report_id_2"]
    assert p.rows(system=True)[0]["source_line"] == 2 and p.rows()[0]["report_id_2"] == "5"


def test_column_names():
    assert snake_case("amazon-order-id") == "amazon_order_id"
    assert snake_case("Amazon Order ID") == "amazon_order_id"
    assert snake_case("sellerSku") == "seller_sku"
    assert snake_case("item-price (EUR)") == "item_price_eur"
    assert snake_case("出品者SKU") == "出品者sku"  # a header without an alias keeps its letters
    assert normalise_columns(["item-name", "item_name", "", "Item Name"]) == [
        "item_name", "item_name_2", "column_3", "item_name_3"
    ]


# --- types, report_date ------------------------------------------------------------------------------


def test_declared_columns_cast_and_failures_quarantined(parse):
    header = "amazon-order-id\tpurchase-date\tquantity\titem-price\tis-business-order\n"
    rows = (
        "1\t2026-11-20T14:03:12+00:00\t2\t9.99\ttrue\n"
        "2\tyesterday\tmany\t1,5\tmaybe\n"
        "3\t\t\t\t\n"
    )
    p = parse((header + rows).encode(), report=ORDERS)
    assert [r["quantity"] for r in p.rows()] == [2, None, None]
    assert p.rows()[0]["item_price"] == Decimal("9.99") and p.rows()[0]["is_business_order"] is True
    values = sorted((r["line"], r["column"], r["raw"]) for r in p.quarantined("value"))
    assert values == [
        (3, "is_business_order", b"maybe"), (3, "item_price", b"1,5"), (3, "purchase_date", b"yesterday"),
        (3, "quantity", b"many"),
    ]  # fmt: skip
    assert all(r["reason"] for r in p.quarantined("value"))
    o = p.parse_result
    assert (o.rows_read, o.rows_parsed, o.rows_quarantined, o.values_quarantined) == (3, 3, 0, 4)
    check_accounting(p)


def test_report_date_is_the_utc_date_of_the_date_column(parse):
    data = (
        "amazon-order-id\tpurchase-date\n"
        "1\t2026-11-20T23:30:00-08:00\n"  # 2026-11-21 07:30 UTC
        "2\t2026-11-20T01:00:00+09:00\n"  # 2026-11-19 16:00 UTC
        "3\t\n"  # no date: the report's day
        "4\tnot a date\n"
    ).encode()
    p = parse(data, report=ORDERS, extra={"report_id": "r1", "marketplace_id": US, "report_date": "2026-11-25"})
    assert p.main.column("report_date").to_pylist() == [
        dt.date(2026, 11, 21), dt.date(2026, 11, 19), dt.date(2026, 11, 25), dt.date(2026, 11, 25)
    ]
    assert "report_date" not in p.parse_result.columns


def test_a_date_column_missing_from_the_header_falls_back_to_the_reports_day(parse, caplog):
    p = parse(b"amazon-order-id\tsku\n1\tA\n", report=ORDERS,
              extra={"report_id": "r1", "marketplace_id": US, "report_date": "2026-11-25"})
    assert p.main.column("report_date").to_pylist() == [dt.date(2026, 11, 25)]
    assert not p.quarantined()
    assert "date column 'purchase-date' is not in the header" in caplog.text


def test_report_date_without_a_date_column_or_fallback_is_null(parse):
    p = parse(b"a\n1\n")
    assert p.main.column("report_date").to_pylist() == [None]


def test_report_date_of_a_date_typed_column(parse):
    header = "settlement-id\tposted-date\tamount\n"
    p = parse((header + "1\t\t\n1\t20.11.2026\t-1,50\n").encode("cp1252"), report=SETTLEMENT, marketplace=DE,
              extra={"report_id": "r1", "marketplace_id": DE})
    assert p.rows("summary", system=True)[0]["report_date"] is None
    [row] = p.rows(system=True)
    assert row["posted_date"] == dt.date(2026, 11, 20) and row["report_date"] == dt.date(2026, 11, 20)
    assert row["amount"] == Decimal("-1.5")


# --- settlements -------------------------------------------------------------------------------------

SETTLEMENT_HEADER = (
    "settlement-id\tsettlement-start-date\tsettlement-end-date\tdeposit-date\ttotal-amount\tcurrency\t"
    "transaction-type\torder-id\tamount-description\tamount\tposted-date\tquantity-purchased\n"
)


def test_settlement_summary_row(parse):
    data = (
        SETTLEMENT_HEADER
        + "S1\t2026-11-01 00:00:00 UTC\t2026-11-15 00:00:00 UTC\t2026-11-17 00:00:00 UTC\t1234.56\tUSD\t\t\t\t\t\t\n"
        + "S1\t\t\t\t\t\tOrder\t111-1\tPrincipal\t19.99\t2026-11-02\t1\n"
        + "S1\t\t\t\t\t\tOrder\t111-1\tTax\t1.60\t2026-11-02\t\n"
    ).encode()
    p = parse(data, report=SETTLEMENT)
    o = p.parse_result
    assert set(o.tables) == {"", "summary"}
    [summary] = p.rows("summary", system=True)
    assert summary["total_amount"] == Decimal("1234.56") and summary["source_line"] == 2
    assert summary["settlement_end_date"] == dt.datetime(2026, 11, 15, tzinfo=dt.timezone.utc)
    assert [r["amount"] for r in p.rows()] == [Decimal("19.99"), Decimal("1.60")]
    assert p.main.column("source_line").to_pylist() == [3, 4]
    assert p.tables["summary"].schema.equals(p.main.schema, check_metadata=False)
    assert (o.rows_read, o.rows_parsed, o.rows_quarantined) == (3, 3, 0)
    check_accounting(p)


def test_settlement_whose_first_data_line_is_quarantined_has_no_summary(parse):
    data = (SETTLEMENT_HEADER + "S1\t\xff\n" + "S1\t\t\t\t\t\tOrder\t111-1\tPrincipal\t19.99\t2026-11-02\t1\n").encode(
        "latin-1")
    p = parse(data, report=SETTLEMENT)
    assert p.tables["summary"].num_rows == 0 and p.main.num_rows == 1
    assert [r["line"] for r in p.quarantined()] == [2]
    check_accounting(p)


def test_settlement_summary_after_blank_lines_in_a_later_block(parse, small_blocks):
    data = SETTLEMENT_HEADER.encode() + b"\n" * 400 + b"S1\t\t\t\t99\n" + b"S1\t\t\t\t\t\tOrder\n"
    p = parse(data, report=SETTLEMENT)
    assert p.tables["summary"].column("source_line").to_pylist() == [402]
    assert p.main.column("source_line").to_pylist() == [403]


# --- staging -----------------------------------------------------------------------------------------


def test_out_dir_must_be_in_staging(lake):
    with lake.open_output(RAW) as f:
        f.write(b"a\n1\n")
    with pytest.raises(ValueError):
        parse_document(lake, RAW, "tables/x", report=PLAIN, marketplace_id=US, charset=None, compressed=None,
                       extra_columns={})


def test_files_and_row_groups(lake, parse):
    body = "".join(f"{i}\t{'v' * 100}\n" for i in range(25_000))
    with lake.open_output(RAW) as f:
        f.write(("n\tv\n" + body).encode())
    parse_result = flatfile.parse_tsv(lake, RAW, OUT, report=PLAIN, marketplace_id=US, charset=None, compressed=None,
                                 extra_columns={}, batch_rows=3_000, file_rows=10_000)
    assert parse_result.rows_parsed == 25_000 and len(parse_result.tables[""]) >= 2
    first = pq.ParquetFile(lake.open_input_file(parse_result.tables[""][0]))
    assert first.metadata.num_row_groups >= 3
    rows = pa.concat_tables(pq.read_table(lake.fs_path(f), filesystem=lake.filesystem) for f in parse_result.tables[""])
    assert rows.column("n").to_pylist() == [str(i) for i in range(25_000)]


def test_nothing_is_left_behind_after_a_document_error(lake, parse, monkeypatch):
    monkeypatch.setattr(flatfile, "_MAX_LINE", 2000)
    monkeypatch.setattr(flatfile, "_BLOCK", 500)
    monkeypatch.setattr(flatfile, "_READ_CHUNK", 100)
    with pytest.raises(DocumentParseError, match="longer than"):  # after rows were staged
        parse(b"a\tb\n" + b"1\t2\n" * 1000 + b"\t" * 5000 + b"\n")
    with pytest.raises(DocumentParseError):
        parse(gzip.compress(b"a" * 5000)[:30])
    assert lake.list("staging") == []


def test_a_storage_error_is_not_a_parse_error(lake, monkeypatch):
    with lake.open_output(RAW) as f:
        f.write(b"a\tb\n" + b"1\t2\n" * 2_000_000)
    real_open = type(lake).open_input

    class Flaky:
        def __init__(self, inner):
            self.inner, self.closed, self.served = inner, False, 0

        def read(self, n=-1):
            if self.served > 5_000_000:
                raise OSError("connection reset by peer")
            data = self.inner.read(n)
            self.served += len(data)
            return data

        def readable(self):
            return True

        def close(self):
            self.inner.close()

    monkeypatch.setattr(type(lake), "open_input", lambda self, path: pa.PythonFile(Flaky(real_open(self, path)), "r"))
    with pytest.raises(OSError, match="connection reset") as err:
        parse_document(lake, RAW, OUT, report=PLAIN, marketplace_id=US, charset=None, compressed=None,
                       extra_columns={})
    assert not isinstance(err.value, DocumentParseError)
    assert lake.list("staging") == []


def test_a_failure_while_writing_stops_every_thread_and_leaves_nothing(lake, parse, monkeypatch, small_blocks):
    import threading

    from sp_reports.parsing.result import StagedDataFiles

    real_write, calls = StagedDataFiles.write, []

    def failing_write(self, batch):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("disk full")
        real_write(self, batch)

    monkeypatch.setattr(StagedDataFiles, "write", failing_write)
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="disk full"):
        parse(b"a\tb\n" + b"".join(b"%d\tvalue\n" % i for i in range(5_000)))
    assert threading.active_count() == before
    assert lake.list("staging") == []
