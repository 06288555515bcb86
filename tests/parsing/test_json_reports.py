"""JSON reports -> staging Parquet (sp_reports.parsing.json_reports): tables per array, types, breaks, memory."""

from __future__ import annotations

import dataclasses
import gzip
import json
import time
import tracemalloc
from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sp_reports.emulator.config import EmulatorConfig
from sp_reports.emulator.documents import served_bytes
from sp_reports.emulator.state import Store
from sp_reports.lake.storage import Lake
from sp_reports.parsing import DocumentParseError, parse_document
from sp_reports.parsing import json_reports, records
from sp_reports.parsing.json_reports import parse_json
from sp_reports.parsing.result import QUARANTINE_SCHEMA
from sp_reports.registry import ReportType, load_registry

SALES_AND_TRAFFIC = "GET_SALES_AND_TRAFFIC_REPORT"
US, DE, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528"
EXTRA = {"report_id": "R1", "marketplace_id": US, "report_created_time": "2026-11-22T10:00:00+00:00",
         "report_date": "2026-11-21"}  # fmt: skip
SYSTEM = ["report_id", "marketplace_id", "report_created_time", "report_date", "source_line"]
GENERIC = ReportType("GET_GENERIC_JSON", format="json", records=("items", "events"), date_column="createdAt",
                     natural_keys=("id",))  # fmt: skip


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture(scope="module")
def sales_report() -> ReportType:
    return load_registry()[SALES_AND_TRAFFIC]


@dataclasses.dataclass
class Parsed:
    parse_result: object
    tables: dict[str, pa.Table | None]
    quarantine: pa.Table


def parse(lake: Lake, data: bytes | str, report: ReportType = GENERIC, *, charset: str | None = "UTF-8",
          marketplace: str = US, via_dispatch: bool = False) -> Parsed:  # fmt: skip
    if isinstance(data, str):
        data = data.encode("utf-8")
    raw = f"raw/{report.report_type}/R1/doc-{time.monotonic_ns()}.bin"
    with lake.open_output(raw) as out:
        out.write(data)
    function = parse_document if via_dispatch else parse_json
    parse_result = function(lake, raw, f"staging/{report.table_name}/R1-{time.monotonic_ns()}", report=report,
                       marketplace_id=marketplace, charset=charset, compressed=None,
                       extra_columns={**EXTRA, "marketplace_id": marketplace})  # fmt: skip
    tables = {name: _read(lake, files) for name, files in parse_result.tables.items()}
    quarantine = _read(lake, parse_result.quarantine_files) or QUARANTINE_SCHEMA.empty_table()
    assert quarantine.schema.equals(QUARANTINE_SCHEMA)
    assert parse_result.rows_read == parse_result.rows_parsed + parse_result.rows_quarantined
    assert parse_result.rows_quarantined == quarantine.filter(pc.equal(quarantine["kind"], "row")).num_rows
    assert parse_result.values_quarantined == quarantine.filter(pc.equal(quarantine["kind"], "value")).num_rows
    main = tables.get("")
    assert (main.num_rows if main is not None else 0) == parse_result.rows_parsed
    return Parsed(parse_result, tables, quarantine)


def _read(lake: Lake, files: list[str]) -> pa.Table | None:
    if not files:
        return None
    return pa.concat_tables(pq.read_table(lake.fs_path(f)) for f in files)


def emulator_document(marketplace: str = US, rows: int = 20, options: dict | None = None, **quirks) -> tuple[bytes, str]:
    config = EmulatorConfig(rows_per_report=rows, **quirks)
    now = datetime(2026, 11, 22, tzinfo=timezone.utc).timestamp()
    report = Store(seed=5).create_report(config, now, SALES_AND_TRAFFIC, [marketplace], now - 6 * 86400, now, options or {})
    data, content_type = served_bytes(report)
    return data, content_type.split("charset=")[1]


# --- sales and traffic ----------------------------------------------------------------------------------


