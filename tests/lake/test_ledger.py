"""The ledger: one row per report, first final record wins, watermark never passes a LISTED report, data ranges
of landed reports."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from sp_reports.lake import Lake
from sp_reports.lake.delta import read_table
from sp_reports.lake.ledger import LEDGER_TABLE, SCHEMA, Ledger

OVERLAP = timedelta(days=2)
SELLER, OTHER = "A3EMULATORSELLER", "A2OTHERSELLER"


def report(report_id: str, created: str, report_type: str = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE",
           seller: str = SELLER) -> dict:
    return {"selling_partner_id": seller, "selling_partner_conn_id": "selling_partner_default",
            "report_id": report_id, "report_type": report_type, "marketplace_ids": ["ATVPDKIKX0DER"],
            "created_time": created}


def keys(*report_ids: str, seller: str = SELLER) -> list[tuple[str, str]]:
    return [(seller, rid) for rid in report_ids]


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(Lake(str(tmp_path / "lake")))


def test_the_ledger_works_on_s3_too(s3_lake):
    ledger = Ledger(s3_lake)
    first = report("1", "2026-11-01T00:00:00Z")
    ledger.mark_listed([first])
    assert ledger.record(first, "DONE", "listing", rows_landed=3) is True
    assert ledger.record(first, "DONE", "notification") is False
    assert ledger.landed(keys("1", "2")) == set(keys("1"))
    assert s3_lake.list("tables/_ledger/_delta_log")


def test_an_empty_lake_has_no_ledger_and_no_watermark(ledger):
    assert ledger.entries() == {}
    assert ledger.landed(keys("1")) == set()
    assert ledger.watermark(["X"], OVERLAP, selling_partner_id=SELLER) is None


def test_the_first_final_record_stands(ledger):
    first = report("1", "2026-11-01T00:00:00Z")
    assert ledger.record(first, "DONE", "notification", rows_landed=7, manifest="m/1.json") is True
    assert ledger.record(first, "DONE", "listing", rows_landed=7) is False
    assert ledger.record(first, "CANCELLED", "listing") is False
    (row,) = read_table(ledger.lake, LEDGER_TABLE).to_pylist()
    assert (row["status"], row["via"], row["rows_landed"], row["manifest"]) == ("DONE", "notification", 7, "m/1.json")
    assert row["marketplace_ids"] == "ATVPDKIKX0DER"


def test_listed_reports_are_not_landed_and_hold_the_watermark_back(ledger):
    old, new = report("1", "2026-11-01T00:00:00Z"), report("2", "2026-11-20T00:00:00Z")
    ledger.mark_listed([old, new])
    ledger.mark_listed([old])  # listing again changes nothing
    assert len(ledger.entries()) == 2 and ledger.landed(keys("1", "2")) == set()
    ledger.record(new, "DONE", "listing")
    # The landing of "1" failed: later landings must not move the watermark past it.
    assert ledger.watermark([new["report_type"]], OVERLAP, selling_partner_id=SELLER) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    ledger.record(old, "DONE", "listing")
    assert ledger.landed(keys("1", "2")) == set(keys("1", "2"))
    assert ledger.watermark([new["report_type"]], OVERLAP, selling_partner_id=SELLER) == datetime(2026, 11, 18, tzinfo=timezone.utc)
    # Listing a landed report again does not demote it.
    ledger.mark_listed([old])
    assert ledger.entries(keys("1"))[(SELLER, "1")]["status"] == "DONE"


def test_the_watermark_is_per_report_type(ledger):
    ledger.record(report("1", "2026-11-20T00:00:00Z", "GET_A"), "DONE", "listing")
    assert ledger.watermark(["GET_B"], OVERLAP, selling_partner_id=SELLER) is None
    assert ledger.watermark(["GET_A", "GET_B"], OVERLAP, selling_partner_id=SELLER) == datetime(2026, 11, 18, tzinfo=timezone.utc)


def test_concurrent_records_of_one_report_leave_one_row(ledger):
    ledger.mark_listed([report("0", "2026-11-01T00:00:00Z")])  # the table exists; writers race on commits
    target = report("1", "2026-11-02T00:00:00Z")
    results, errors = [], []

    def record(via: str) -> None:
        try:
            results.append(ledger.record(target, "DONE", via))
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(f"run-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [False, False, False, True]
    rows = [r for r in read_table(ledger.lake, LEDGER_TABLE).to_pylist() if r["report_id"] == "1"]
    assert len(rows) == 1


def test_a_final_status_is_required(ledger):
    with pytest.raises(ValueError, match="status must be one of"):
        ledger.record(report("1", "2026-11-01T00:00:00Z"), "LISTED", "listing")


def test_the_same_report_id_of_two_sellers_is_two_ledger_rows(ledger):
    ours, theirs = report("1", "2026-11-01T00:00:00Z"), report("1", "2026-11-20T00:00:00Z", seller=OTHER)
    assert ledger.record(ours, "DONE", "listing", rows_landed=3) is True
    assert ledger.landed([(SELLER, "1"), (OTHER, "1")]) == {(SELLER, "1")}
    assert ledger.record(theirs, "DONE", "listing", rows_landed=5) is True  # not "already recorded"
    entries = ledger.entries()
    assert set(entries) == {(SELLER, "1"), (OTHER, "1")}
    assert (entries[(SELLER, "1")]["rows_landed"], entries[(OTHER, "1")]["rows_landed"]) == (3, 5)
    assert entries[(OTHER, "1")]["selling_partner_id"] == OTHER


def test_the_watermark_is_per_seller(ledger):
    settlement = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"
    ledger.record(report("1", "2026-11-20T00:00:00Z"), "DONE", "listing")
    ledger.mark_listed([report("2", "2026-11-05T00:00:00Z", seller=OTHER)])
    assert ledger.watermark([settlement], OVERLAP, selling_partner_id=SELLER) == datetime(2026, 11, 18, tzinfo=timezone.utc)
    assert ledger.watermark([settlement], OVERLAP, selling_partner_id=OTHER) == datetime(2026, 11, 5, tzinfo=timezone.utc)
    assert ledger.watermark([settlement], OVERLAP, selling_partner_id="A9NOBODY") is None


def test_a_seller_id_that_is_no_seller_id_is_refused(ledger):
    with pytest.raises(ValueError, match="selling_partner_id must be an Amazon seller id"):
        ledger.record(report("1", "2026-11-01T00:00:00Z", seller="../etc"), "DONE", "listing")


def ranged(report_id: str, start: str, end: str, marketplaces=("ATVPDKIKX0DER",), seller: str = SELLER) -> dict:
    return {**report(report_id, end, "GET_ORDERS", seller), "marketplace_ids": list(marketplaces),
            "data_start_time": start, "data_end_time": end}


def test_each_row_holds_the_reports_data_range(ledger):
    ledger.mark_listed([ranged("1", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")])
    ledger.record(report("2", "2026-11-01T00:00:00Z"), "DONE", "listing")  # a snapshot: no range
    entries = ledger.entries()
    assert (entries[(SELLER, "1")]["data_start_time"], entries[(SELLER, "1")]["data_end_time"]) == (
        datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc))
    assert entries[(SELLER, "2")]["data_start_time"] is None


def test_landed_ranges_are_those_of_landed_or_empty_one_marketplace_reports(ledger):
    day = ["2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z"]
    ledger.record(ranged("1", day[0], day[1]), "DONE", "request", rows_landed=5)
    ledger.record(ranged("2", day[1], day[2]), "CANCELLED", "request")  # Amazon had no data
    ledger.record(ranged("3", day[2], day[3]), "FATAL", "request")
    ledger.mark_listed([ranged("4", day[2], day[3])])
    ledger.record(ranged("5", day[0], day[3], marketplaces=("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2")), "DONE", "request")
    ledger.record(ranged("6", day[0], day[1], seller=OTHER, marketplaces=("A2EUQ1WTGCTBG2",)), "DONE", "request")
    ledger.record({**ranged("7", day[0], day[1]), "report_type": "GET_RETURNS"}, "DONE", "request")

    utc = timezone.utc
    assert ledger.landed_ranges(["GET_ORDERS"]) == {
        (SELLER, "GET_ORDERS", "ATVPDKIKX0DER"): [(datetime(2026, 11, 1, tzinfo=utc), datetime(2026, 11, 2, tzinfo=utc)),
                                                  (datetime(2026, 11, 2, tzinfo=utc), datetime(2026, 11, 3, tzinfo=utc))],
        (OTHER, "GET_ORDERS", "A2EUQ1WTGCTBG2"): [(datetime(2026, 11, 1, tzinfo=utc), datetime(2026, 11, 2, tzinfo=utc))],
    }
    assert Ledger(Lake(str(ledger.lake.root) + "-empty")).landed_ranges(["GET_ORDERS"]) == {}


OLD_SCHEMA = pa.schema([f for f in SCHEMA if f.name not in ("data_start_time", "data_end_time")])


def test_a_ledger_written_before_data_ranges_gets_the_columns_on_its_next_write(ledger):
    old = report("1", "2026-11-01T00:00:00Z")
    old_row = {**old, "status": "DONE", "marketplace_ids": "ATVPDKIKX0DER", "report_created_time": None,
               "rows_landed": 3, "via": "listing", "manifest": None, "recorded_at": datetime.now(timezone.utc)}
    write_deltalake(ledger.uri, pa.Table.from_pylist([old_row], schema=OLD_SCHEMA))

    # Read as it is: the range columns are null, the old report counts for no range.
    assert ledger.entries()[(SELLER, "1")]["data_start_time"] is None
    assert ledger.landed_ranges(["GET_ORDERS"]) == {} and ledger.landed(keys("1")) == set(keys("1"))

    ledger.mark_listed([ranged("2", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")])
    assert ledger.record(ranged("2", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"), "DONE", "request") is True
    assert {"data_start_time", "data_end_time"} <= set(DeltaTable(ledger.uri).schema().to_arrow().names)
    rows = {r["report_id"]: r for r in read_table(ledger.lake, LEDGER_TABLE).to_pylist()}
    assert rows["1"]["rows_landed"] == 3 and rows["1"]["data_end_time"] is None
    assert rows["2"]["data_end_time"] == datetime(2026, 11, 2, tzinfo=timezone.utc)
    assert list(ledger.landed_ranges(["GET_ORDERS"])) == [(SELLER, "GET_ORDERS", "ATVPDKIKX0DER")]
