"""XML reports -> staging Parquet (sp_reports.parsing.xml_reports): tables, types, encodings, breaks, memory."""

from __future__ import annotations

import dataclasses
import gzip
import json
import time
import tracemalloc
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sp_reports.emulator.config import EmulatorConfig
from sp_reports.emulator.documents import served_bytes
from sp_reports.emulator.state import Store
from sp_reports.lake.storage import Lake
from sp_reports.parsing import DocumentParseError, parse_document
from sp_reports.parsing.result import QUARANTINE_SCHEMA
from sp_reports.parsing.xml_reports import parse_xml
from sp_reports.registry import ReportType, load_registry

XML_ORDERS = "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
US, DE, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528"
EXTRA = {"report_id": "R1", "marketplace_id": US, "report_created_time": "2026-11-22T10:00:00+00:00",
         "report_date": "2026-11-21"}  # fmt: skip
SYSTEM = ["report_id", "marketplace_id", "report_created_time", "report_date", "source_line"]


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture(scope="module")
def orders_report() -> ReportType:
    return load_registry()[XML_ORDERS]


@dataclasses.dataclass
class Parsed:
    parse_result: object
    tables: dict[str, pa.Table]
    quarantine: pa.Table


def parse(lake: Lake, data: bytes, report: ReportType, *, charset: str | None = "UTF-8", marketplace: str = US,
          via_dispatch: bool = False) -> Parsed:  # fmt: skip
    raw = f"raw/{report.report_type}/R1/doc-{time.monotonic_ns()}.bin"
    with lake.open_output(raw) as out:
        out.write(data)
    function = parse_document if via_dispatch else parse_xml
    parse_result = function(lake, raw, f"staging/{report.table_name}/R1-{time.monotonic_ns()}", report=report,
                       marketplace_id=marketplace, charset=charset, compressed=data[:2] == b"\x1f\x8b",
                       extra_columns={**EXTRA, "marketplace_id": marketplace})  # fmt: skip
    tables = {name: _read(lake, files) for name, files in parse_result.tables.items()}
    quarantine = _read(lake, parse_result.quarantine_files) if parse_result.quarantine_files else QUARANTINE_SCHEMA.empty_table()
    assert quarantine.schema.equals(QUARANTINE_SCHEMA)
    # The invariant docs/parsing.md promises, whatever the document.
    assert parse_result.rows_read == parse_result.rows_parsed + parse_result.rows_quarantined
    assert parse_result.rows_quarantined == quarantine.filter(pa.compute.equal(quarantine["kind"], "row")).num_rows
    assert parse_result.values_quarantined == quarantine.filter(pa.compute.equal(quarantine["kind"], "value")).num_rows
    main = tables.get("")
    assert (main.num_rows if main is not None else 0) == parse_result.rows_parsed
    return Parsed(parse_result, tables, quarantine)


def _read(lake: Lake, files: list[str]) -> pa.Table | None:
    if not files:
        return None
    return pa.concat_tables(pq.read_table(lake.fs_path(f)) for f in files)


def envelope(*orders: str, encoding: str = "UTF-8") -> str:
    messages = "".join(f"<Message><MessageID>{i}</MessageID>{o}</Message>\n" for i, o in enumerate(orders, 1))
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        '<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">\n'
        "<Header><DocumentVersion>1.01</DocumentVersion></Header><MessageType>AllOrdersReport</MessageType>\n"
        f"{messages}</AmazonEnvelope>\n"
    )


