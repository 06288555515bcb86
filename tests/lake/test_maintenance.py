"""Lake maintenance on a lake landed through the real pipeline: compaction, VACUUM (replaced files and
the unreferenced files of dead landings), checkpoints, and the leftovers (staging, .tmp, S3 uploads).

Landings "ten days ago" are simulated by stamping their ``remove`` actions (and the files' modification
times) ten days back; Delta's VACUUM decides by exactly those two clocks.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest
from deltalake import DeltaTable

import sp_reports.lake.datafiles as datafiles
import sp_reports.lake.maintenance as maintenance
from sp_reports import pipeline
from sp_reports.lake import read_table
from sp_reports.lake.ledger import LEDGER_TABLE
from sp_reports.lake.maintenance import MaintenanceSettings, clean_leftovers, maintain_lake, maintain_table
from sp_reports.registry import load_registry

SELLER = "A3EMULATORSELLER"

ORDERS = load_registry()["GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"]  # MERGE on (order id, sku)
TABLE = ORDERS.table_name
QUARANTINE = f"{TABLE}__quarantine"
DE = "A1PA6795UKMFR9"
DAY = 86400
PARTITION = f"marketplace_id={DE}"


def land(lake, report_id: str, orders: list[tuple[str, int, str]], hour: int) -> dict:
    """Land a flat-file document of (order id, day, quantity) rows as the DAG would, ledger included."""
    text = "amazon-order-id\tpurchase-date\tsku\tquantity\n" + "".join(
        f"{order}\t2026-11-{day}T10:00:00+00:00\tSKU-{order}\t{quantity}\n" for order, day, quantity in orders)
    finished = {"selling_partner_id": SELLER, "selling_partner_conn_id": "selling_partner_default", "report_type": ORDERS.report_type, "report_id": report_id, "report_document_id": f"doc-{report_id}",
               "marketplace_ids": [DE], "processing_status": "DONE",
               "created_time": f"2026-11-22T{hour:02d}:00:00Z", "data_end_time": "2026-11-22T00:00:00Z"}
    fetched = pipeline.store_raw_document(lake, finished, io.BytesIO(text.encode()), content_type="text/plain")
    return pipeline.land_and_record(lake, pipeline.parse_raw_document(lake, fetched, ORDERS), ORDERS, "request")


@pytest.fixture
def ten_days_ago(monkeypatch):
    """Landings made inside this context stamp their remove actions ten days back."""
    monkeypatch.setattr(datafiles, "time", SimpleNamespace(time=lambda: time.time() - 10 * DAY))


def land_history(lake) -> None:
    """Four landings: MERGE updates (files replaced), new orders (small files), a quarantined value."""
    land(lake, "1001", [(f"o{i}", 20 + i % 2, i) for i in range(1, 7)], hour=1)
    land(lake, "1002", [("o1", "20", 10), ("o3", "21", 30)], hour=2)
    land(lake, "1003", [("o7", "20", 7), ("o8", "21", 8)], hour=3)
    land(lake, "1004", [("o2", "20", 20), ("o9", "20", "many")], hour=4)  # "many": a quarantined value


def snapshot_rows(lake) -> dict:
    keys = {TABLE: ("amazon_order_id", "quantity", "report_id"), QUARANTINE: ("report_id", "line", "reason"),
            LEDGER_TABLE: ("report_id", "status", "rows_landed")}
    return {name: sorted(tuple(r[k] for k in columns) for r in read_table(lake, name).to_pylist())
            for name, columns in keys.items()}


def set_age(path: Path, seconds: float) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def age_tree(root: Path, seconds: float) -> None:
    for p in [*root.rglob("*"), root]:
        set_age(p, seconds)


def write(path: Path, size: int, age: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    set_age(path, age)
    return path


def tmp_name(name: str) -> str:
    return f".{name}.{uuid.uuid4().hex}.tmp"


def removed_in_log(table_dir: Path) -> set[str]:
    paths = set()
    for commit in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "remove" in action:
                paths.add(action["remove"]["path"])
    return paths


def live_files(lake, name: str) -> set[str]:
    root = f"{lake.uri('tables/' + name)}/"
    return {uri[len(root):] for uri in DeltaTable(lake.table_uri(name)).file_uris()}


def files_per_partition(lake, name: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in live_files(lake, name):
        counts[path.rsplit("/", 1)[0]] = counts.get(path.rsplit("/", 1)[0], 0) + 1
    return counts


def test_maintenance_removes_what_is_dead_and_keeps_what_may_be_in_use(lake, ten_days_ago):
    land_history(lake)
    root = Path(lake.root)
    table_dir = root / "tables" / TABLE
    for path in table_dir.rglob("*.parquet"):
        set_age(path, 10 * DAY)  # landed ten days ago
    replaced = removed_in_log(table_dir) - live_files(lake, TABLE)
    assert replaced and all((table_dir / p).exists() for p in replaced)
    replaced_sizes = {p: (table_dir / p).stat().st_size for p in replaced}

    # A landing that died after writing data files, ten days ago and five days ago, and one running now.
    dead = write(table_dir / PARTITION / "part-00000-deadlanding1-0000aaaa-c000.zstd.parquet", 111, 10 * DAY)
    recent_dead = write(table_dir / PARTITION / "part-00000-deadlanding2-0000bbbb-c000.zstd.parquet", 222, 5 * DAY)
    in_flight = write(table_dir / PARTITION / "part-00000-runninglan3-0000cccc-c000.zstd.parquet", 333)
    # open_output's temporary files: in a partition, at a table's root (hidden from VACUUM), in raw/.
    old_tmps = [write(table_dir / PARTITION / tmp_name("part-1.parquet"), 50, 3 * DAY),
                write(table_dir / tmp_name("part-2.parquet"), 60, 3 * DAY),
                write(root / "raw" / ORDERS.report_type / "1005" / tmp_name("doc.bin"), 70, 3 * DAY)]
    fresh_tmp = write(root / "raw" / ORDERS.report_type / "1006" / tmp_name("doc.bin"), 80, 3600)
    # Staging: a dead parse (3 days), a parse running now, a DONE report's leftover (8 h) and a DONE
    # report re-parsed an hour ago (its landing is about to start).
    staging = root / "staging" / TABLE / SELLER
    write(staging / "2001" / f"{PARTITION}/part-0.parquet", 1000)
    write(staging / "2001" / "quarantine.parquet", 500)
    age_tree(staging / "2001", 3 * DAY)
    write(staging / "2002" / "part-0.parquet", 400)
    write(staging / "1001" / "part-0.parquet", 300)
    age_tree(staging / "1001", 8 * 3600)
    write(staging / "1002" / "part-0.parquet", 200)
    age_tree(staging / "1002", 3600)

    before = snapshot_rows(lake)
    version_before = DeltaTable(lake.table_uri(TABLE)).version()
    small_before = sum(n for n in files_per_partition(lake, TABLE).values() if n > 1)
    assert small_before >= 4

    dry = maintain_lake(lake, MaintenanceSettings(dry_run=True))
    assert DeltaTable(lake.table_uri(TABLE)).version() == version_before
    assert all((table_dir / p).exists() for p in replaced) and dead.exists() and (staging / "2001").exists()
    assert all(p.exists() for p in old_tmps)

    report = maintain_lake(lake)

    # The rows are the same; a reader of the version before maintenance still finds its files.
    assert snapshot_rows(lake) == before
    old_reader = DeltaTable(lake.table_uri(TABLE), version=version_before)
    assert sorted(r["amazon_order_id"] for r in old_reader.to_pyarrow_table().to_pylist()) == \
        sorted(r[0] for r in before[TABLE])

    main = next(t for t in report["tables"] if t["table"] == TABLE)
    # VACUUM: the files replaced ten days ago and the ten-day-old orphan, nothing else.
    expected = {f"tables/{TABLE}/{p}" for p in replaced} | {f"tables/{TABLE}/{PARTITION}/{dead.name}"}
    assert set(main["removed"]) == expected and main["files_removed"] == len(expected)
    assert main["bytes_removed"] == sum(replaced_sizes.values()) + 111
    assert not any((table_dir / p).exists() for p in replaced) and not dead.exists()
    assert recent_dead.exists() and in_flight.exists()
    # Compaction: one file per partition; the files it replaced stay for readers until the retention.
    assert main["files_compacted"] == small_before and main["files_written"] == len(files_per_partition(lake, TABLE))
    assert set(files_per_partition(lake, TABLE).values()) == {1}
    assert all((table_dir / p).exists() for p in removed_in_log(table_dir) - replaced)
    # A checkpoint at the table's version.
    version = DeltaTable(lake.table_uri(TABLE)).version()
    assert main["checkpoint_version"] == main["version"] == version
    assert (table_dir / "_delta_log" / f"{version:020d}.checkpoint.parquet").exists()
    assert json.loads((table_dir / "_delta_log" / "_last_checkpoint").read_text())["version"] == version

    # Every table was maintained: the ledger's replaced files are recent (delta-rs stamped them now): kept.
    assert {t["table"] for t in report["tables"]} == {TABLE, QUARANTINE, LEDGER_TABLE}
    ledger = next(t for t in report["tables"] if t["table"] == LEDGER_TABLE)
    assert ledger["files_removed"] == 0 and ledger["checkpoint_version"] is not None
    assert ledger["files_compacted"] > 1 and len(live_files(lake, LEDGER_TABLE)) == 1
    assert report["errors"] == {}

    # Leftovers: the dead staging dirs and the old temporary files, nothing newer than the thresholds.
    left = report["leftovers"]
    assert left["staging_dirs"] == [f"staging/{TABLE}/{SELLER}/1001", f"staging/{TABLE}/{SELLER}/2001"]
    assert left["staging_files"] == 3 and left["staging_bytes"] == 300 + 1000 + 500
    assert not (staging / "2001").exists() and not (staging / "1001").exists()
    assert (staging / "2002" / "part-0.parquet").exists() and (staging / "1002" / "part-0.parquet").exists()
    assert sorted(left["tmp_files"]) == sorted(str(p.relative_to(root)) for p in old_tmps)
    assert left["tmp_bytes"] == 50 + 60 + 70
    assert not any(p.exists() for p in old_tmps) and fresh_tmp.exists()
    assert report["files_removed"] == sum(t["files_removed"] for t in report["tables"]) + 3 + 3
    assert report["bytes_reclaimed"] == sum(t["bytes_removed"] for t in report["tables"]) + 1800 + 180

    # The dry run reported exactly what the run then removed.
    assert dry["leftovers"] == left
    assert {t["table"]: t["removed"] for t in dry["tables"]} == {t["table"]: t["removed"] for t in report["tables"]}
    assert next(t for t in dry["tables"] if t["table"] == TABLE)["files_compacted"] == small_before

    # A second run finds nothing left to do.
    again = maintain_lake(lake)
    assert again["files_removed"] == 0 and again["files_compacted"] == 0 and again["bytes_reclaimed"] == 0
    assert snapshot_rows(lake) == before


def test_compaction_never_undoes_a_concurrent_landing(lake, monkeypatch):
    """A compaction planned before a landing replaced rows must not commit over it (it would bring the
    replaced rows back): delta-rs rejects the commit, and it is planned again on the new snapshot."""
    land(lake, "1001", [(f"o{i}", "20", i) for i in range(1, 4)], hour=1)
    land(lake, "1002", [("o4", "20", 4)], hour=2)
    stale = DeltaTable(lake.table_uri(TABLE))  # what compaction planned on
    land(lake, "1003", [("o1", "20", 100)], hour=3)  # rewrites the file holding o1
    opened = []

    def open_table(lake_, name):
        opened.append(name)
        return stale if len(opened) == 1 else DeltaTable(lake_.table_uri(name))

    monkeypatch.setattr(maintenance, "_open", open_table)
    monkeypatch.setattr(maintenance, "_BACKOFF_BASE", 0.01)
    report = maintain_table(lake, TABLE)

    assert report.compaction_attempts == 2 and report.files_compacted == 3
    rows = sorted((r["amazon_order_id"], r["quantity"]) for r in read_table(lake, TABLE).to_pylist())
    assert rows == [("o1", 100), ("o2", 2), ("o3", 3), ("o4", 4)]


def test_concurrent_landings_and_maintenance_lose_nothing(lake):
    land(lake, "1000", [(f"o{i}", "20", i) for i in range(10)], hour=1)
    errors = []

    def landings():
        try:
            for n in range(1, 5):
                land(lake, f"{1000 + n}", [(f"o{n}", "20", 100 + n), (f"n{n}", "21", n)], hour=1 + n)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    thread = threading.Thread(target=landings)
    thread.start()
    while thread.is_alive():
        maintain_table(lake, TABLE)
    thread.join()
    assert errors == []
    rows = sorted((r["amazon_order_id"], r["quantity"]) for r in read_table(lake, TABLE).to_pylist())
    assert rows == sorted([(f"o{i}", 100 + i if 1 <= i <= 4 else i) for i in range(10)] +
                          [(f"n{n}", n) for n in range(1, 5)])


def test_retention_never_below_the_floor():
    assert MaintenanceSettings().retention_hours == 168 and MaintenanceSettings().min_retention_hours == 72
    MaintenanceSettings(retention_hours=72)
    with pytest.raises(ValueError, match="at least 72"):
        MaintenanceSettings(retention_hours=48)
    with pytest.raises(ValueError, match="at least 124"):
        MaintenanceSettings(retention_hours=120, staging_max_age_hours=100)
    with pytest.raises(ValueError, match="staging_max_age_hours"):
        MaintenanceSettings(staging_max_age_hours=1)


def test_a_declared_retention_is_kept(lake, ten_days_ago):
    land(lake, "1001", [("o1", "20", 1)], hour=1)
    land(lake, "1002", [("o1", "20", 2)], hour=2)
    table = DeltaTable(lake.table_uri(TABLE))
    table.alter.set_table_properties({"delta.deletedFileRetentionDuration": "interval 30 days"})
    assert maintain_table(lake, TABLE).files_removed == 0  # replaced 10 days ago, kept for 30
    assert maintain_table(lake, TABLE, MaintenanceSettings(dry_run=True)).removed == []


def test_leftovers_use_the_newest_file_of_a_staging_dir(lake):
    root = Path(lake.root)
    staging = root / "staging" / TABLE / SELLER / "3001"
    write(staging / "a.parquet", 10)
    age_tree(staging, 3 * DAY)
    write(staging / "b.parquet", 10, 3600)  # a parse still writing here an hour ago
    set_age(staging, 3600)
    assert clean_leftovers(lake).staging_dirs == []
    later = datetime.now(timezone.utc) + timedelta(days=2)
    assert clean_leftovers(lake, now=later).staging_dirs == [f"staging/{TABLE}/{SELLER}/3001"]
    assert not staging.exists() and not staging.parent.exists() and not staging.parent.parent.exists()  # emptied folders go too


# ----------------------------------------------------------------------------------------- S3


@pytest.mark.s3
def test_maintenance_on_s3(s3_lake, s3_client, s3_bucket, ten_days_ago):
    land_history(s3_lake)
    before = snapshot_rows(s3_lake)
    prefix = f"lake/tables/{TABLE}/"
    log_keys = [k for k in keys(s3_client, s3_bucket, prefix) if "/_delta_log/" in k]
    removed = set()
    for key in log_keys:
        if key.endswith(".json"):
            body = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read().decode()
            removed |= {json.loads(line)["remove"]["path"] for line in body.splitlines() if '"remove"' in line}
    table = DeltaTable(s3_lake.table_uri(TABLE), storage_options=s3_lake.storage_options)
    live = set(pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist())
    replaced = removed - live
    assert replaced

    with s3_lake.open_output(f"staging/{TABLE}/{SELLER}/2001/part-0.parquet") as f:
        f.write(b"y" * 1234)

    report = maintain_lake(s3_lake)
    main = next(t for t in report["tables"] if t["table"] == TABLE)
    assert set(main["removed"]) == {f"tables/{TABLE}/{p}" for p in replaced}
    assert not any(f"{prefix}{p}" in keys(s3_client, s3_bucket, prefix) for p in replaced)
    assert main["files_compacted"] > 1 and main["checkpoint_version"] == main["version"]
    assert f"{prefix}_delta_log/_last_checkpoint" in keys(s3_client, s3_bucket, prefix)
    assert report["leftovers"]["staging_dirs"] == []  # fresh
    assert snapshot_rows(s3_lake) == before

    # A writer killed mid-file. (moto dates every multipart upload in 2010: only an old one can be tested.)
    upload = s3_client.create_multipart_upload(Bucket=s3_bucket, Key=f"lake/raw/{ORDERS.report_type}/9/doc.bin")
    s3_client.upload_part(Bucket=s3_bucket, Key=f"lake/raw/{ORDERS.report_type}/9/doc.bin",
                          UploadId=upload["UploadId"], PartNumber=1, Body=b"z" * 4321)
    later = datetime.now(timezone.utc) + timedelta(days=3)
    left = maintain_lake(s3_lake, now=later)["leftovers"]
    assert left["staging_dirs"] == [f"staging/{TABLE}/{SELLER}/2001"] and left["staging_bytes"] == 1234
    assert left["tmp_files"] == [f"raw/{ORDERS.report_type}/9/doc.bin (multipart upload {upload['UploadId']})"]
    assert left["tmp_bytes"] == 4321
    assert keys(s3_client, s3_bucket, "lake/staging/") == []
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert snapshot_rows(s3_lake) == before


def keys(client, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]
