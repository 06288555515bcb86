import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sp_reports.lake import DocumentParseError, parse_flat_file, python_codec, snake_case
from sp_reports.lake.flatfile import SOURCE_COLUMNS_KEY, normalise_columns

RAW = "raw/GET_TEST_REPORT/r1/doc.bin"
OUT = "staging/GET_TEST_REPORT/r1"


def put(lake, data: bytes, path: str = RAW) -> str:
    with lake.open_output(path) as f:
        f.write(data)
    return path


def parse(lake, data: bytes, **kwargs):
    """Parse ``data`` and return (result, all staged rows as one table)."""
    put(lake, data)
    kwargs.setdefault("charset", None)
    result = parse_flat_file(lake, RAW, OUT, **kwargs)
    tables = [pq.read_table(lake.fs_path(p), filesystem=lake.filesystem) for p in result.files]
    return result, (pa.concat_tables(tables) if tables else None)


def test_utf8_document_with_header_normalisation_and_metadata(lake):
    data = (
        "amazon-order-id\tpurchase-date\tproduct-name\tItem Price (EUR)\n"
        "028-1\t2026-11-20T14:03:12+00:00\tCafé crème ✓\t9.99\n"
        "028-2\t2026-11-21T01:00:00+00:00\tplain\t\n"
    ).encode()
    result, table = parse(lake, data, extra_columns={"report_id": "r1", "marketplace_id": "A1PA6795UKMFR9"})
    assert result.rows == 2 and result.codec == "utf-8" and not result.compressed and result.padded_rows == 0
    assert result.columns == ["amazon_order_id", "purchase_date", "product_name", "item_price_eur", "report_id",
                              "marketplace_id"]
    assert result.files and all(f.startswith(OUT + "/") and f.endswith(".parquet") for f in result.files)
    assert table.schema.names == result.columns
    assert all(t == pa.string() for t in table.schema.types)
    assert table.column("product_name").to_pylist() == ["Café crème ✓", "plain"]
    assert table.column("item_price_eur").to_pylist() == ["9.99", ""]  # empty field stays an empty string
    assert table.column("marketplace_id").to_pylist() == ["A1PA6795UKMFR9"] * 2
    source = json.loads(table.schema.metadata[SOURCE_COLUMNS_KEY.encode()])
    assert source["item_price_eur"] == "Item Price (EUR)" and source["amazon_order_id"] == "amazon-order-id"
    assert result.source_columns == source


def test_cp1252_document(lake):
    text = "sku\tproduct-name\tprice\nA\tCafé Ökonomie – ß\t5 €\nB\t“Zitat”\t1\n"
    result, table = parse(lake, text.encode("cp1252"), charset="Cp1252")
    assert result.codec == "cp1252"
    assert table.column("product_name").to_pylist() == ["Café Ökonomie – ß", "“Zitat”"]
    assert table.column("price").to_pylist() == ["5 €", "1"]


@pytest.mark.parametrize("charset", ["windows-31j", "Shift_JIS"])
def test_cp932_document(lake, charset):
    text = "出品者SKU\t商品名\n①\t髙橋の本～ＷＡＶＥ\n"
    result, table = parse(lake, text.encode("cp932"), charset=charset)
    assert result.codec == "cp932"
    assert result.columns == ["出品者sku", "商品名"]
    assert table.to_pylist() == [{"出品者sku": "①", "商品名": "髙橋の本～ＷＡＶＥ"}]


def test_gzip_is_detected_by_magic_bytes_and_crlf_handled(lake):
    text = "sku\tqty\r\nA\t1\r\nB\t2\r\n"
    result, table = parse(lake, gzip.compress(text.encode()), compressed=False)  # wrong hint on purpose
    assert result.compressed
    assert table.to_pylist() == [{"sku": "A", "qty": "1"}, {"sku": "B", "qty": "2"}]
    result, table = parse(lake, text.encode(), compressed=True)
    assert not result.compressed and table.num_rows == 2


def test_concatenated_gzip_members(lake):
    data = gzip.compress(b"sku\tqty\nA\t1\n") + gzip.compress(b"B\t2\n")
    result, table = parse(lake, data)
    assert table.column("sku").to_pylist() == ["A", "B"]