def order(order_id: str = "111-0000001-0000001", purchased: str = "2026-11-20T14:03:12+00:00", *items: str,
          extra: str = "") -> str:  # fmt: skip
    items = items or (item(),)
    return (
        f"<Order><AmazonOrderID>{order_id}</AmazonOrderID><PurchaseDate>{purchased}</PurchaseDate>"
        "<LastUpdatedDate>2026-11-21T09:00:00+00:00</LastUpdatedDate><OrderStatus>Shipped</OrderStatus>"
        "<SalesChannel>Amazon.com</SalesChannel>"
        "<FulfillmentData><FulfillmentChannel>Amazon</FulfillmentChannel><ShipServiceLevel>Standard</ShipServiceLevel>"
        "<Address><City>Seattle</City><State>WA</State><PostalCode>98101</PostalCode><Country>US</Country></Address>"
        f"</FulfillmentData>{extra}{''.join(items)}</Order>"
    )


def item(sku: str = "SKU-1", principal: str = "12.34", tax: str = "0.99", name: str = "Water Bottle") -> str:
    return (
        f"<OrderItem><AmazonOrderItemCode>0001</AmazonOrderItemCode><ASIN>B000000001</ASIN><SKU>{sku}</SKU>"
        f"<ProductName>{name}</ProductName><Quantity>1</Quantity><ItemPrice>"
        f'<Component><Type>Principal</Type><Amount currency="USD">{principal}</Amount></Component>'
        f'<Component><Type>Tax</Type><Amount currency="USD">{tax}</Amount></Component>'
        "</ItemPrice></OrderItem>"
    )


def emulator_document(report_type: str, marketplace: str, rows: int = 20, **quirks) -> tuple[bytes, str]:
    config = EmulatorConfig(rows_per_report=rows, **quirks)
    now = datetime(2026, 11, 22, tzinfo=timezone.utc).timestamp()
    report = Store(seed=3).create_report(config, now, report_type, [marketplace], now - 7 * 86400, now, {})
    data, content_type = served_bytes(report)
    return data, content_type.split("charset=")[1]


# --- tables -----------------------------------------------------------------------------------------


def test_orders_and_items(lake, orders_report):
    doc = envelope(
        order("111-0000001-0000001", "2026-11-20T14:03:12+00:00", item("SKU-1"), item("SKU-2", "5.00", "0.40")),
        order("111-0000002-0000002", "2026-11-19T23:59:59-08:00", item("SKU-3", "7,50")),
    )
    parsed = parse(lake, doc.encode(), orders_report, via_dispatch=True)
    parse_result, orders, items = parsed.parse_result, parsed.tables[""], parsed.tables["order_item"]
    assert (parse_result.rows_read, parse_result.rows_parsed, parse_result.rows_quarantined) == (2, 2, 0)
    assert parse_result.columns == [
        "amazon_order_id", "purchase_date", "last_updated_date", "order_status", "sales_channel",
        "fulfillment_data_fulfillment_channel", "fulfillment_data_ship_service_level", "fulfillment_data_address_city",
        "fulfillment_data_address_state", "fulfillment_data_address_postal_code", "fulfillment_data_address_country",
    ]  # fmt: skip
    assert orders.column_names == parse_result.columns + SYSTEM
    assert parse_result.source_columns["fulfillment_data_address_city"] == "FulfillmentData/Address/City"
    assert parse_result.source_columns["amazon_order_id"] == "AmazonOrderID"
    # Declared datetime columns are typed; the rest are strings.
    assert orders.schema.field("purchase_date").type == pa.timestamp("us", tz="UTC")
    assert orders.schema.field("order_status").type == pa.string()
    assert orders.column("purchase_date").to_pylist() == [
        datetime(2026, 11, 20, 14, 3, 12, tzinfo=timezone.utc), datetime(2026, 11, 20, 7, 59, 59, tzinfo=timezone.utc)]
    assert orders.column("report_date").to_pylist() == [date(2026, 11, 20), date(2026, 11, 20)]
    assert orders.column("source_line").to_pylist() == [1, 2]
    assert orders.column("report_id").to_pylist() == ["R1", "R1"]
    assert orders.column("fulfillment_data_address_city").to_pylist() == ["Seattle", "Seattle"]

    assert items.column_names == [
        "amazon_order_id", "amazon_order_item_code", "asin", "sku", "product_name", "quantity",
        "item_price_principal_amount", "item_price_principal_amount_currency", "item_price_tax_amount",
        "item_price_tax_amount_currency", *SYSTEM,
    ]  # fmt: skip
    assert items.column("amazon_order_id").to_pylist() == ["111-0000001-0000001"] * 2 + ["111-0000002-0000002"]
    assert items.column("sku").to_pylist() == ["SKU-1", "SKU-2", "SKU-3"]
    assert items.column("item_price_principal_amount").to_pylist() == ["12.34", "5.00", "7,50"]
    assert items.column("item_price_tax_amount_currency").to_pylist() == ["USD"] * 3
    assert items.column("source_line").to_pylist() == [1, 1, 2]  # the parent's record index
    assert items.column("report_date").to_pylist() == [date(2026, 11, 20)] * 3  # the parent's


