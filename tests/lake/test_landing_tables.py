"""land_tables: MERGE on natural keys, replace by report, extra and quarantine tables, schema evolution,
atomicity and concurrent landings. The staging files are written here the way the parser writes them
(typed columns + report_id, marketplace_id, report_created_time, report_date, source_line)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from decimal import Decimal
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

import sp_reports.lake.datafiles as datafiles
import sp_reports.lake.delta as delta
import sp_reports.lake.keyindex as keyindex
from sp_reports.columns import natural_key_columns
from sp_reports.lake import LandingError, land_tables, read_table
from sp_reports.lake.delta import source_columns
from sp_reports.parsing.result import StagedDataFiles, read_staged
from sp_reports.registry import ReportType

SELLER = "A3EMULATORSELLER"

TABLE = "get_test_orders"
ORDERS = ReportType("GET_TEST_ORDERS", natural_keys=("amazon-order-id", "sku"),
                    header_aliases={"Bestellnummer": "amazon-order-id"})
SNAPSHOT = ReportType("GET_TEST_SNAPSHOT")  # no natural keys: replace by report
DE, FR = "A1PA6795UKMFR9", "A13V1IB3VIYZZH"
HEADERS = {"amazon_order_id": "amazon-order-id", "sku": "sku", "quantity": "quantity", "price": "item-price",
           "gift_message": "gift-message"}
SYSTEM = {"selling_partner_id", "report_id", "marketplace_id", "report_created_time", "report_date", "source_line"}


@dataclass
class StagedResult:
    """What sp_reports.parsing.parse_document returns, as far as the landing reads it."""

    tables: dict[str, list[str]]
    quarantine_files: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    source_columns: dict[str, str] = field(default_factory=dict)


def created(report_id: str) -> str:
    """Reports created in the order of their numbers, one hour apart."""
    return f"2026-11-{int(report_id[-2:]) % 28 + 1:02d}T10:00:00Z"


def stage_file(lake, table: str, report_id: str, rows: list[dict], *, marketplace: str = DE,
               created_time: str | None = None, name: str = "part-0", first_line: int = 2, lines=None,
               seller: str = SELLER) -> str:
    """A staging Parquet file of typed rows (dicts of document columns) plus the system columns."""
    n = len(rows)
    columns: dict[str, pa.Array] = {}
    names = [k for k in dict.fromkeys(k for r in rows for k in r) if k != "_date"] or ["amazon_order_id", "sku"]
    types = {"quantity": pa.int64(), "price": pa.decimal128(20, 4)}
    for column in names:
        values = [r.get(column) for r in rows]
        text = any(isinstance(v, str) for v in values) and column != "price"
        columns[column] = pa.array(values, pa.string() if text else types.get(column, pa.string()))
    columns["selling_partner_id"] = pa.array([seller] * n, pa.string())
    columns["report_id"] = pa.array([report_id] * n, pa.string())
    columns["marketplace_id"] = pa.array([marketplace] * n, pa.string())
    columns["report_created_time"] = pa.array([created_time or created(report_id)] * n, pa.string())
    if "report_date" not in columns:
        columns["report_date"] = pa.array([r.get("_date", dt.date(2026, 11, 20)) for r in rows], pa.date32())
    columns["source_line"] = pa.array(lines or list(range(first_line, first_line + n)), pa.int64())
    data = pa.table(columns)
    data = data.replace_schema_metadata(
        {"sp_reports.source_columns": json.dumps({c: HEADERS.get(c, c) for c in names})}
    )
    if STAGING["style"] == "data files":  # as the flat-file parser stages them (and the landing adopts them)
        writer = StagedDataFiles(lake, f"staging/{table}/{seller}/{report_id}/{name}-{uuid.uuid4().hex[:8]}", data.schema,
                                 delta.DEFAULT_PARTITION_BY, key_columns=natural_key_columns(ORDERS))
        for batch in data.to_batches():
            writer.write(batch)
        return writer.close(always=True)
    return [_write(lake, f"staging/{table}/{seller}/{report_id}/{name}-{uuid.uuid4().hex[:8]}.parquet", data)]


# Every test runs with both kinds of staging files: plain staging Parquet (XML/JSON documents, older
# parses) and staged data files (flat files), which the landing adopts when their types fit the table.
STAGING = {"style": "parquet"}


@pytest.fixture(autouse=True, params=["parquet", "data files"])
def staging_style(request, monkeypatch):
    monkeypatch.setitem(STAGING, "style", request.param)
    return request.param


def _write(lake, path: str, table: pa.Table) -> str:
    with lake.open_output(path) as f:
        pq.write_table(table, f)
    return path


def staged_result(lake, report_id: str, rows: list[dict], **kwargs) -> StagedResult:
    paths = stage_file(lake, TABLE, report_id, rows, **kwargs)
    columns = [c for c in read_staged(lake, paths[0]).schema.names if c not in SYSTEM]
    return StagedResult({"": paths}, columns=columns)


def order(order_id: str, sku: str = "SKU-1", quantity: int | None = 1, **more) -> dict:
    return {"amazon_order_id": order_id, "sku": sku, "quantity": quantity, **more}


def land(lake, report_id: str, rows: list[dict], report: ReportType = ORDERS, **kwargs):
    return land_tables(lake, TABLE, staged_result(lake, report_id, rows, **kwargs), report=report, report_id=report_id, selling_partner_id=SELLER)


def rows(lake, table: str = TABLE, columns=("marketplace_id", "amazon_order_id", "sku", "quantity", "report_id")):
    data = read_table(lake, table)
    present = [c for c in columns if c in data.column_names]
    return sorted(tuple(r[c] for c in present) for r in data.select(present).to_pylist())


def keys_once(lake) -> bool:
    data = read_table(lake, TABLE)
    keys = list(zip(data["marketplace_id"].to_pylist(), data["amazon_order_id"].to_pylist(), data["sku"].to_pylist()))
    return len(keys) == len(set(keys))


# ----------------------------------------------------------------------------------------- MERGE


def test_merge_latest_report_wins_in_order(lake):
    first = land(lake, "r01", [order("o1", quantity=1), order("o2", quantity=2)])
    assert first.tables[""].mode == "merge" and first.tables[""].rows == 2
    second = land(lake, "r02", [order("o1", quantity=10), order("o3", quantity=30)])
    assert second.tables[""].replaced == 1 and second.tables[""].rows == 2
    assert rows(lake) == [(DE, "o1", "SKU-1", 10, "r02"), (DE, "o2", "SKU-1", 2, "r01"), (DE, "o3", "SKU-1", 30, "r02")]


def test_merge_latest_report_wins_out_of_order(lake):
    land(lake, "r02", [order("o1", quantity=10), order("o3", quantity=30)])
    late = land(lake, "r01", [order("o1", quantity=1), order("o2", quantity=2)])  # older report, landed later
    assert late.tables[""].superseded == 1 and late.tables[""].rows == 1 and late.tables[""].replaced == 0
    assert rows(lake) == [(DE, "o1", "SKU-1", 10, "r02"), (DE, "o2", "SKU-1", 2, "r01"), (DE, "o3", "SKU-1", 30, "r02")]


def test_merge_same_created_time_orders_by_report_id_numerically(lake):
    same = "2026-11-20T10:00:00+00:00"
    land(lake, "9", [order("o1", quantity=9)], created_time=same)
    land(lake, "10", [order("o1", quantity=10)], created_time="2026-11-20T10:00:00Z")  # same instant, other spelling
    land(lake, "9", [order("o1", quantity=9)], created_time=same)  # report 9 < 10 although "9" > "10" as text
    assert rows(lake) == [(DE, "o1", "SKU-1", 10, "10")]


def test_merge_keeps_the_last_line_of_in_document_duplicates(lake):
    result = land(lake, "r01", [order("o1", quantity=1), order("o2", quantity=2), order("o1", quantity=3)],
                  lines=[5, 6, 9])
    assert result.tables[""].duplicates == 1 and result.tables[""].rows == 2
    assert rows(lake) == [(DE, "o1", "SKU-1", 3, "r01"), (DE, "o2", "SKU-1", 2, "r01")]
    # The line number decides, not the order of the rows in the staging files.
    land(lake, "r02", [order("o7", quantity=70), order("o7", quantity=7)], lines=[12, 4])
    assert (DE, "o7", "SKU-1", 70, "r02") in rows(lake)


def test_merge_relanding_is_idempotent(lake):
    land(lake, "r01", [order("o1"), order("o2", sku="SKU-2")])
    land(lake, "r02", [order("o2", sku="SKU-2", quantity=5), order("o3")])
    before = read_table(lake, TABLE).sort_by([("amazon_order_id", "ascending"), ("sku", "ascending")])
    for report_id, batch in (("r01", [order("o1"), order("o2", sku="SKU-2")]),
                             ("r02", [order("o2", sku="SKU-2", quantity=5), order("o3")])):
        land(lake, report_id, batch)
        after = read_table(lake, TABLE).sort_by([("amazon_order_id", "ascending"), ("sku", "ascending")])
        assert after.select(before.column_names).equals(before)
    assert keys_once(lake)


def test_merge_a_row_appears_once_however_many_reports_carried_it(lake):
    for i in range(1, 6):  # overlapping windows, as 30-day reports requested daily are
        land(lake, f"r{i:02d}", [order(f"o{j}", quantity=i) for j in range(i, i + 4)])
    data = read_table(lake, TABLE)
    assert data.num_rows == 8 and keys_once(lake)
    latest = {r["amazon_order_id"]: r["quantity"] for r in data.to_pylist()}
    assert latest == {f"o{j}": min(j, 5) for j in range(1, 9)}


def test_merge_isolates_marketplaces(lake):
    land(lake, "r01", [order("o1", quantity=1)], marketplace=DE)
    land(lake, "r02", [order("o1", quantity=2)], marketplace=FR)
    land(lake, "r03", [order("o1", quantity=3)], marketplace=DE)
    assert rows(lake) == [(FR, "o1", "SKU-1", 2, "r02"), (DE, "o1", "SKU-1", 3, "r03")]


def test_merge_moves_a_key_to_its_new_partition(lake):
    # Snapshots partition by the report's day: tomorrow's report carries the same sku under a new date.
    land(lake, "r01", [order("o1", quantity=1, _date=dt.date(2026, 11, 20))])
    land(lake, "r02", [order("o1", quantity=2, _date=dt.date(2026, 11, 21))])
    data = read_table(lake, TABLE)
    assert data.num_rows == 1 and data["report_date"].to_pylist() == [dt.date(2026, 11, 21)]


def test_merge_null_keys_are_equal(lake):
    land(lake, "r01", [order("o1", sku=None, quantity=1)])
    land(lake, "r02", [order("o1", sku=None, quantity=2)])
    land(lake, "r02", [order("o1", sku=None, quantity=2)])
    assert rows(lake) == [(DE, "o1", None, 2, "r02")]


def test_merge_with_schema_evolution(lake):
    land(lake, "r01", [order("o1", quantity=1), order("o2", quantity=2)])
    wider = land(lake, "r02", [{"amazon_order_id": "o1", "sku": "SKU-1", "gift_message": "hi"}])
    assert wider.columns_added == ["gift_message"] and wider.columns_missing == ["quantity"]
    data = {r["amazon_order_id"]: r for r in read_table(lake, TABLE).to_pylist()}
    # The updated row is the new report's row: the column the document lacks lands as null.
    assert data["o1"]["gift_message"] == "hi" and data["o1"]["quantity"] is None
    assert data["o2"]["gift_message"] is None and data["o2"]["quantity"] == 2
    assert source_columns(lake, TABLE)["gift_message"] == "gift-message"
    narrow = land(lake, "r03", [order("o2", quantity=20)])
    assert narrow.columns_added == [] and narrow.columns_missing == ["gift_message"]
    assert keys_once(lake)


# 20000: some rows are still pending (not spilled) when the buckets are first read.
@pytest.mark.parametrize("spill_buffer", [8192, 20000])
def test_merge_in_spilled_buckets_matches_the_in_memory_merge(lake, monkeypatch, tmp_path, spill_buffer):
    monkeypatch.setattr(keyindex, "BUCKET_BYTES", 4096)  # ~25 rows a bucket: many buckets, spilled to disk
    monkeypatch.setattr(keyindex, "SPILL_BUFFER_BYTES", spill_buffer)
    monkeypatch.setattr(datafiles, "BUFFER_BYTES", 16384)  # many small pools and row groups
    first = [order(f"o{i}", sku=f"S{i % 7}", quantity=i, _date=dt.date(2026, 11, 1 + i % 9)) for i in range(600)]
    land(lake, "r01", first + first[:50], lines=list(range(2, 652)))  # 50 in-document duplicates
    second = [order(f"o{i}", sku=f"S{i % 7}", quantity=-i, _date=dt.date(2026, 11, 1 + i % 9))
              for i in range(300, 900)]
    spill = tmp_path / "spill"
    spill.mkdir()
    result = land_tables(lake, TABLE, staged_result(lake, "r02", second), report=ORDERS, report_id="r02",
                         spill_dir=str(spill), selling_partner_id=SELLER)
    assert result.tables[""].replaced == 300 and result.tables[""].rows == 600
    late = land(lake, "r00", [order(f"o{i}", sku=f"S{i % 7}", quantity=0) for i in range(850, 1000)])
    assert late.tables[""].superseded == 50 and late.tables[""].rows == 100
    data = {r["amazon_order_id"]: r["quantity"] for r in read_table(lake, TABLE).to_pylist()}
    assert len(data) == 1000 and keys_once(lake)
    assert all(data[f"o{i}"] == (i if i < 300 else -i if i < 900 else 0) for i in range(1000))
    assert list(spill.iterdir()) == []  # spill files removed


def test_merge_of_an_empty_document_changes_nothing(lake):
    land(lake, "r01", [order("o1")])
    version = DeltaTable(lake.table_uri(TABLE)).version()
    result = land_tables(lake, TABLE, StagedResult({"": []}), report=ORDERS, report_id="r02", selling_partner_id=SELLER)
    assert result.tables[""].version == version and rows(lake) == [(DE, "o1", "SKU-1", 1, "r01")]


# ----------------------------------------------------------------------------------------- replace


def test_replace_by_report(lake):
    land(lake, "r01", [order("o1"), order("o2")], report=SNAPSHOT)
    land(lake, "r02", [order("o1"), order("o3")], report=SNAPSHOT)
    result = land(lake, "r01", [order("o9")], report=SNAPSHOT)
    assert result.tables[""].mode == "replace" and result.tables[""].replaced == 2
    assert rows(lake) == [(DE, "o1", "SKU-1", 1, "r02"), (DE, "o3", "SKU-1", 1, "r02"), (DE, "o9", "SKU-1", 1, "r01")]
    land_tables(lake, TABLE, StagedResult({"": []}), report=SNAPSHOT, report_id="r02", selling_partner_id=SELLER)  # an empty document
    assert rows(lake) == [(DE, "o9", "SKU-1", 1, "r01")]


def test_replace_rewrites_files_shared_with_other_reports(lake):
    for report_id in ("r01", "r02", "r03"):
        land(lake, report_id, [order(f"{report_id}-{i}") for i in range(3)], report=SNAPSHOT)
    DeltaTable(lake.table_uri(TABLE)).optimize.compact()  # one file now holds all three reports
    assert len(DeltaTable(lake.table_uri(TABLE)).file_uris()) == 1
    result = land(lake, "r02", [order("new")], report=SNAPSHOT)
    assert result.tables[""].replaced == 3
    assert [r[1] for r in rows(lake)] == ["new", "r01-0", "r01-1", "r01-2", "r03-0", "r03-1", "r03-2"]


def test_extra_and_quarantine_tables(lake):
    main = stage_file(lake, TABLE, "r01", [order("o1"), order("o2")], name="main")
    summary = stage_file(lake, TABLE, "r01", [{"total": "12.50", "currency": "EUR"}], name="summary")
    quarantine = _write(lake, "staging/x/r01/quarantine.parquet", _quarantine("r01", [7, 9]))
    result = land_tables(lake, TABLE, StagedResult({"": main, "summary": summary}, [quarantine]),
                         report=ORDERS, report_id="r01", selling_partner_id=SELLER)
    assert set(result.tables) == {"", "summary"}
    assert result.tables["summary"].name == f"{TABLE}__summary" and result.tables["summary"].mode == "replace"
    assert result.quarantine.name == f"{TABLE}__quarantine" and result.quarantine.rows == 2
    assert read_table(lake, f"{TABLE}__summary").column("total").to_pylist() == ["12.50"]
    q = DeltaTable(lake.table_uri(f"{TABLE}__quarantine"))
    assert q.metadata().partition_columns == ["marketplace_id"]
    assert read_table(lake, f"{TABLE}__quarantine").column("line").to_pylist() == [7, 9]
    assert lake.list("staging") == []  # all staging files deleted once every table committed

    # Relanding replaces the report's summary and quarantine records; a clean document clears them.
    main = stage_file(lake, TABLE, "r01", [order("o1")], name="main")
    summary = stage_file(lake, TABLE, "r01", [{"total": "10.00", "currency": "EUR"}], name="summary")
    result = land_tables(lake, TABLE, StagedResult({"": main, "summary": summary}, []), report=ORDERS,
                         report_id="r01", selling_partner_id=SELLER)
    assert read_table(lake, f"{TABLE}__summary").column("total").to_pylist() == ["10.00"]
    assert result.quarantine.rows == 0 and read_table(lake, f"{TABLE}__quarantine").num_rows == 0
    assert rows(lake) == [(DE, "o1", "SKU-1", 1, "r01"), (DE, "o2", "SKU-1", 1, "r01")]  # merged, not replaced


def test_no_quarantine_table_without_quarantine_records(lake):
    result = land(lake, "r01", [order("o1")])
    assert result.quarantine is None and not lake.exists(f"tables/{TABLE}__quarantine/_delta_log/00000000000000000000.json")


def _quarantine(report_id: str, lines: list[int]) -> pa.Table:
    n = len(lines)
    return pa.table({
        "selling_partner_id": pa.array([SELLER] * n),
        "report_id": pa.array([report_id] * n), "report_type": pa.array(["GET_TEST_ORDERS"] * n),
        "marketplace_id": pa.array([DE] * n), "line": pa.array(lines, pa.int64()), "kind": pa.array(["row"] * n),
        "reason": pa.array(["undecodable"] * n), "column": pa.array([None] * n, pa.string()),
        "raw": pa.array([b"\xff\xfe"] * n, pa.binary()),
    })


# ----------------------------------------------------------------------------------------- columns


def test_columns_added_and_missing_exclude_system_columns(lake):
    first = land(lake, "r01", [order("o1")])
    assert first.columns_added == ["amazon_order_id", "sku", "quantity"] and first.columns_missing == []
    result = land(lake, "r02", [{"amazon_order_id": "o2", "sku": "s", "gift_message": "x"}])
    assert result.columns_added == ["gift_message"] and result.columns_missing == ["quantity"]


def test_source_column_names_are_kept_in_the_column_metadata(lake):
    paths = stage_file(lake, TABLE, "r01", [order("o1")])
    land_tables(lake, TABLE, StagedResult({"": paths}, source_columns={"amazon_order_id": "Bestellnummer"}),
                report=ORDERS, report_id="r01", selling_partner_id=SELLER)
    names = source_columns(lake, TABLE)
    # Localised headers are recorded as Amazon's canonical header (through the report's header_aliases).
    assert names["amazon_order_id"] == "amazon-order-id" and names["quantity"] == "quantity"
    assert not SYSTEM & set(names)


def test_types_are_conformed_to_the_table(lake):
    land(lake, "r01", [{"amazon_order_id": "o1", "sku": "s", "quantity": "7"}], report=SNAPSHOT)  # a string column
    land(lake, "r02", [order("o2", quantity=8)], report=SNAPSHOT)  # int64 lands in the string column
    assert sorted(read_table(lake, TABLE).column("quantity").to_pylist()) == ["7", "8"]
    table = DeltaTable(lake.table_uri(TABLE))
    paths = stage_file(lake, TABLE, "r03", [{"amazon_order_id": "o3", "sku": "s", "report_date": "x"}])
    with pytest.raises(LandingError, match="report_date"):  # text can't land in the date column
        land_tables(lake, TABLE, StagedResult({"": paths}), report=SNAPSHOT, report_id="r03", selling_partner_id=SELLER)
    assert DeltaTable(lake.table_uri(TABLE)).version() == table.version()


@pytest.mark.parametrize("staging_style", ["data files"], indirect=True)  # only staged data files are adopted
def test_staged_data_files_are_adopted_as_they_are(lake, monkeypatch, staging_style):
    land(lake, "r01", [order("o1"), order("o2")])

    def no_rewrite(*args, **kwargs):
        raise AssertionError("the staged rows were rewritten")

    monkeypatch.setattr(datafiles.PartitionedWriter, "write_all", no_rewrite)
    staged = staged_result(lake, "r02", [{**order("o1", quantity=9), "_date": dt.date(2026, 11, 21)}, order("o3")])
    result = land_tables(lake, TABLE, staged, report=ORDERS, report_id="r02", selling_partner_id=SELLER)
    assert (result.tables[""].rows, result.tables[""].replaced) == (2, 1)
    assert rows(lake) == [(DE, "o1", "SKU-1", 9, "r02"), (DE, "o2", "SKU-1", 1, "r01"), (DE, "o3", "SKU-1", 1, "r02")]
    assert lake.list("staging") == []


def test_staged_data_files_whose_types_differ_from_the_table_are_rewritten(lake, monkeypatch):
    land(lake, "r01", [{"amazon_order_id": "o1", "sku": "s", "quantity": "7"}], report=SNAPSHOT)  # a string column
    real, calls = datafiles.PartitionedWriter.write_all, []
    monkeypatch.setattr(datafiles.PartitionedWriter, "write_all", lambda *a, **k: calls.append(1) or real(*a, **k))
    land(lake, "r02", [order("o2", quantity=8)], report=SNAPSHOT)  # int64: cast to the table's string
    assert calls == [1]
    assert sorted(read_table(lake, TABLE).column("quantity").to_pylist()) == ["7", "8"]


def test_rows_of_another_report_are_rejected(lake):
    paths = stage_file(lake, TABLE, "r01", [order("o1")])
    with pytest.raises(LandingError, match="rows of report 'r01'"):
        land_tables(lake, TABLE, StagedResult({"": paths}), report=ORDERS, report_id="r02", selling_partner_id=SELLER)
    assert all(lake.exists(path) for path in paths)


def test_data_file_statistics(lake):
    land(lake, "r01", [order("o2", quantity=5, price=Decimal("1.25"), gift_message="hi"),
                       order("o1", quantity=None, price=Decimal("-3"), gift_message="yo")])
    actions = pa.table(DeltaTable(lake.table_uri(TABLE)).get_add_actions(flatten=True)).to_pylist()
    assert len(actions) == 1
    stats = actions[0]
    assert stats["num_records"] == 2 and stats["min.amazon_order_id"] == "o1" and stats["max.amazon_order_id"] == "o2"
    assert stats["null_count.quantity"] == 1 and stats["min.quantity"] == 5
    assert stats["min.report_id"] == stats["max.report_id"] == "r01"
    assert "min.marketplace_id" not in stats  # partition columns are not in the data files
    # Text that is neither a natural key nor a report column: no statistics (they cost the writer, and
    # unordered text's bounds hardly ever skip a file).
    assert stats.get("min.gift_message") is None and stats.get("null_count.gift_message") is None
    data = read_table(lake, TABLE, filters=[("quantity", ">", 4)])
    assert data.column("amazon_order_id").to_pylist() == ["o2"]


# ----------------------------------------------------------------------------------------- atomicity


def _table_files(lake) -> set[str]:
    return {p for p in lake.list(f"tables/{TABLE}") if "_delta_log" not in p}


def test_a_failure_while_writing_leaves_the_table_and_staging_as_they_were(lake, monkeypatch):
    land(lake, "r01", [order("o1"), order("o2")])
    version, files = DeltaTable(lake.table_uri(TABLE)).version(), _table_files(lake)
    real = delta._staged_batches

    def failing(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs)):
            if i == 1:
                raise OSError("connection reset while reading staging")
            yield batch

    monkeypatch.setattr(delta, "_staged_batches", failing)
    monkeypatch.setattr(delta, "_READ_BATCH_ROWS", 2)
    real_copy, copies = type(lake).copy, []

    def failing_copy(self, source, target):  # staged data files are adopted: copied into the table
        copies.append(target)
        if len(copies) == 2:
            raise OSError("connection reset while copying")
        real_copy(self, source, target)

    monkeypatch.setattr(type(lake), "copy", failing_copy)
    days = [dt.date(2026, 11, 20 + i % 3) for i in range(6)]
    new = [order(f"n{i}") for i in range(5)] + [order("o1", quantity=9)]
    # Two staged data files (tables are partitioned by marketplace only: one file per staging stream).
    first = staged_result(lake, "r02", [{**row, "_date": day} for row, day in zip(new[:3], days)])
    second = staged_result(lake, "r02", [{**row, "_date": day} for row, day in zip(new[3:], days)], name="part-1",
                           first_line=5)
    staged = StagedResult({"": first.tables[""] + second.tables[""]}, columns=first.columns)
    with pytest.raises(OSError, match="connection reset"):
        land_tables(lake, TABLE, staged, report=ORDERS, report_id="r02", selling_partner_id=SELLER)
    assert DeltaTable(lake.table_uri(TABLE)).version() == version
    assert _table_files(lake) == files  # the files written before the failure are gone
    assert all(lake.exists(p) for p in staged.tables[""])  # staging kept for the retry
    assert rows(lake) == [(DE, "o1", "SKU-1", 1, "r01"), (DE, "o2", "SKU-1", 1, "r01")]


def test_a_failed_commit_leaves_the_table_as_it_was(lake, monkeypatch):
    land(lake, "r01", [order("o1"), order("o2")])
    version, files = DeltaTable(lake.table_uri(TABLE)).version(), _table_files(lake)

    def refuse(self, *args, **kwargs):
        raise OSError("object store unavailable")

    monkeypatch.setattr(DeltaTable, "create_write_transaction", refuse)
    with pytest.raises(OSError, match="unavailable"):
        land(lake, "r02", [order("o1", quantity=5), order("o3")])
    assert DeltaTable(lake.table_uri(TABLE)).version() == version and _table_files(lake) == files


@pytest.mark.parametrize("first_landing", [False, True], ids=["table with rows", "empty table"])
def test_commit_conflicts_are_retried_against_the_new_snapshot(lake, monkeypatch, first_landing):
    # An empty table builds no Bloom filter of the document's keys: the retry must still find o2.
    if not first_landing:
        land(lake, "r01", [order("o1"), order("o2")])
    real = DeltaTable.create_write_transaction
    interfered = []

    def interfering(self, *args, **kwargs):
        if not interfered:  # another landing commits first: ours must not overwrite its o2
            interfered.append(True)
            monkeypatch.setattr(DeltaTable, "create_write_transaction", real)
            land(lake, "r03", [order("o2", quantity=30)])
            monkeypatch.setattr(DeltaTable, "create_write_transaction", interfering)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "create_write_transaction", interfering)
    result = land(lake, "r02", [order("o1", quantity=20), order("o2", quantity=20)])
    assert interfered and result.tables[""].superseded == 1
    assert rows(lake) == [(DE, "o1", "SKU-1", 20, "r02"), (DE, "o2", "SKU-1", 30, "r03")]


def test_concurrent_merges_lose_nothing_and_keep_keys_unique(lake):
    staged = {f"r{i:02d}": staged_result(lake, f"r{i:02d}", [order(f"o{j}", quantity=i) for j in range(i, i + 6)])
              for i in range(1, 7)}
    errors = []
    barrier = threading.Barrier(len(staged))

    def run(report_id: str) -> None:
        barrier.wait()
        try:
            land_tables(lake, TABLE, staged[report_id], report=ORDERS, report_id=report_id, selling_partner_id=SELLER)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(r,)) for r in staged]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = read_table(lake, TABLE)
    assert keys_once(lake) and data.num_rows == 11
    # Whatever the commit order, every key holds the row of the most recent report that carried it.
    assert {r["amazon_order_id"]: r["quantity"] for r in data.to_pylist()} == {
        f"o{j}": min(j, 6) for j in range(1, 12)
    }


def test_concurrent_landings_with_new_columns(lake):
    staged = {
        f"r{i:02d}": staged_result(lake, f"r{i:02d}", [{**order(f"o{i}-{j}"), f"extra_{i % 2}": "x"} for j in range(5)])
        for i in range(1, 5)
    }
    errors = []
    barrier = threading.Barrier(len(staged))

    def run(report_id: str) -> None:
        barrier.wait()
        try:
            land_tables(lake, TABLE, staged[report_id], report=SNAPSHOT, report_id=report_id, selling_partner_id=SELLER)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(r,)) for r in staged]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = read_table(lake, TABLE)
    assert data.num_rows == 20 and {"extra_0", "extra_1"} <= set(data.column_names)
    assert pc.sum(pc.is_valid(data["extra_1"])).as_py() == 10