def test_sales_and_traffic_report(lake, sales_report):
    data, charset = emulator_document(US, rows=20)
    parsed = parse(lake, data, sales_report, charset=charset, via_dispatch=True)
    parse_result, by_date, by_asin = parsed.parse_result, parsed.tables[""], parsed.tables["sales_and_traffic_by_asin"]
    document = json.loads(gzip.decompress(data))
    assert by_date.num_rows == len(document["salesAndTrafficByDate"]) == 7
    assert by_asin.num_rows == 20
    assert (parse_result.rows_read, parse_result.rows_parsed, parse_result.rows_quarantined) == (7, 7, 0)
    assert parse_result.encoding["codec"] == "utf-8" and parse_result.compressed is True
    assert parse_result.columns[:3] == ["date", "sales_by_date_ordered_product_sales_amount",
                                   "sales_by_date_ordered_product_sales_currency_code"]  # fmt: skip
    assert parse_result.source_columns["sales_by_date_ordered_product_sales_amount"] == "salesByDate.orderedProductSales.amount"
    assert by_date.column_names == parse_result.columns + SYSTEM
    schema = by_date.schema
    assert schema.field("sales_by_date_ordered_product_sales_amount").type == pa.decimal128(20, 4)
    assert schema.field("sales_by_date_units_ordered").type == pa.int64()
    assert schema.field("sales_by_date_refund_rate").type == pa.float64()
    assert schema.field("traffic_by_date_buy_box_percentage").type == pa.float64()
    assert schema.field("date").type == pa.date32()  # declared `date: date` in the registry
    # B2B metrics exist on some days only: the columns are the union, null where absent.
    b2b = by_date.column("sales_by_date_units_ordered_b2b")
    assert 0 < b2b.null_count < 7
    first = document["salesAndTrafficByDate"][0]
    row = by_date.slice(0, 1).to_pylist()[0]
    assert row["date"].isoformat() == first["date"]
    assert row["sales_by_date_ordered_product_sales_amount"] == Decimal(str(first["salesByDate"]["orderedProductSales"]["amount"]))
    assert row["traffic_by_date_sessions"] == first["trafficByDate"]["sessions"]
    assert by_date.column("report_date").to_pylist() == [date.fromisoformat(r["date"]) for r in document["salesAndTrafficByDate"]]
    assert by_date.column("source_line").to_pylist() == list(range(1, 8))
    # The per-ASIN table: no date of its own, so the report's date.
    assert set(by_asin.column("report_date").to_pylist()) == {date(2026, 11, 21)}
    assert by_asin.column("source_line").to_pylist() == list(range(1, 21))
    assert by_asin.column("parent_asin").null_count == 0
    assert by_asin.column_names[-5:] == SYSTEM


def test_japanese_amounts_are_exact_decimals(lake, sales_report):
    data, charset = emulator_document(JP, rows=5, options={"asinGranularity": "SKU"})
    parsed = parse(lake, data, sales_report, charset=charset, marketplace=JP)
    amounts = parsed.tables[""].column("sales_by_date_ordered_product_sales_amount")
    assert amounts.type == pa.decimal128(20, 4) and all(v == v.to_integral_value() for v in amounts.to_pylist())
    assert parsed.tables["sales_and_traffic_by_asin"].column("sku").null_count == 0


def test_quirks_bom_crlf_drift(lake, sales_report):
    data, charset = emulator_document(US, rows=5, bom=True, crlf=True, column_drift="add", gzip_documents=False)
    parsed = parse(lake, data, sales_report, charset=charset)
    assert parsed.parse_result.encoding["bom"] is True and parsed.parse_result.compressed is False
    assert set(parsed.tables["sales_and_traffic_by_asin"].column("deemed_reseller_category").to_pylist()) == {"AU_VOEC"}
    data, charset = emulator_document(US, rows=5, column_drift="drop")
    assert "sales_by_date_total_order_items" not in parse(lake, data, sales_report, charset=charset).parse_result.columns


def test_header_only_and_empty(lake, sales_report):
    data, charset = emulator_document(US, header_only=True)
    parsed = parse(lake, data, sales_report, charset=charset)
    assert parsed.parse_result.rows_read == 0 and parsed.parse_result.tables == {"": [], "sales_and_traffic_by_asin": []}
    for data in (b"", gzip.compress(b""), b" \n"):
        parsed = parse(lake, data, sales_report)
        assert parsed.parse_result.rows_read == 0 and parsed.parse_result.quarantine_files == []
        assert parsed.parse_result.tables[""] == []