def test_declared_types_apply_in_child_tables(lake, orders_report):
    report = dataclasses.replace(orders_report, columns={**orders_report.columns, "Quantity": "integer",
                                                        "ItemPricePrincipalAmount": "decimal"})  # fmt: skip
    doc = envelope(order("1", "2026-11-20T14:03:12Z", item(principal="12.34"), item(principal="x")))
    parsed = parse(lake, doc.encode(), report)
    items = parsed.tables["order_item"]
    assert items.schema.field("quantity").type == pa.int64()
    assert items.schema.field("item_price_principal_amount").type == pa.decimal128(20, 4)
    assert [str(v) if v is not None else None for v in items.column("item_price_principal_amount").to_pylist()] == ["12.3400", None]
    assert parsed.parse_result.values_quarantined == 1
    record = parsed.quarantine.to_pylist()[0]
    assert (record["kind"], record["column"], record["line"], record["raw"]) == ("value", "item_price_principal_amount", 1, b"x")


def test_cast_failures_are_quarantined_values(lake, orders_report):
    doc = envelope(order("1", "yesterday-ish"), order("2", "2026-11-20T14:03:12Z"))
    parsed = parse(lake, doc.encode(), orders_report)
    orders = parsed.tables[""]
    assert orders.column("purchase_date").to_pylist()[0] is None
    assert orders.num_rows == 2 and parsed.parse_result.values_quarantined == 1
    record = parsed.quarantine.to_pylist()[0]
    assert (record["kind"], record["column"], record["line"], record["raw"]) == ("value", "purchase_date", 1, b"yesterday-ish")
    # No date of its own: the row falls back to the report's date.
    assert orders.column("report_date").to_pylist() == [date(2026, 11, 21), date(2026, 11, 20)]


def test_repeated_elements_namespaces_attributes_and_empty_values(lake, orders_report):
    doc = (
        '<?xml version="1.0"?><AmazonEnvelope xmlns="urn:amazon:envelope"><!-- generated -->'
        "<Message><Order><AmazonOrderID>1</AmazonOrderID><PurchaseDate>2026-11-20</PurchaseDate>"
        "<PromotionID>A</PromotionID><PromotionID>B</PromotionID><MerchantOrderID/>"
        '<Gift wrapped="yes"><Message>Happy birthday &amp; more</Message></Gift>'
        "</Order></Message></AmazonEnvelope>"
    )
    parsed = parse(lake, doc.encode(), orders_report)
    row = parsed.tables[""].to_pylist()[0]
    assert row["amazon_order_id"] == "1"
    assert json.loads(row["promotion_id"]) == ["A", "B"]
    assert row["merchant_order_id"] is None
    assert row["gift_wrapped"] == "yes" and row["gift_message"] == "Happy birthday & more"
    assert "order_item" not in parsed.tables or parsed.tables["order_item"] is None


