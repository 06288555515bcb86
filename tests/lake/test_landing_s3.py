"""land_tables on S3 (the session's moto server): MERGE, replace, quarantine, concurrent commits."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from sp_reports.lake import land_tables, read_table
from sp_reports.registry import ReportType

SELLER = "A3EMULATORSELLER"

pytestmark = pytest.mark.s3

TABLE = "get_test_orders"
ORDERS = ReportType("GET_TEST_ORDERS", natural_keys=("amazon-order-id",))
SNAPSHOT = ReportType("GET_TEST_SNAPSHOT")
DE = "A1PA6795UKMFR9"


@dataclass
class StagedResult:
    tables: dict[str, list[str]]
    quarantine_files: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


def stage(lake, report_id: str, orders: list[tuple[str, int]], *, day: int = 20, quarantine_lines=()) -> StagedResult:
    n = len(orders)
    data = pa.table({
        "amazon_order_id": [o for o, _ in orders],
        "quantity": pa.array([q for _, q in orders], pa.int64()),
        "selling_partner_id": [SELLER] * n,
        "report_id": [report_id] * n,
        "marketplace_id": [DE] * n,
        "report_created_time": [f"2026-11-{day:02d}T08:00:00Z"] * n,
        "report_date": pa.array([f"2026-11-{day:02d}"] * n).cast(pa.date32()),
        "source_line": pa.array(range(2, n + 2), pa.int64()),
    })
    path = f"staging/{TABLE}/{report_id}/part-0.parquet"
    with lake.open_output(path) as f:
        pq.write_table(data, f)
    quarantine = []
    if quarantine_lines:
        q = pa.table({
            "selling_partner_id": [SELLER] * len(quarantine_lines),
            "report_id": [report_id] * len(quarantine_lines), "report_type": ["GET_TEST_ORDERS"] * len(quarantine_lines),
            "marketplace_id": [DE] * len(quarantine_lines), "line": pa.array(list(quarantine_lines), pa.int64()),
            "kind": ["row"] * len(quarantine_lines), "reason": ["truncated document"] * len(quarantine_lines),
            "column": pa.array([None] * len(quarantine_lines), pa.string()),
            "raw": pa.array([b"x"] * len(quarantine_lines), pa.binary()),
        })
        quarantine.append(f"staging/{TABLE}/{report_id}/quarantine.parquet")
        with lake.open_output(quarantine[0]) as f:
            pq.write_table(q, f)
    return StagedResult({"": [path]}, quarantine, ["amazon_order_id", "quantity"])


def contents(lake) -> list[tuple]:
    return sorted((r["amazon_order_id"], r["quantity"], r["report_id"]) for r in read_table(lake, TABLE).to_pylist())


def test_merge_replace_and_quarantine_on_s3(s3_lake, s3_client, s3_bucket):
    first = land_tables(s3_lake, TABLE, stage(s3_lake, "101", [("o1", 1), ("o2", 2)], day=20, quarantine_lines=[4]),
                        report=ORDERS, report_id="101", selling_partner_id=SELLER)
    assert first.tables[""].uri == f"s3://{s3_bucket}/lake/tables/{TABLE}" and first.quarantine.rows == 1
    land_tables(s3_lake, TABLE, stage(s3_lake, "102", [("o2", 20), ("o3", 30)], day=21), report=ORDERS, report_id="102", selling_partner_id=SELLER)
    land_tables(s3_lake, TABLE, stage(s3_lake, "101", [("o1", 1), ("o2", 2)], day=20), report=ORDERS, report_id="101", selling_partner_id=SELLER)
    assert contents(s3_lake) == [("o1", 1, "101"), ("o2", 20, "102"), ("o3", 30, "102")]
    assert read_table(s3_lake, f"{TABLE}__quarantine").num_rows == 0  # the relanding cleared report 101's records
    assert s3_lake.list("staging") == []
    table = DeltaTable(s3_lake.table_uri(TABLE), storage_options=s3_lake.storage_options)
    assert table.metadata().partition_columns == ["marketplace_id"]
    # Every file of the table is referenced: replaced files are the only unreferenced ones (for VACUUM).
    live = {uri.rsplit("/", 1)[1] for uri in table.file_uris()}
    stored = {k.rsplit("/", 1)[1] for k in _keys(s3_client, s3_bucket, "lake/tables/get_test_orders/") if
              "_delta_log" not in k}
    assert live <= stored

    land_tables(s3_lake, "get_test_snapshot", stage(s3_lake, "201", [("s1", 1)]), report=SNAPSHOT, report_id="201", selling_partner_id=SELLER)
    land_tables(s3_lake, "get_test_snapshot", stage(s3_lake, "201", [("s2", 2)]), report=SNAPSHOT, report_id="201", selling_partner_id=SELLER)
    assert [r["amazon_order_id"] for r in read_table(s3_lake, "get_test_snapshot").to_pylist()] == ["s2"]


def test_concurrent_merges_on_s3(s3_lake):
    staged = {str(300 + i): stage(s3_lake, str(300 + i), [(f"o{j}", i) for j in range(i, i + 4)], day=10 + i)
              for i in range(4)}
    errors = []
    barrier = threading.Barrier(len(staged))

    def run(report_id: str) -> None:
        barrier.wait()
        try:
            land_tables(s3_lake, TABLE, staged[report_id], report=ORDERS, report_id=report_id, selling_partner_id=SELLER)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(r,)) for r in staged]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert contents(s3_lake) == [(f"o{j}", min(j, 3), str(300 + min(j, 3))) for j in range(7)]


def _keys(client, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]
