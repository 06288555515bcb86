"""The lake on S3 (a moto server): atomic writes, raw zone, parse and Delta landing."""

import gzip

import pytest
from deltalake import DeltaTable

import sp_reports.lake.storage as storage
from sp_reports.lake import (
    land_report,
    parse_flat_file,
    raw_document_path,
    read_raw_metadata,
    read_table,
    write_raw_metadata,
)

pytestmark = pytest.mark.s3


class Boom(Exception):
    pass


def keys(s3_client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_files_on_s3(s3_lake, s3_client, s3_bucket):
    assert s3_lake.is_s3 and s3_lake.root == f"s3://{s3_bucket}/lake"
    assert s3_lake.uri("raw/a.bin") == f"s3://{s3_bucket}/lake/raw/a.bin"
    with s3_lake.open_output("raw/a.bin") as f:
        f.write(b"hello")
    s3_lake.write_json("raw/a.bin.json", {"x": "①"})
    assert keys(s3_client, s3_bucket) == ["lake/raw/a.bin", "lake/raw/a.bin.json"]
    assert s3_lake.read_bytes("raw/a.bin") == b"hello" and s3_lake.read_json("raw/a.bin.json") == {"x": "①"}
    assert s3_lake.exists("raw/a.bin") and not s3_lake.exists("raw/b.bin")
    assert s3_lake.list("raw") == ["raw/a.bin", "raw/a.bin.json"]
    s3_lake.delete("raw/a.bin")
    s3_lake.delete("raw/a.bin")
    s3_lake.delete_dir("raw")
    s3_lake.delete_dir("raw")
    assert keys(s3_client, s3_bucket) == []


def test_failed_small_write_leaves_nothing(s3_lake, s3_client, s3_bucket):
    with pytest.raises(Boom):
        with s3_lake.open_output("raw/a.bin") as f:
            f.write(b"partial")
            raise Boom
    assert keys(s3_client, s3_bucket) == []


def test_multipart_write_is_atomic(s3_lake, s3_client, s3_bucket, monkeypatch):
    monkeypatch.setattr(storage, "S3_PART_SIZE", 5 * 1024 * 1024)  # S3's minimum part size
    chunk = b"x" * (1024 * 1024)
    with pytest.raises(Boom):
        with s3_lake.open_output("raw/big.bin") as f:
            for _ in range(11):  # two parts uploaded, then the failure
                f.write(chunk)
            raise Boom
    assert keys(s3_client, s3_bucket) == []
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []  # aborted

    with s3_lake.open_output("raw/big.bin") as f:
        for _ in range(11):
            f.write(chunk)
    assert s3_lake.size("raw/big.bin") == 11 * len(chunk)


def test_raw_parse_land_and_reland_on_s3(s3_lake, s3_client, s3_bucket):
    report_type, report_id = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", "50001"
    text = "amazon-order-id\tpurchase-date\tproduct-name\r\n" + "".join(
        f"028-{i}\t2026-11-{20 + i % 2}T14:03:12+00:00\tCafé {i} €\r\n" for i in range(1000)
    )
    document = gzip.compress(text.encode("cp1252"))
    raw = raw_document_path(report_type, report_id, "amzn1.tortuga.doc")
    with s3_lake.open_output(raw) as sink:
        sink.write(document)
    write_raw_metadata(
        s3_lake, raw,
        {"report_type": report_type, "report_id": report_id, "document_id": "amzn1.tortuga.doc", "compressed": True,
         "size": len(document), "sha256": "0" * 64, "charset": "Cp1252", "marketplace_ids": ["A1PA6795UKMFR9"]},
    )
    meta = read_raw_metadata(s3_lake, raw)

    def parse_and_land():
        parsed = parse_flat_file(
            s3_lake, raw, s3_lake.staging_dir(report_type.lower(), report_id), charset=meta["charset"],
            compressed=meta["compressed"], extra_columns={"report_id": report_id, "marketplace_id": meta["marketplace_ids"][0]},
            date_column="purchase-date",
        )
        assert parsed.rows == 1000 and parsed.compressed and parsed.codec == "cp1252"
        return land_report(s3_lake, report_type.lower(), parsed.files, report_id=report_id)

    first = parse_and_land()
    assert first.rows == 1000 and first.table_uri == f"s3://{s3_bucket}/lake/tables/{report_type.lower()}"
    second = parse_and_land()
    assert second.version > first.version

    table = DeltaTable(second.table_uri, storage_options=s3_lake.storage_options)
    assert table.version() == second.version
    assert table.metadata().partition_columns == ["marketplace_id", "report_date"]
    data = read_table(s3_lake, report_type.lower())
    assert data.num_rows == 1000  # relanding replaced the report's rows
    assert sorted(set(data.column("report_date").to_pylist())) == ["2026-11-20", "2026-11-21"]
    assert "Café 7 €" in data.column("product_name").to_pylist()
    assert s3_lake.list("staging") == []  # staging files deleted after the commit
    assert s3_lake.read_bytes(raw) == document  # the raw document stays exactly as downloaded


def test_concurrent_landings_on_s3(s3_lake):
    """delta-rs commits with conditional PUTs (If-None-Match), which moto honours: no commit is lost."""
    import threading

    staged = {}
    for i in range(4):
        raw = raw_document_path("GET_TEST_REPORT", f"r{i}", "doc")
        with s3_lake.open_output(raw) as f:
            f.write(b"sku\tpurchase-date\n" + b"".join(b"s%d\t2026-11-20\n" % j for j in range(10)))
        staged[f"r{i}"] = parse_flat_file(
            s3_lake, raw, f"staging/GET_TEST_REPORT/r{i}", charset=None,
            extra_columns={"report_id": f"r{i}", "marketplace_id": "A1PA"}, date_column="purchase-date",
        ).files
    errors = []
    barrier = threading.Barrier(len(staged))

    def land(report_id):
        barrier.wait()
        try:
            land_report(s3_lake, "get_test_report", staged[report_id], report_id=report_id)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=land, args=(r,)) for r in staged]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = read_table(s3_lake, "get_test_report")
    assert data.num_rows == 40 and sorted(set(data.column("report_id").to_pylist())) == sorted(staged)