def test_records_named_in_the_registry(lake):
    report = ReportType("GET_XML_RETURNS_DATA_BY_RETURN_DATE", format="xml", records=("return_details", "item_details"),
                        date_column="return_request_date", natural_keys=("order_id",))  # fmt: skip
    doc = (
        "<root><return_details><order_id>1</order_id><return_request_date>2026-11-20</return_request_date>"
        "<item_details><item_name>a</item_name></item_details><item_details><item_name>b</item_name></item_details>"
        "</return_details><return_details><order_id>2</order_id></return_details></root>"
    )
    parsed = parse(lake, doc.encode(), report)
    assert parsed.tables[""].column("order_id").to_pylist() == ["1", "2"]
    details = parsed.tables["item_details"]
    assert details.column("order_id").to_pylist() == ["1", "1"]
    assert details.column("item_name").to_pylist() == ["a", "b"]


def test_missing_natural_key_quarantines_the_record(lake, orders_report):
    doc = envelope(order("1"), order(""), order("3"))
    parsed = parse(lake, doc.encode(), orders_report)
    assert parsed.tables[""].column("amazon_order_id").to_pylist() == ["1", "3"]
    assert parsed.tables[""].column("source_line").to_pylist() == [1, 3]
    assert parsed.tables["order_item"].column("amazon_order_id").to_pylist() == ["1", "3"]
    (record,) = parsed.quarantine.to_pylist()
    assert (record["kind"], record["line"]) == ("row", 2) and "AmazonOrderID" in record["reason"]
    assert record["raw"].startswith(b"<Order")
    assert (parsed.parse_result.rows_read, parsed.parse_result.rows_parsed, parsed.parse_result.rows_quarantined) == (3, 2, 1)


# --- encodings ------------------------------------------------------------------------------------------


def test_japanese_document_declared_shift_jis_is_cp932(lake, orders_report):
    data, charset = emulator_document(XML_ORDERS, JP)
    assert charset == "windows-31j"
    parsed = parse(lake, data, orders_report, charset=charset, marketplace=JP)
    assert parsed.parse_result.encoding["codec"] == "cp932"
    assert 'encoding="Shift_JIS"' in parsed.parse_result.encoding["reason"]
    assert parsed.parse_result.compressed is True
    assert parsed.parse_result.rows_parsed == 20 and parsed.quarantine.num_rows == 0
    names = "".join(parsed.tables["order_item"].column("product_name").to_pylist())
    assert any(ch in names for ch in "①髙～")
    assert set(parsed.tables[""].column("sales_channel").to_pylist()) == {"Amazon.co.jp"}
    assert set(parsed.tables["order_item"].column("item_price_principal_amount_currency").drop_null().to_pylist()) == {"JPY"}


def test_declaration_beats_a_wrong_content_type(lake, orders_report):
    data, charset = emulator_document(XML_ORDERS, DE, mislabel_charset="UTF-8")
    assert charset == "UTF-8"
    parsed = parse(lake, data, orders_report, charset=charset, marketplace=DE)
    assert parsed.parse_result.encoding["codec"] == "cp1252"
    assert "Content-Type charset UTF-8 ignored" in parsed.parse_result.encoding["reason"]
    assert parsed.parse_result.rows_parsed == 20 and parsed.quarantine.num_rows == 0
    assert any(ch in "".join(parsed.tables[""].column("fulfillment_data_address_city").to_pylist()) for ch in "üöä")


def test_content_type_is_used_without_a_declaration(lake, orders_report):
    doc = envelope(order("1", "2026-11-20T14:03:12Z", item(name="Küchenmesser"))).replace(' encoding="UTF-8"', "")
    parsed = parse(lake, doc.encode("cp1252"), orders_report, charset="Cp1252", marketplace=DE)
    assert parsed.parse_result.encoding["codec"] == "cp1252"
    assert parsed.tables["order_item"].column("product_name").to_pylist() == ["Küchenmesser"]