def test_bad_bytes_break_the_document(lake, sales_report):
    data, charset = emulator_document(US, rows=5, bad_bytes_rate=1.0)
    parsed = parse(lake, data, sales_report, charset=charset)
    (record,) = parsed.quarantine.to_pylist()
    assert record["line"] == 1 and "not valid utf-8" in record["reason"] and b"\x81 " in record["raw"]
    assert parsed.parse_result.rows_parsed == 0 and parsed.parse_result.rows_read == 1


# --- generic arrays ------------------------------------------------------------------------------------


def test_generic_arrays_types_and_nesting(lake):
    report = dataclasses.replace(GENERIC, columns={"createdAt": "datetime", "price.value": "decimal", "count": "integer"})
    doc = {
        "meta": {"version": 2, "items": ["not", "records"]},
        "items": [
            {"id": "a", "createdAt": "2026-11-20T14:03:12Z", "count": 3, "ratio": 1, "price": {"value": "12,50", "currency": "EUR"},
             "tags": ["x", "y"], "lines": [{"sku": "S1", "qty": 2}], "flag": True, "mixed": 5, "nothing": None},
            {"id": "b", "createdAt": "2026/11/21 09:00:00 JST", "count": "seven", "ratio": 0.5, "price": {"value": 3},
             "tags": [], "flag": False, "mixed": "five", "extra": {"deep": {"er": 1}}},
        ],
        "events": [{"kind": "shipped", "at": "2026-11-21"}],
    }
    parsed = parse(lake, json.dumps(doc), report, marketplace=DE)
    items, events = parsed.tables[""], parsed.tables["events"]
    assert parsed.parse_result.columns == ["id", "created_at", "count", "ratio", "price_value", "price_currency", "tags",
                                      "lines", "flag", "mixed", "nothing", "extra_deep_er"]  # fmt: skip
    types = {f.name: f.type for f in items.schema}
    assert types["created_at"] == pa.timestamp("us", tz="UTC")
    assert types["count"] == pa.int64() and types["ratio"] == pa.float64() and types["flag"] == pa.bool_()
    assert types["price_value"] == pa.decimal128(20, 4)
    assert types["tags"] == types["lines"] == types["mixed"] == types["nothing"] == pa.string()
    rows = items.to_pylist()
    assert [r["created_at"] for r in rows] == [datetime(2026, 11, 20, 14, 3, 12, tzinfo=timezone.utc),
                                               datetime(2026, 11, 21, 0, 0, tzinfo=timezone.utc)]  # fmt: skip
    assert [r["count"] for r in rows] == [3, None]  # "seven" is quarantined
    assert [r["ratio"] for r in rows] == [1.0, 0.5]
    assert [r["price_value"] for r in rows] == [Decimal("12.5000"), Decimal("3.0000")]  # decimal comma: DE
    assert json.loads(rows[0]["lines"]) == [{"sku": "S1", "qty": 2}] and rows[0]["tags"] == '["x","y"]'
    assert [r["mixed"] for r in rows] == ["5", "five"] and [r["flag"] for r in rows] == [True, False]
    assert [r["extra_deep_er"] for r in rows] == [None, 1]
    assert [r["report_date"] for r in rows] == [date(2026, 11, 20), date(2026, 11, 21)]
    (value,) = parsed.quarantine.to_pylist()
    assert (value["kind"], value["column"], value["line"], value["raw"]) == ("value", "count", 2, b"seven")
    assert events.to_pylist()[0]["kind"] == "shipped" and events.column("source_line").to_pylist() == [1]


