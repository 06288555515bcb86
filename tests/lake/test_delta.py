import datetime as dt
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

import sp_reports.lake.delta as delta
from sp_reports.lake import LandingError, read_table, table_name_for
from sp_reports.parsing import parse_document
from sp_reports.parsing.result import read_staged
from sp_reports.registry import ReportType
from support import land_one_table as land_report

SELLER = "A3EMULATORSELLER"

# No declared columns: every column stays a string; report_date is derived from purchase-date.
REPORT = ReportType("GET_TEST_REPORT", date_column="purchase-date")
TABLE = REPORT.table_name
HEADER = "amazon-order-id\tpurchase-date\tsku\n"


def stage(lake, report_id: str, rows: list[tuple[str, str, str]], *, header: str = HEADER, marketplace: str = "A1PA"):
    """Write a raw flat file for the report and parse it into staging; returns the main table's staging files."""
    raw = lake.raw_document_path(REPORT.report_type, SELLER, report_id, "doc")
    with lake.open_output(raw) as f:
        f.write((header + "".join("\t".join(r) + "\n" for r in rows)).encode())
    result = parse_document(
        lake, raw, lake.staging_dir(TABLE, SELLER, report_id), report=REPORT, marketplace_id=marketplace, charset=None,
        compressed=None, extra_columns={"selling_partner_id": SELLER, "report_id": report_id, "marketplace_id": marketplace},
    )
    assert result.rows_parsed == len(rows) and result.rows_quarantined == 0
    return result.tables[""]


def rows_of(report: str, n: int, day: str = "2026-11-20") -> list[tuple[str, str, str]]:
    return [(f"{report}-{i}", f"{day}T10:00:00+00:00", f"SKU-{i}") for i in range(n)]


def table_rows(lake) -> pa.Table:
    return DeltaTable(lake.table_uri(TABLE)).to_pyarrow_table()


def test_table_name_for():
    assert table_name_for("GET_FLAT_FILE_OPEN_LISTINGS_DATA") == "get_flat_file_open_listings_data"


def test_land_creates_a_partitioned_table(lake):
    files = stage(lake, "r1", rows_of("r1", 3) + rows_of("r1b", 2, day="2026-11-21"))
    result = land_report(lake, TABLE, files, report_id="r1", selling_partner_id=SELLER)
    assert result.rows == 5 and result.table_uri == lake.table_uri(TABLE)
    table = DeltaTable(result.table_uri)
    assert result.version == table.version()
    assert table.metadata().partition_columns == ["marketplace_id"]
    data = table.to_pyarrow_table()
    assert data.num_rows == 5
    assert sorted(set(data.column("report_date").to_pylist())) == [dt.date(2026, 11, 20), dt.date(2026, 11, 21)]
    assert lake.list(f"tables/{TABLE}/marketplace_id=A1PA")  # hive-style partition directories
    assert not any(lake.exists(f) for f in files)  # staging cleaned up after the commit
    assert read_table(lake, TABLE).num_rows == 5


def test_relanding_the_same_report_is_idempotent(lake):
    first = land_report(lake, TABLE, stage(lake, "r1", rows_of("r1", 4)), report_id="r1", selling_partner_id=SELLER)
    second = land_report(lake, TABLE, stage(lake, "r1", rows_of("r1", 4)), report_id="r1", selling_partner_id=SELLER)
    assert second.version > first.version
    assert table_rows(lake).num_rows == 4
    # A corrected document for the report replaces its rows instead of adding to them.
    land_report(lake, TABLE, stage(lake, "r1", rows_of("r1", 2)), report_id="r1", selling_partner_id=SELLER)
    assert table_rows(lake).num_rows == 2