def test_bom_crlf_and_no_gzip(lake, orders_report):
    data, charset = emulator_document(XML_ORDERS, US, bom=True, crlf=True, gzip_documents=False)
    assert data.startswith(b"\xef\xbb\xbf<?xml")
    parsed = parse(lake, data, orders_report, charset=charset)
    assert parsed.parse_result.encoding["bom"] is True and parsed.parse_result.compressed is False
    assert parsed.parse_result.rows_parsed == 20


def test_gzip_detected_by_magic_bytes_not_the_hint(lake, orders_report, tmp_path):
    data = gzip.compress(envelope(order("1")).encode())
    raw = "raw/x/gz.bin"
    with lake.open_output(raw) as out:
        out.write(data)
    parse_result = parse_xml(lake, raw, "staging/x/1", report=orders_report, marketplace_id=US, charset=None,
                        compressed=False, extra_columns=EXTRA)  # fmt: skip
    assert parse_result.compressed is True and parse_result.rows_parsed == 1


# --- breaks ----------------------------------------------------------------------------------------------


def test_malformed_xml_keeps_the_records_before_the_break(lake, orders_report):
    doc = envelope(order("1"), order("2")).replace("</AmazonEnvelope>", "") + (
        "<Message><Order><AmazonOrderID>3</AmazonOrderID><Broken></Order></Message>\n" + order("4") + "</AmazonEnvelope>")
    parsed = parse(lake, doc.encode(), orders_report)
    assert parsed.tables[""].column("amazon_order_id").to_pylist() == ["1", "2"]
    (record,) = parsed.quarantine.to_pylist()
    assert record["kind"] == "row" and record["line"] == 3 and record["column"] is None
    assert record["reason"].startswith("malformed XML:") and "XML line" in record["reason"]
    assert b"<Broken>" in record["raw"]
    assert (parsed.parse_result.rows_read, parsed.parse_result.rows_parsed, parsed.parse_result.rows_quarantined) == (3, 2, 1)


def test_mismatched_tag_in_the_first_record(lake, orders_report):
    doc = envelope(order("1").replace("</SalesChannel>", "</Channel>"), order("2"))
    parsed = parse(lake, doc.encode(), orders_report)
    assert parsed.tables.get("") is None or parsed.tables[""].num_rows == 0
    assert parsed.parse_result.rows_read == 1 and parsed.parse_result.rows_quarantined == 1


def test_truncated_gzip_stream(lake, orders_report):
    data, charset = emulator_document(XML_ORDERS, US, rows=300)
    cut = data[: len(data) // 2]
    parsed = parse(lake, cut, orders_report, charset=charset)
    landed = parsed.tables[""].num_rows
    assert 50 < landed < 300
    (record,) = parsed.quarantine.to_pylist()
    assert record["reason"].startswith("truncated document") and record["line"] == landed + 1
    ids = parsed.tables[""].column("amazon_order_id").to_pylist()
    full = parse(lake, data, orders_report, charset=charset).tables[""].column("amazon_order_id").to_pylist()
    assert ids == full[:landed]


def test_truncated_plain_document(lake, orders_report):
    doc = envelope(order("1"), order("2"), order("3"))
    cut = doc[: doc.index("<AmazonOrderID>3") + 20]
    parsed = parse(lake, cut.encode(), orders_report)
    assert parsed.tables[""].column("amazon_order_id").to_pylist() == ["1", "2"]
    (record,) = parsed.quarantine.to_pylist()
    assert record["reason"].startswith("truncated document") and record["line"] == 3


def test_undecodable_bytes_break_the_document(lake, orders_report):
    data, charset = emulator_document(XML_ORDERS, DE, rows=30, bad_bytes_rate=0.05)
    parsed = parse(lake, data, orders_report, charset=charset, marketplace=DE)
    (record,) = parsed.quarantine.to_pylist()
    assert "not valid cp1252" in record["reason"] and b"\x81 " in record["raw"]
    assert parsed.parse_result.rows_parsed == record["line"] - 1 < 30


def test_empty_and_header_only_documents(lake, orders_report):
    for data in (b"", gzip.compress(b""), b"  \n"):
        parsed = parse(lake, data, orders_report)
        assert (parsed.parse_result.rows_read, parsed.parse_result.tables, parsed.parse_result.quarantine_files) == (0, {"": [], "order_item": []}, [])
    data, charset = emulator_document(XML_ORDERS, US, header_only=True)
    parsed = parse(lake, data, orders_report, charset=charset)
    assert parsed.parse_result.rows_read == 0 and parsed.parse_result.tables[""] == [] and parsed.parse_result.columns == []


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"errorDetails": "Report processing failed."}', "not an XML document"),
        (b'{"errorDetails": "<b>Report processing failed.</b>"}', "not an XML document"),
        (b'<?xml version="1.0" encoding="x-klingon"?><a/>', "unknown encoding"),
        (b"\x81\x81<a/>", "undecodable"),
        (gzip.compress(b"<AmazonEnvelope>" * 1000)[:15], "truncated"),
    ],
)
def test_unreadable_documents_raise(lake, orders_report, data, message):
    with pytest.raises(DocumentParseError, match=message):
        parse(lake, data, orders_report)
    assert not lake.list("staging")