def test_non_objects_and_missing_keys_are_quarantined_rows(lake):
    doc = '{"items": [{"id": "a"}, 42, {"name": "no id"}, {"id": "d"}], "events": ["x", {"kind": "k"}]}'
    parsed = parse(lake, doc)
    assert parsed.tables[""].column("id").to_pylist() == ["a", "d"]
    assert parsed.tables[""].column("source_line").to_pylist() == [1, 4]
    assert parsed.tables["events"].column("kind").to_pylist() == ["k"]
    reasons = [(r["line"], r["reason"], r["raw"]) for r in parsed.quarantine.to_pylist()]
    assert reasons == [
        (2, "element 2 of items is not a JSON object", b"42"),
        (3, "element 3 of items has no id", b'{"name": "no id"}'),
        (1, "element 1 of events is not a JSON object", b'"x"'),
    ]
    # Every quarantined row counts as read, whichever array it was in.
    assert (parsed.parse_result.rows_read, parsed.parse_result.rows_parsed, parsed.parse_result.rows_quarantined) == (5, 2, 3)


def test_name_clashes(lake):
    doc = '{"items": [{"id": "1", "marketplaceId": "M", "a": {"bC": 1}, "aB": {"c": 2}, "report_date": "x"}]}'
    parsed = parse(lake, doc)
    assert parsed.parse_result.columns == ["id", "document_marketplace_id", "a_b_c", "a_b_c_2", "document_report_date"]
    row = parsed.tables[""].to_pylist()[0]
    assert (row["document_marketplace_id"], row["marketplace_id"], row["a_b_c"], row["a_b_c_2"]) == ("M", US, 1, 2)


def test_missing_arrays_give_empty_tables(lake):
    parsed = parse(lake, '{"items": [{"id": "1"}], "other": [1, 2]}')
    assert parsed.parse_result.tables["events"] == [] and parsed.tables[""].num_rows == 1


# --- breaks -----------------------------------------------------------------------------------------------


def test_malformed_element_keeps_the_records_before(lake):
    doc = '{"items": [{"id": "1"}, {"id": "2"}, {"id": "3",, "x": 1}, {"id": "4"}], "events": []}'
    parsed = parse(lake, doc)
    assert parsed.tables[""].column("id").to_pylist() == ["1", "2"]
    (record,) = parsed.quarantine.to_pylist()
    assert record["line"] == 3 and record["reason"].startswith("malformed JSON: Expecting property name")
    assert b'"3",, "x"' in record["raw"]
    assert (parsed.parse_result.rows_read, parsed.parse_result.rows_quarantined) == (3, 1)


@pytest.mark.parametrize(
    "doc, line, reason",
    [
        ('{"items": [{"id": "1"} {"id": "2"}]}', 2, "malformed JSON: expected ',' or ']'"),
        ('{"items": [{"id": "1"}], "events": [] "x": 2}', 2, "malformed JSON: expected ',' or '}'"),
        ('{"items": [{"id": "1"}]} trailing', 2, "malformed JSON: data after the top-level object"),
        ('{"items": [{"id": "1"}, {"id": "2', 2, "truncated document: Unterminated string"),
        ('{"items": [{"id": "1"}, ', 2, "truncated document: expected a value"),
        ('{"items": [{"id": "1"}', 2, "truncated document: expected ',' or ']'"),
        ("{", 1, "truncated document"),
    ],
)
def test_breaks(lake, doc, line, reason):
    parsed = parse(lake, doc)
    (record,) = parsed.quarantine.to_pylist()
    assert record["kind"] == "row" and record["line"] == line and record["reason"].startswith(reason), record
    assert parsed.parse_result.rows_parsed == (0 if doc == "{" else 1)


