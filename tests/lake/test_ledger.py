"""The ledger: one row per report, first final record wins, watermark never passes a LISTED report."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from sp_reports.lake import Lake
from sp_reports.lake.delta import read_table
from sp_reports.lake.ledger import LEDGER_TABLE, Ledger

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
