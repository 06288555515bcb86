"""A reportId is unique only together with a seller id: the seller is in every key of the lake (rows,
ledger, raw/staging/manifest paths, replace-by-report, natural-key merges). And a lake of the older
single-seller layout is refused until ``sp-reports lake migrate`` brings it over."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from sp_reports import pipeline
from sp_reports.cli import main
from sp_reports.lake import read_table
from sp_reports.lake.legacy import LegacyLakeError
from sp_reports.lake.ledger import LEDGER_TABLE, Ledger
from sp_reports.lake.migrate import migrate_lake
from sp_reports.registry import ReportType

SELLER, OTHER = "A3EMULATORSELLER", "A2OTHERSELLER"
US = "ATVPDKIKX0DER"
# No natural keys: replace by report.
SNAPSHOT = ReportType("GET_TEST_SELLER_SNAPSHOT", columns={"quantity": "integer"})
ORDERS = ReportType("GET_TEST_SELLER_ORDERS", natural_keys=("amazon-order-id", "sku"), columns={"quantity": "integer"})


def finished(seller: str, report_id: str = "5001", created: str = "2026-11-22T01:00:00Z") -> dict:
    return {"selling_partner_id": seller, "selling_partner_conn_id": f"sp_{seller.lower()}", "report_id": report_id,
            "report_type": SNAPSHOT.report_type, "processing_status": "DONE", "report_document_id": f"doc-{report_id}",
            "marketplace_ids": [US], "data_start_time": None, "data_end_time": "2026-11-22T00:00:00Z",
            "created_time": created, "processing_end_time": None, "report_schedule_id": None}


def land(lake, report: ReportType, finished_report: dict, lines: list[str]) -> dict:
    text = "amazon-order-id\tsku\tquantity\n" + "".join(f"{line}\n" for line in lines)
    fetched = pipeline.store_raw_document(lake, {**finished_report, "report_type": report.report_type},
                                          io.BytesIO(text.encode()), content_type="text/plain")
    return pipeline.land_and_record(lake, pipeline.parse_raw_document(lake, fetched, report), report, "request")


def rows(lake, table: str) -> list[tuple]:
    data = read_table(lake, table).to_pylist()
    return sorted((r["selling_partner_id"], r["report_id"], r["amazon_order_id"], r["quantity"]) for r in data)


def test_the_same_report_id_from_two_sellers_lands_as_two_sets_of_rows_with_two_ledger_entries(lake):
    ours = land(lake, SNAPSHOT, finished(SELLER), ["o1\tS1\t1", "o2\tS1\t2"])
    theirs = land(lake, SNAPSHOT, finished(OTHER), ["o1\tS1\t7"])
    table = SNAPSHOT.table_name
    assert rows(lake, table) == [(OTHER, "5001", "o1", 7), (SELLER, "5001", "o1", 1), (SELLER, "5001", "o2", 2)]

    # Two manifests, two raw documents, each under its seller; the manifest and asset extra name the seller.
    assert ours["manifest_path"] == f"manifests/{table}/{SELLER}/5001.json"
    assert theirs["manifest_path"] == f"manifests/{table}/{OTHER}/5001.json"
    assert lake.read_json(ours["manifest_path"])["selling_partner_id"] == SELLER
    assert lake.read_json(theirs["manifest_path"])["selling_partner_id"] == OTHER
    assert ours["raw_path"] == f"raw/{SNAPSHOT.report_type}/{SELLER}/5001/doc-5001.bin"
    assert theirs["raw_path"] == f"raw/{SNAPSHOT.report_type}/{OTHER}/5001/doc-5001.bin"
    assert lake.list("staging") == []  # both landings cleaned up after themselves

    entries = Ledger(lake).entries()
    assert set(entries) == {(SELLER, "5001"), (OTHER, "5001")}
    assert {k: (e["status"], e["rows_landed"]) for k, e in entries.items()} == {
        (SELLER, "5001"): ("DONE", 2), (OTHER, "5001"): ("DONE", 1)}

    # Re-landing one seller's report (a new document of it) replaces only that seller's rows.
    relanded = land(lake, SNAPSHOT, {**finished(OTHER), "report_document_id": "doc-5001-b"}, ["o9\tS9\t9", "o8\tS8\t8"])
    assert relanded["tables"][""]["replaced"] == 1
    assert rows(lake, table) == [(OTHER, "5001", "o8", 8), (OTHER, "5001", "o9", 9),
                                 (SELLER, "5001", "o1", 1), (SELLER, "5001", "o2", 2)]
    # Quarantine rows carry the seller too.
    land(lake, SNAPSHOT, finished(OTHER, "5002"), ["o1\tS1\tnot-a-number", "broken"])
    quarantine = read_table(lake, f"{table}__quarantine").to_pylist()
    assert quarantine and {(q["selling_partner_id"], q["report_id"]) for q in quarantine} == {(OTHER, "5002")}


def test_a_natural_key_merge_keeps_two_sellers_rows_with_equal_keys_apart(lake):
    land(lake, ORDERS, finished(SELLER, "6001"), ["o1\tS1\t1", "o2\tS1\t2"])
    land(lake, ORDERS, finished(OTHER, "6002", "2026-11-22T02:00:00Z"), ["o1\tS1\t5"])  # same key, other seller
    land(lake, ORDERS, finished(SELLER, "6003", "2026-11-22T03:00:00Z"), ["o1\tS1\t3"])  # newer: updates ours only
    assert rows(lake, ORDERS.table_name) == [(OTHER, "6002", "o1", 5), (SELLER, "6001", "o2", 2),
                                             (SELLER, "6003", "o1", 3)]
    assert DeltaTable(lake.table_uri(ORDERS.table_name)).metadata().partition_columns == ["marketplace_id"]


def test_a_seller_id_that_is_no_single_safe_path_segment_is_refused_before_anything_is_written(lake):
    for bad in ("../x", "a3lower", "A3/B", ""):
        with pytest.raises(ValueError, match="selling_partner_id must be an Amazon seller id"):
            land(lake, SNAPSHOT, finished(bad), ["o1\tS1\t1"])
    assert lake.list("raw") == [] and lake.list("tables") == []


def test_summary_rows_show_the_seller(lake):
    manifest = land(lake, SNAPSHOT, finished(SELLER), ["o1\tS1\t1"])
    row = pipeline.summary_row(finished(SELLER), manifest)
    assert row["selling_partner_id"] == SELLER and row["rows"] == 1
    lines = pipeline.format_summary([row]).splitlines()
    assert lines[0].split()[:2] == ["seller", "reportId"] and lines[1].split()[:2] == [SELLER, "5001"]


# ----------------------------------------------------------------------------------------- old lakes


def old_lake(lake) -> None:
    """A lake as the single-seller layout wrote it: no selling_partner_id anywhere, paths by reportId."""
    table = SNAPSHOT.table_name
    data = pa.table({
        "amazon_order_id": ["o1", "o2"], "sku": ["S1", "S1"], "quantity": pa.array([1, 2], pa.int64()),
        "report_id": ["5001", "5001"], "marketplace_id": [US, US],
        "report_created_time": ["2026-11-22T01:00:00Z"] * 2,
        "report_date": pa.array(["2026-11-22"] * 2).cast(pa.date32()), "source_line": pa.array([2, 3], pa.int64()),
    })
    write_deltalake(lake.table_uri(table), data, partition_by=["marketplace_id", "report_date"])
    write_deltalake(lake.table_uri(f"{table}__quarantine"), pa.table({
        "report_id": pa.array([], pa.string()), "report_type": pa.array([], pa.string()),
        "marketplace_id": pa.array([], pa.string()), "line": pa.array([], pa.int64()),
    }), partition_by=["marketplace_id"])
    ledger = pa.table({
        "report_id": ["5001"], "report_type": [SNAPSHOT.report_type], "status": ["DONE"], "marketplace_ids": [US],
        "report_created_time": pa.array([None], pa.timestamp("us", tz="UTC")), "rows_landed": pa.array([2], pa.int64()),
        "via": ["request"], "manifest": [f"manifests/{table}/5001.json"],
        "recorded_at": pa.array([0], pa.timestamp("us", tz="UTC")),
    })
    write_deltalake(lake.table_uri(LEDGER_TABLE), ledger)
    raw = f"raw/{SNAPSHOT.report_type}/5001/doc-5001.bin"
    with lake.open_output(raw) as f:
        f.write(b"amazon-order-id\tsku\tquantity\no1\tS1\t1\no2\tS1\t2\n")
    lake.write_json(raw + ".json", {"report_id": "5001", "raw_path": raw})
    lake.write_json(f"manifests/{table}/5001.json", {"report_id": "5001", "raw_path": raw,
                                                      "manifest_path": f"manifests/{table}/5001.json"})
    with lake.open_output(f"staging/{table}/5002/part-0.parquet") as f:
        pq.write_table(data, f)


def test_an_old_lake_is_refused_with_the_command_that_migrates_it(lake):
    old_lake(lake)
    with pytest.raises(LegacyLakeError, match=r"ledger .* has no selling_partner_id column.*sp-reports lake migrate "
                                              r"--selling-partner-id <ID>"):
        Ledger(lake).entries()
    # Even with the ledger migrated, landing into an old table is refused (before anything is committed).
    Ledger(lake).uri = lake.table_uri("_nothing")
    table = SNAPSHOT.table_name
    version = DeltaTable(lake.table_uri(table)).version()
    fetched = pipeline.store_raw_document(lake, finished(SELLER, "5003"), io.BytesIO(b"amazon-order-id\no3\n"),
                                          content_type=None)
    parsed = pipeline.parse_raw_document(lake, fetched, SNAPSHOT)
    with pytest.raises(LegacyLakeError, match=f"table {table} in the lake .*sp-reports lake migrate"):
        pipeline.land_parsed_document(lake, parsed, SNAPSHOT)
    assert DeltaTable(lake.table_uri(table)).version() == version


def test_migrate_brings_an_old_lake_over_and_is_idempotent(lake, capsys):
    old_lake(lake)
    table = SNAPSHOT.table_name
    before = DeltaTable(lake.table_uri(table))
    assert main(["lake", "migrate", "--selling-partner-id", SELLER, "--lake", lake.root]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["tables_migrated"]) == sorted([LEDGER_TABLE, table, f"{table}__quarantine"])
    assert report["rows"] == 3 and report["files_moved"] == 4

    # Every table: the column, filled, first; one commit each; its partitioning kept.
    after = DeltaTable(lake.table_uri(table))
    assert after.version() == before.version() + 1
    assert after.metadata().partition_columns == ["marketplace_id", "report_date"]
    data = read_table(lake, table)
    assert data.column_names[0] == "selling_partner_id" and set(data.column("selling_partner_id").to_pylist()) == {SELLER}
    assert data.num_rows == 2
    assert "selling_partner_id" in read_table(lake, f"{table}__quarantine").column_names
    (entry,) = Ledger(lake).entries().items()
    assert entry[0] == (SELLER, "5001") and entry[1]["manifest"] == f"manifests/{table}/{SELLER}/5001.json"

    # Files under the seller, with sidecar and manifest pointing at the new places.
    raw = f"raw/{SNAPSHOT.report_type}/{SELLER}/5001/doc-5001.bin"
    assert lake.list("raw") == [raw, raw + ".json"]
    assert lake.read_json(raw + ".json") == {"report_id": "5001", "raw_path": raw, "selling_partner_id": SELLER}
    manifest = lake.read_json(f"manifests/{table}/{SELLER}/5001.json")
    assert manifest["raw_path"] == raw and manifest["manifest_path"] == f"manifests/{table}/{SELLER}/5001.json"
    assert lake.list("manifests") == [f"manifests/{table}/{SELLER}/5001.json"]
    assert lake.list("staging") == [f"staging/{table}/{SELLER}/5002/part-0.parquet"]

    # A second run changes nothing.
    assert main(["lake", "migrate", "--selling-partner-id", SELLER, "--lake", lake.root]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["tables_migrated"] == [] and again["files_moved"] == 0 and len(again["tables_already"]) == 3
    assert DeltaTable(lake.table_uri(table)).version() == after.version()

    # And the migrated lake lands: another seller's same reportId beside the migrated rows; relanding ours
    # (a new document) replaces the migrated rows.
    land(lake, SNAPSHOT, finished(OTHER), ["o1\tS1\t7"])
    land(lake, SNAPSHOT, {**finished(SELLER), "report_document_id": "doc-5001-b"}, ["o5\tS1\t5"])
    assert rows(lake, table) == [(OTHER, "5001", "o1", 7), (SELLER, "5001", "o5", 5)]


def test_migrate_refuses_a_seller_id_that_is_no_seller_id(lake, capsys):
    old_lake(lake)
    assert main(["lake", "migrate", "--selling-partner-id", "../x", "--lake", lake.root]) == 2
    assert "selling_partner_id must be an Amazon seller id" in capsys.readouterr().err
    with pytest.raises(ValueError):
        migrate_lake(lake, "lower")
    with pytest.raises(LegacyLakeError):  # nothing was changed
        Ledger(lake).entries()