def test_truncated_gzip_stream(lake, sales_report):
    data, charset = emulator_document(US, rows=400)
    full = parse(lake, data, sales_report, charset=charset)
    cut = parse(lake, data[: len(data) * 2 // 3], sales_report, charset=charset)
    (record,) = cut.quarantine.to_pylist()
    assert record["reason"].startswith("truncated document")
    assert cut.tables[""].num_rows == full.tables[""].num_rows  # the first array was complete
    asins = cut.tables["sales_and_traffic_by_asin"]
    assert 100 < asins.num_rows < 400 and record["line"] == asins.num_rows + 1
    assert asins.column("parent_asin").to_pylist() == full.tables["sales_and_traffic_by_asin"].column("parent_asin").to_pylist()[: asins.num_rows]
    assert cut.parse_result.rows_read == 8  # the 7 days and the break


@pytest.mark.parametrize(
    "data, message",
    [
        (b'[{"id": 1}]', "not a JSON object"),
        (b"<AmazonEnvelope/>", "not a JSON object"),
        (b"\x81\x81{}", "undecodable"),
        (gzip.compress(b'{"items": []}' * 500)[:12], "truncated"),
    ],
)
def test_unreadable_documents_raise(lake, data, message):
    with pytest.raises(DocumentParseError, match=message):
        parse(lake, data)
    assert not lake.list("staging")


def test_label_is_used_when_the_bytes_are_not_utf8(lake):
    doc = '{"items": [{"id": "1", "name": "Küchenmesser – 5-teilig"}]}'.encode("cp1252")
    parsed = parse(lake, doc, charset="Cp1252", marketplace=DE)
    assert parsed.parse_result.encoding["codec"] == "cp1252"
    assert parsed.tables[""].column("name").to_pylist() == ["Küchenmesser – 5-teilig"]
    parsed = parse(lake, '{"items": [{"id": "1", "name": "Küche"}]}'.encode(), charset="Cp1252", marketplace=DE)
    assert parsed.parse_result.encoding["codec"] == "utf-8" and "Cp1252 ignored" in parsed.parse_result.encoding["reason"]


def test_tiny_chunks_give_the_same_result(lake, sales_report, monkeypatch):
    """Values, numbers and strings split across reads and buffer compaction change nothing."""
    data, charset = emulator_document(DE, rows=15)
    expected = parse(lake, data, sales_report, charset=charset, marketplace=DE)
    monkeypatch.setattr(records, "READ_CHUNK", 7)
    monkeypatch.setattr(json_reports, "_COMPACT_AT", 50)
    monkeypatch.setattr(records, "SNIFF_BYTES", 3)
    got = parse(lake, data, sales_report, charset=charset, marketplace=DE)
    for name in ("", "sales_and_traffic_by_asin"):
        assert got.tables[name].drop_columns(["report_id"]).equals(expected.tables[name].drop_columns(["report_id"]))
    doc = '{"items": [{"id": "1", "n": 1234567890123}, {"id": "2", "n": -0.000125e3}], "events": [12345678901234567]}'
    parsed = parse(lake, doc)
    assert parsed.tables[""].column("n").to_pylist() == [1234567890123.0, -0.125]
    assert parsed.quarantine.to_pylist()[0]["raw"] == b"12345678901234567"


# --- size ---------------------------------------------------------------------------------------------------


def test_large_document_streams_with_bounded_memory(lake):
    records_count, note = 5_000, "y" * 10_000
    raw = "raw/big/doc.json"
    with lake.open_output(raw) as out, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as compressor:
        compressor.write(b'{"header": {"n": 1}, "items": [\n')
        for i in range(1, records_count + 1):
            extra = ', "late": true' if i == records_count else ""  # the schema is the union over all records
            sep = "," if i < records_count else ""
            compressor.write(f'{{"id": "{i}", "createdAt": "2026-11-{1 + i % 28:02d}", "v": {{"amount": {i}.25, '
                             f'"note": "{note}"}}{extra}}}{sep}\n'.encode())  # fmt: skip
        compressor.write(b'], "events": []}\n')
    tracemalloc.start()
    try:
        parse_result = parse_json(lake, raw, "staging/big/1", report=GENERIC, marketplace_id=US, charset=None,
                             compressed=True, extra_columns=EXTRA)  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parse_result.rows_read == parse_result.rows_parsed == records_count
    # The decompressed document is ~50 MB: never held at once.
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    files = [lake.fs_path(f) for f in parse_result.tables[""]]
    main = pq.read_table(files, columns=["v_amount", "late", "source_line"])
    assert main.column("late").null_count == records_count - 1
    assert main.column("v_amount")[-1].as_py() == Decimal(f"{records_count}.2500")
    assert main.column("source_line").to_pylist()[-2:] == [records_count - 1, records_count]