def test_double_quotes_are_data(lake):
    data = b'sku\tname\tnote\nA\t12" ruler\t"quoted"\nB\t"unbalanced\tx""y\n'
    _, table = parse(lake, data)
    assert table.to_pylist() == [
        {"sku": "A", "name": '12" ruler', "note": '"quoted"'},
        {"sku": "B", "name": '"unbalanced', "note": 'x""y'},
    ]


def test_header_only_gives_zero_rows_with_schema(lake):
    result, table = parse(lake, b"sku\tpurchase-date\r\n", extra_columns={"report_id": "r1"}, date_column="purchase-date")
    assert result.rows == 0 and len(result.files) == 1
    assert table.num_rows == 0 and table.schema.names == ["sku", "purchase_date", "report_id", "report_date"]


@pytest.mark.parametrize("data", [b"", b"\n\n", gzip.compress(b"")])
def test_empty_document(lake, data):
    result, table = parse(lake, data, extra_columns={"report_id": "r1"})
    assert result.rows == 0 and result.files == [] and result.columns == [] and table is None


def test_short_rows_are_padded_with_nulls(lake):
    data = b"a\tb\tc\r\n1\t2\t3\r\n4\t5\r\n6\r\n7\t8\t9\r\n"
    result, table = parse(lake, data)
    assert result.padded_rows == 2 and result.rows == 4
    rows = sorted(table.to_pylist(), key=lambda r: r["a"])
    assert rows == [
        {"a": "1", "b": "2", "c": "3"},
        {"a": "4", "b": "5", "c": None},
        {"a": "6", "b": None, "c": None},
        {"a": "7", "b": "8", "c": "9"},
    ]


def test_blank_lines_are_skipped_and_last_line_needs_no_newline(lake):
    _, table = parse(lake, b"a\tb\n\n1\t2\n\r\n3\t4")
    assert table.to_pylist() == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


def test_long_row_raises_with_line_number(lake):
    data = b"a\tb\n1\t2\n\n3\t4\t5\n6\t7\n"
    with pytest.raises(DocumentParseError) as err:
        parse(lake, data)
    assert err.value.line == 4 and err.value.path == RAW
    assert "3 fields" in str(err.value) and "line 4" in str(err.value)
    assert lake.list("staging") == []  # nothing left behind


def test_long_row_deep_in_a_large_document(lake):
    lines = [b"a\tb"] + [b"%d\tvalue %d" % (i, i) for i in range(60_000)]
    lines[50_001] = b"x\ty\tz"  # line 50002 (the header is line 1)
    with pytest.raises(DocumentParseError) as err:
        parse(lake, b"\n".join(lines) + b"\n")
    assert err.value.line == 50_002
    assert lake.list("staging") == []