def test_column_drift_adds_a_column(lake, orders_report):
    data, charset = emulator_document(XML_ORDERS, US, column_drift="add")
    parsed = parse(lake, data, orders_report, charset=charset)
    assert set(parsed.tables[""].column("deemed_reseller_category").to_pylist()) == {"AU_VOEC"}
    data, charset = emulator_document(XML_ORDERS, US, column_drift="drop")
    assert "sales_channel" not in parse(lake, data, orders_report, charset=charset).parse_result.columns


# --- size --------------------------------------------------------------------------------------------------


def test_large_document_streams_with_bounded_memory(lake, orders_report):
    records, note = 5_000, "x" * 10_000
    raw = "raw/big/doc.bin"
    with lake.open_output(raw) as out, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as compressor:
        compressor.write(b'<?xml version="1.0" encoding="UTF-8"?><AmazonEnvelope><Header/>\n')
        for i in range(1, records + 1):
            # Only the very last record has a LastUpdatedDate: the schema is the union over all records.
            last = "<LastUpdatedDate>2026-11-21T00:00:00Z</LastUpdatedDate>" if i == records else ""
            compressor.write(
                f"<Message><MessageID>{i}</MessageID><Order><AmazonOrderID>{i:012d}</AmazonOrderID>"
                f"<PurchaseDate>2026-11-{1 + i % 28:02d}T10:00:00Z</PurchaseDate>{last}<Note>{note}</Note>"
                f"<OrderItem><SKU>S{i}</SKU></OrderItem></Order></Message>\n".encode()
            )
        compressor.write(b"</AmazonEnvelope>\n")
    tracemalloc.start()
    try:
        parse_result = parse_xml(lake, raw, "staging/big/1", report=orders_report, marketplace_id=US, charset="UTF-8",
                            compressed=True, extra_columns=EXTRA)  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parse_result.rows_read == parse_result.rows_parsed == records
    # The decompressed document is ~50 MB (its rows more, as Python objects): never held at once.
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    files = [lake.fs_path(f) for f in parse_result.tables[""]]
    main = pq.read_table(files, columns=["last_updated_date", "source_line"])
    assert main.num_rows == records and main.column("last_updated_date").null_count == records - 1
    assert main.column("source_line").to_pylist()[-3:] == [records - 2, records - 1, records]
    assert pq.ParquetFile(files[-1]).read_row_group(0, columns=["note"]).column("note")[0].as_py() == note
    items = pq.read_table([lake.fs_path(f) for f in parse_result.tables["order_item"]])
    assert items.num_rows == records and items.column("amazon_order_id")[-1].as_py() == f"{records:012d}"