def test_different_reports_accumulate(lake):
    land_report(lake, TABLE, stage(lake, "r1", rows_of("r1", 3)), report_id="r1", selling_partner_id=SELLER)
    land_report(lake, TABLE, stage(lake, "r2", rows_of("r2", 2, day="2026-11-21"), marketplace="ATVPDKIKX0DER"),
                report_id="r2", selling_partner_id=SELLER)
    counts = table_rows(lake).group_by("report_id").aggregate([("sku", "count")]).to_pylist()
    assert sorted((c["report_id"], c["sku_count"]) for c in counts) == [("r1", 3), ("r2", 2)]


def test_schema_evolution_when_amazon_adds_a_column(lake):
    land_report(lake, TABLE, stage(lake, "r1", rows_of("r1", 2)), report_id="r1", selling_partner_id=SELLER)
    wider = [r + ("gift",) for r in rows_of("r2", 3)]
    land_report(lake, TABLE, stage(lake, "r2", wider, header=HEADER.rstrip("\n") + "\tgift-message\n"), report_id="r2", selling_partner_id=SELLER)
    data = table_rows(lake)
    assert "gift_message" in data.schema.names
    by_report = {r: data.filter(pa.compute.equal(data["report_id"], r)) for r in ("r1", "r2")}
    assert by_report["r1"].column("gift_message").null_count == 2
    assert by_report["r2"].column("gift_message").to_pylist() == ["gift"] * 3
    # An old-shaped document (without the new column) still relands.
    land_report(lake, TABLE, stage(lake, "r1", rows_of("r1", 2)), report_id="r1", selling_partner_id=SELLER)
    assert table_rows(lake).num_rows == 5


def test_header_only_and_empty_reports_remove_earlier_rows(lake):
    land_report(lake, TABLE, stage(lake, "r1", rows_of("r1", 3)), report_id="r1", selling_partner_id=SELLER)
    land_report(lake, TABLE, stage(lake, "r2", rows_of("r2", 1)), report_id="r2", selling_partner_id=SELLER)
    result = land_report(lake, TABLE, stage(lake, "r1", []), report_id="r1", selling_partner_id=SELLER)  # header-only document
    assert result.rows == 0
    assert table_rows(lake).column("report_id").to_pylist() == ["r2"]
    result = land_report(lake, TABLE, [], report_id="r2", selling_partner_id=SELLER)  # empty document: no staging files at all
    assert result.rows == 0 and result.version == DeltaTable(lake.table_uri(TABLE)).version()
    assert table_rows(lake).num_rows == 0


def test_header_only_report_creates_the_table(lake):
    result = land_report(lake, TABLE, stage(lake, "r1", []), report_id="r1", selling_partner_id=SELLER)
    assert result.version is not None and table_rows(lake).num_rows == 0
    assert land_report(lake, "other_table", [], report_id="r1", selling_partner_id=SELLER).version is None  # nothing to do, no table


def test_null_report_date_partition(lake):
    files = stage(lake, "r1", [("o1", "not a date", "s")])
    land_report(lake, TABLE, files, report_id="r1", selling_partner_id=SELLER)
    assert table_rows(lake).column("report_date").to_pylist() == [None]


def test_rows_must_belong_to_the_report(lake):
    land_report(lake, TABLE, stage(lake, "r1", rows_of("r1", 1)), report_id="r1", selling_partner_id=SELLER)
    version = DeltaTable(lake.table_uri(TABLE)).version()
    files = stage(lake, "r2", rows_of("r2", 1))
    with pytest.raises(LandingError, match="hold rows of report 'r2'"):
        land_report(lake, TABLE, files, report_id="r3", selling_partner_id=SELLER)
    assert DeltaTable(lake.table_uri(TABLE)).version() == version
    assert all(lake.exists(f) for f in files)  # staging kept for a retry


def test_missing_partition_column_is_rejected_before_writing(lake):
    files = stage(lake, "r1", rows_of("r1", 1))
    with pytest.raises(ValueError, match="lack columns"):
        land_report(lake, TABLE, files, report_id="r1", partition_by=("marketplace_id", "ship_date"), selling_partner_id=SELLER)
    assert not lake.exists(f"tables/{TABLE}/_delta_log/00000000000000000000.json")


