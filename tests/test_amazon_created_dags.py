"""Amazon-generated reports through whole DAG runs (dag.test()) against the emulator: settlements land
exactly once across overlapping runs, reruns and a crash after landing; schedules reconcile idempotently."""

from __future__ import annotations

import time

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from sp_reports import pipeline
from sp_reports.amazon_created import find_unlanded_reports
from sp_reports.amazon_created_dags import build_generated_reports_dag, build_report_schedules_dag
from sp_reports.lake_connection import lake_from_airflow
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.lake import read_table
from sp_reports.lake.ledger import LEDGER_TABLE, Ledger
from sp_reports.registry import load_registry

SETTLEMENT = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"
INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"
SELLER = "A3EMULATORSELLER"  # the seller the emulator's connection (tests/support.py) names
ACCOUNT = {"selling_partner_id": SELLER, "selling_partner_conn_id": "selling_partner_default"}


@pytest.fixture
def lake_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SP_REPORTS_LAKE", str(tmp_path / "lake"))
    return tmp_path / "lake"


def task_states(run) -> dict:
    states: dict = {}
    for ti in run.get_task_instances():
        states.setdefault(ti.task_id, []).append(ti.state)
    return states


def settlements_finished(emu, count: int, period: float = 0.4) -> None:
    """Let the emulator generate at least ``count`` settlements, then stop its cycle and let them finish."""
    emu.config(settlement_period_seconds=period)
    time.sleep(period * (count + 0.5))
    emu.config(settlement_period_seconds=None)
    time.sleep(0.5)  # processing_seconds=0.3 in the fixture


def settlements_at_amazon() -> list[str]:
    with SellingPartnerHook().get_conn() as client:
        return [r["reportId"] for r in client.get_reports(report_types=[SETTLEMENT], page_size=100)["reports"]]


def listing_dag():
    return build_generated_reports_dag(load_registry(), schedule=None, retries=0)


def settlement_rows(lake) -> int:
    return read_table(lake, SETTLEMENT.lower()).num_rows


def rows_of(lake, report_id: str) -> int:
    return read_table(lake, SETTLEMENT.lower(), filters=[("report_id", "=", report_id)]).num_rows


def test_settlements_land_exactly_once_across_reruns(airflow_db, sp_conn, lake_dir):
    settlements_finished(sp_conn, 2)
    first = listing_dag().test()
    assert first.state == "success", task_states(first)
    lake = lake_from_airflow()
    landed = Ledger(lake).entries()
    assert len(landed) >= 2 and {e["status"] for e in landed.values()} == {"DONE"}
    assert {e["via"] for e in landed.values()} == {"listing"}
    rows, downloads = settlement_rows(lake), sp_conn.stats()["calls"]["downloadDocument"]
    assert rows > 0
    # Each landing announced itself on its table's Asset (through the DAG's asset alias).
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                  .filter(AssetEvent.source_run_id == first.run_id).with_entities(AssetModel.name, AssetEvent.extra).all())
    assert {name for name, _ in events} == {f"sp_reports.{SETTLEMENT.lower()}"}
    assert sorted(extra["report_id"] for _, extra in events) == sorted(rid for _, rid in landed)
    assert {extra["selling_partner_id"] for _, extra in events} == {SELLER} == {seller for seller, _ in landed}

    again = listing_dag().test()
    assert again.state == "success", task_states(again)
    assert settlement_rows(lake) == rows
    assert sp_conn.stats()["calls"]["downloadDocument"] == downloads  # nothing fetched a second time
    assert sp_conn.stats()["calls"]["getReport"] == 0  # listing, never polling


def test_an_overlapping_run_does_not_land_a_report_again(airflow_db, sp_conn, lake_dir):
    settlements_finished(sp_conn, 1)
    lake = lake_from_airflow()
    # Run A lists the reports, then stalls before landing them...
    with SellingPartnerHook().get_conn() as client:
        listed_by_a = find_unlanded_reports(client, lake, SellingPartnerHook().account(), [load_registry()[SETTLEMENT]])
    assert listed_by_a
    # ...while run B lists and lands the same reports.
    dag = listing_dag()
    assert dag.test().state == "success"
    version = read_table(lake, LEDGER_TABLE).num_rows
    # Run A's landing tasks now find every report in the ledger and skip.
    fetch = dag.get_task("report.fetch_document")
    for finished in listed_by_a:
        with pytest.raises(AirflowSkipException, match="landed already"):
            fetch.python_callable(finished)
    assert read_table(lake, LEDGER_TABLE).num_rows == version
    assert sp_conn.stats()["by_operation_status"]["downloadDocument"] == {"200": len(listed_by_a)}


def test_a_crash_between_landing_and_recording_is_not_landed_again(airflow_db, sp_conn, lake_dir):
    settlements_finished(sp_conn, 1)
    lake = lake_from_airflow()
    report = load_registry()[SETTLEMENT]
    with SellingPartnerHook().get_conn() as client:
        (finished, *others) = find_unlanded_reports(client, lake, SellingPartnerHook().account(), [report])
        # The landing task committed and wrote the manifest, then died before the ledger row.
        pipeline.land_parsed_document(lake, pipeline.parse_raw_document(
            lake, pipeline.fetch_document(client, lake, finished), report), report)
    before = rows_of(lake, finished["report_id"])
    downloads = sp_conn.stats()["calls"]["downloadDocument"]
    assert before > 0

    run = listing_dag().test()
    assert run.state == "success", task_states(run)
    key = (SELLER, finished["report_id"])
    assert finished["selling_partner_id"] == SELLER and finished["selling_partner_conn_id"] == "selling_partner_default"
    entry = Ledger(lake).entries([key])[key]
    assert (entry["status"], entry["via"]) == ("DONE", "recovered")
    # Only the other reports were fetched; the recovered one's rows are there once.
    assert sp_conn.stats()["calls"]["downloadDocument"] == downloads + len(others)
    assert rows_of(lake, finished["report_id"]) == before


def test_listing_follows_every_page(airflow_db, sp_conn, lake_dir):
    settlements_finished(sp_conn, 5)
    lake = lake_from_airflow()
    with SellingPartnerHook().get_conn() as client:
        found = find_unlanded_reports(
            client, lake, SellingPartnerHook().account(), [load_registry()[SETTLEMENT]], page_size=2
        )
    assert sp_conn.stats()["calls"]["getReports"] >= 3  # 2 per page
    generated = settlements_at_amazon()
    assert len(generated) >= 5
    assert sorted(o["report_id"] for o in found) == sorted(generated)


def test_schedule_reconciliation_is_idempotent(airflow_db, sp_conn, lake_dir):
    dag = build_report_schedules_dag(load_registry(), schedule=None, retries=0)
    first = dag.test()
    assert first.state == "success", task_states(first)
    calls = sp_conn.stats()["calls"]
    assert calls["createReportSchedule"] == 1 and calls["cancelReportSchedule"] == 0

    assert dag.test().state == "success"
    calls = sp_conn.stats()["calls"]
    assert calls["createReportSchedule"] == 1 and calls["cancelReportSchedule"] == 0
    with SellingPartnerHook().get_conn() as client:
        (schedule,) = client.get_report_schedules([INVENTORY])["reportSchedules"]
    assert (schedule["period"], schedule["marketplaceIds"]) == ("P1D", ["ATVPDKIKX0DER"])
