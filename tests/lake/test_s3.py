"""The lake on S3 (a moto server): atomic writes, raw zone, parse and Delta landing."""

import datetime as dt
import gzip
import io

import pytest
from deltalake import DeltaTable

import sp_reports.lake.storage as storage
from sp_reports import pipeline
from sp_reports.lake import raw_document_path, raw_metadata_path, read_table
from support import land_one_table as land_report
from sp_reports.parsing import parse_document
from sp_reports.registry import ReportType, load_registry

SELLER = "A3EMULATORSELLER"

pytestmark = pytest.mark.s3
REPORT = ReportType("GET_TEST_REPORT", date_column="purchase-date")  # no declared columns: all strings


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
    """The pipeline's steps after the download, on S3: raw zone -> parse -> land (MERGE) -> manifest."""
    report = load_registry()["GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"]
    report_id, table_name = "50001", report.table_name
    text = "amazon-order-id\tpurchase-date\tsku\tproduct-name\r\n" + "".join(
        f"028-{i}\t2026-11-{20 + i % 2}T14:03:12+00:00\tSKU-{i}\tCafé {i} €\r\n" for i in range(1000)
    )
    document = gzip.compress(text.encode("cp1252"))
    parse_result = {"selling_partner_id": SELLER, "selling_partner_conn_id": "selling_partner_default",
                    "report_type": report.report_type, "report_id": report_id, "report_document_id": "amzn1.tortuga.doc",
               "marketplace_ids": ["A1PA6795UKMFR9"], "processing_status": "DONE",
               "created_time": "2026-11-22T01:00:00Z", "data_end_time": "2026-11-22T00:00:00Z"}
    fetched = pipeline.store_raw_document(s3_lake, parse_result, io.BytesIO(document),
                                          content_type="text/tab-separated-values;charset=Cp1252")
    raw = fetched["raw_path"]
    assert raw == raw_document_path(report.report_type, SELLER, report_id, "amzn1.tortuga.doc")
    assert fetched["compressed"] and fetched["charset"] == "Cp1252" and fetched["size"] == len(document)
    assert s3_lake.read_json(raw_metadata_path(raw)) == fetched

    def parse_and_land() -> dict:
        parsed = pipeline.parse_raw_document(s3_lake, fetched, report)
        assert parsed["parse"]["rows_parsed"] == 1000 and parsed["parse"]["rows_quarantined"] == 0
        assert parsed["parse"]["compressed"] and parsed["parse"]["encoding"]["codec"] == "cp1252"
        return pipeline.land_parsed_document(s3_lake, parsed, report)

    first = parse_and_land()["tables"][""]
    assert first["rows"] == 1000 and first["uri"] == f"s3://{s3_bucket}/lake/tables/{table_name}"
    manifest = parse_and_land()
    assert s3_lake.read_json(manifest["manifest_path"]) == manifest and manifest["rows_landed"] == 1000
    second = manifest["tables"][""]

    table = DeltaTable(second["uri"], storage_options=s3_lake.storage_options)
    assert table.version() == second["version"] > first["version"]
    assert table.metadata().partition_columns == ["marketplace_id"]
    data = read_table(s3_lake, table_name)
    assert data.num_rows == 1000  # relanding the report changed nothing
    assert sorted(set(data.column("report_date").to_pylist())) == [dt.date(2026, 11, 20), dt.date(2026, 11, 21)]
    assert "Café 7 €" in data.column("product_name").to_pylist()
    assert s3_lake.list("staging") == []  # staging files deleted after the commit
    assert s3_lake.read_bytes(raw) == document  # the raw document stays exactly as downloaded


def test_concurrent_landings_on_s3(s3_lake):
    """delta-rs commits with conditional PUTs (If-None-Match), which moto honours: no commit is lost."""
    import threading

    staged = {}
    for i in range(4):
        raw = raw_document_path("GET_TEST_REPORT", SELLER, f"r{i}", "doc")
        with s3_lake.open_output(raw) as f:
            f.write(b"sku\tpurchase-date\n" + b"".join(b"s%d\t2026-11-20\n" % j for j in range(10)))
        staged[f"r{i}"] = parse_document(
            s3_lake, raw, s3_lake.staging_dir("get_test_report", SELLER, f"r{i}"), report=REPORT, marketplace_id="A1PA",
            charset=None, compressed=None, extra_columns={"selling_partner_id": SELLER, "report_id": f"r{i}", "marketplace_id": "A1PA"},
        ).tables[""]
    errors = []
    barrier = threading.Barrier(len(staged))

    def land(report_id):
        barrier.wait()
        try:
            land_report(s3_lake, "get_test_report", staged[report_id], report_id=report_id, selling_partner_id=SELLER)
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