def test_a_corrupt_staging_file_leaves_the_table_unchanged(lake):
    land_report(lake, TABLE, stage(lake, "r1", rows_of("r1", 2)), report_id="r1", selling_partner_id=SELLER)
    version = DeltaTable(lake.table_uri(TABLE)).version()
    files = stage(lake, "r2", rows_of("r2", 2))
    with lake.open_output(lake.staging_dir(TABLE, SELLER, "r2") + "/corrupt.parquet") as f:
        f.write(b"PAR1 this is not parquet")
    with pytest.raises(Exception):
        land_report(lake, TABLE, files + [lake.staging_dir(TABLE, SELLER, "r2") + "/corrupt.parquet"], report_id="r2", selling_partner_id=SELLER)
    assert DeltaTable(lake.table_uri(TABLE)).version() == version
    assert table_rows(lake).column("report_id").to_pylist() == ["r1", "r1"]


def test_a_failure_while_streaming_rows_leaves_the_table_unchanged(lake, monkeypatch):
    land_report(lake, TABLE, stage(lake, "r1", rows_of("r1", 2)), report_id="r1", selling_partner_id=SELLER)
    version = DeltaTable(lake.table_uri(TABLE)).version()
    real = delta._staged_batches

    def failing(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs)):
            if i == 1:
                raise OSError("connection reset while reading staging")
            yield batch

    monkeypatch.setattr(delta, "_staged_batches", failing)
    files = stage(lake, "r1", rows_of("r1", 5))
    # A second file to fail on, plain staging Parquet: the landing must read (not adopt) the staged rows.
    files.append(_plain_copy(lake, files[0], lake.staging_dir(TABLE, SELLER, "r1") + "/copy.parquet"))
    with pytest.raises(Exception, match="connection reset"):
        land_report(lake, TABLE, files, report_id="r1", selling_partner_id=SELLER)
    assert DeltaTable(lake.table_uri(TABLE)).version() == version
    assert table_rows(lake).num_rows == 2  # the old rows of r1 are still there, nothing half-replaced


def _plain_copy(lake, source: str, target: str, drop: tuple[str, ...] = ()) -> str:
    """The rows of the staged data file ``source`` (partition columns restored) as plain staging Parquet."""
    with lake.open_output(target) as f:
        pq.write_table(read_staged(lake, source).drop_columns(list(drop)), f)
    return target


def test_concurrent_landings_of_different_reports_lose_nothing(lake):
    staged = {f"r{i}": stage(lake, f"r{i}", rows_of(f"r{i}", 10, day=f"2026-11-{i % 3 + 1:02d}")) for i in range(8)}
    # One report gets a new column, forcing a schema (metadata) change while others commit.
    staged["r7"] = stage(lake, "r7", [r + ("x",) for r in rows_of("r7", 10)], header=HEADER.rstrip("\n") + "\textra\n")
    errors = []
    barrier = threading.Barrier(len(staged))

    def land(report_id: str) -> None:
        barrier.wait()
        try:
            land_report(lake, TABLE, staged[report_id], report_id=report_id, selling_partner_id=SELLER)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=land, args=(r,)) for r in staged]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    data = table_rows(lake)
    assert data.num_rows == 80
    assert sorted(set(data.column("report_id").to_pylist())) == sorted(staged)


def test_staged_files_with_different_schemas_are_unified(lake):
    a = stage(lake, "r1", rows_of("r1", 1))
    narrow = _plain_copy(lake, a[0], lake.staging_dir(TABLE, SELLER, "r1") + "/narrow.parquet", drop=("sku",))
    land_report(lake, TABLE, a + [narrow], report_id="r1", selling_partner_id=SELLER)
    assert table_rows(lake).column("sku").to_pylist().count(None) == 1