def test_truncated_gzip_raises_with_line_number(lake):
    body = b"".join(b"%d\tsome value %d\n" % (i, i) for i in range(100_000))
    data = gzip.compress(b"a\tb\n" + body)
    with pytest.raises(DocumentParseError) as err:
        parse(lake, data[: len(data) // 2])
    assert "truncated gzip" in str(err.value)
    assert err.value.line is not None and 2 < err.value.line < 100_002
    assert lake.list("staging") == []


def test_corrupt_gzip_raises(lake):
    data = bytearray(gzip.compress(b"a\tb\n" + b"1\t2\n" * 50_000))
    data[200:260] = b"\x00" * 60
    with pytest.raises(DocumentParseError):
        parse(lake, bytes(data))


@pytest.mark.parametrize(
    ("data", "charset", "line"),
    [
        (b"a\tb\n1\t2\n3\t\xff\xfe\n", None, 3),  # invalid UTF-8
        (b"a\tb\n1\t2\n3\t4\n5\t\x81\n", "Cp1252", 4),  # 0x81 is undefined in cp1252
        ("a\tb\n①\t2\n".encode("cp932") + b"3\t\x82\n", "windows-31j", 3),  # truncated double-byte char
    ],
)
def test_undecodable_bytes_raise_with_line_number(lake, data, charset, line):
    with pytest.raises(DocumentParseError) as err:
        parse(lake, data, charset=charset)
    assert err.value.line == line
    assert lake.list("staging") == []


def test_utf8_decode_error_deep_in_a_large_gzip_document(lake):
    lines = [b"a\tb"] + [b"%d\tvalue %d" % (i, i) for i in range(80_000)]
    lines[70_000] = b"bad\t\xc3("  # line 70001
    with pytest.raises(DocumentParseError) as err:
        parse(lake, gzip.compress(b"\n".join(lines) + b"\n"))
    assert err.value.line == 70_001


def test_report_date_derivation(lake):
    dates = ["2026-11-20T14:03:12+00:00", "2026-11-20", "20.11.2026", "2026/11/20 14:03:12 JST", "Nov 20, 2026", ""]
    data = "id\tpurchase-date\n" + "".join(f"{i}\t{d}\n" for i, d in enumerate(dates))
    _, table = parse(lake, data.encode(), date_column="purchase-date")
    assert table.column("report_date").to_pylist() == ["2026-11-20", "2026-11-20", None, "2026-11-20", None, None]
    _, table = parse(lake, data.encode(), date_column="purchase_date")  # the normalised name works too
    assert table.column("report_date").null_count == 3


def test_blank_header_line(lake):
    with pytest.raises(DocumentParseError) as err:
        parse(lake, b"\na\tb\n1\t2\n")
    assert err.value.line == 1


def test_a_storage_error_while_reading_is_not_a_parse_error(lake, monkeypatch):
    """Only a document that really is bad raises DocumentParseError (a later iteration quarantines those)."""
    put(lake, b"a\tb\n" + b"1\t2\n" * 200_000)
    real_open = type(lake).open_input
    opened = []

    class Flaky:
        def __init__(self, inner):
            self.inner, self.closed, self.served = inner, False, 0

        def read(self, n=-1):
            if self.served > 500_000:
                raise OSError("connection reset by peer")
            data = self.inner.read(n)
            self.served += len(data)
            return data

        def readable(self):
            return True

        def close(self):
            self.inner.close()

    def open_input(self, path):
        opened.append(path)
        stream = real_open(self, path)
        return pa.PythonFile(Flaky(stream), mode="r") if len(opened) == 2 else stream  # 1st open: header

    monkeypatch.setattr(type(lake), "open_input", open_input)
    with pytest.raises(OSError, match="connection reset") as err:
        parse_flat_file(lake, RAW, OUT, charset=None)
    assert not isinstance(err.value, DocumentParseError)
    assert lake.list("staging") == []


def test_missing_date_column_or_clashing_extra_column(lake):
    with pytest.raises(DocumentParseError, match="date column"):
        parse(lake, b"a\tb\n1\t2\n", date_column="purchase-date")
    with pytest.raises(DocumentParseError, match="clash"):
        parse(lake, b"report-id\tb\n1\t2\n", extra_columns={"report_id": "r1"})


def test_utf8_bom_is_not_part_of_the_first_column_name(lake):
    result, _ = parse(lake, "\ufeffsku\tqty\nA\t1\n".encode())
    assert result.columns == ["sku", "qty"]


def test_rows_split_over_row_groups_and_files_keep_order(lake):
    body = "".join(f"{i}\t{'v' * 100}\n" for i in range(25_000))  # ~2.6 MB: several parser blocks
    result, table = parse(lake, ("n\tv\n" + body).encode(), batch_rows=3_000, file_rows=10_000)
    assert result.rows == 25_000 and len(result.files) >= 2
    assert table.column("n").to_pylist() == [str(i) for i in range(25_000)]
    assert pq.ParquetFile(lake.open_input_file(result.files[0])).metadata.num_row_groups >= 3


def test_out_dir_must_be_in_staging(lake):
    put(lake, b"a\n1\n")
    with pytest.raises(ValueError):
        parse_flat_file(lake, RAW, "tables/x", charset=None)


def test_charset_labels():
    assert python_codec(None) == python_codec("UTF-8") == python_codec("utf8") == "utf-8"
    assert python_codec("Cp1252") == python_codec("windows-1252") == "cp1252"
    assert python_codec("windows-31j") == python_codec("Shift_JIS") == python_codec("SJIS") == "cp932"
    with pytest.raises(DocumentParseError):
        python_codec("no-such-charset")


def test_column_names():
    assert snake_case("amazon-order-id") == "amazon_order_id"
    assert snake_case("Amazon Order ID") == "amazon_order_id"
    assert snake_case("sellerSku") == "seller_sku"
    assert snake_case("item-price (EUR)") == "item_price_eur"
    assert normalise_columns(["item-name", "item_name", "", "Item Name"]) == [
        "item_name", "item_name_2", "column_3", "item_name_3"
    ]
