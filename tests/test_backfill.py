"""A 100-report backfill through one report DAG (dag.test()) against the emulator, with Amazon's createReport quota
enforced: paced at Amazon's rate (no 429), progress in the log, and a re-trigger after a partial failure requests
only what did not land."""

from __future__ import annotations

import dataclasses

from sp_reports.lake import read_table
from sp_reports.lake_connection import lake_from_airflow
from sp_reports.registry import load_registry
from sp_reports.report_dag import build_report_dag

ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
US = "ATVPDKIKX0DER"
# 100 one-day reports.
CONF = {"marketplace_ids": [US], "data_start": "2026-05-01T00:00:00+00:00", "data_end": "2026-08-09T00:00:00+00:00"}


def test_a_100_report_backfill_is_paced_without_429s_and_resumes_without_asking_twice(
    airflow_db, sp_conn, tmp_path, monkeypatch, capfd
):
    monkeypatch.setenv("SP_REPORTS_LAKE", str(tmp_path / "lake"))
    # Amazon's quotas, 600 times faster: createReport 10 per second after a burst of 15, getReports 13 per second.
    # Every tenth report fails (FATAL) in the first run, as if the backfill broke part way.
    sp_conn.config(speed=600.0, processing_seconds=60.0, rows_per_report=2, fatal_rate=0.1)
    report = dataclasses.replace(load_registry()[ORDERS], max_range_days=1)
    dag = build_report_dag(report, accounts=("selling_partner_default",), poll_interval=0.1, retries=0)

    first = dag.test(run_conf=CONF)

    stats = sp_conn.stats()
    assert stats["calls"]["createReport"] == 100
    assert stats["responses"].get("429", 0) == 0
    logged = capfd.readouterr().out
    assert "report 17 of 100: Requested" in logged and "report 100 of 100: Requested" in logged
    failed = [ti for ti in first.get_task_instances() if ti.task_id == "report.request_report" and ti.state == "failed"]
    assert first.state == "failed" and 0 < len(failed) < 30
    landed = read_table(lake_from_airflow(), ORDERS.lower()).num_rows
    assert landed == 2 * (100 - len(failed))

    sp_conn.config(fatal_rate=0.0)
    again = dag.test(run_conf=CONF)

    assert again.state == "success"
    assert sp_conn.stats()["calls"]["createReport"] == 100 + len(failed)  # only the chunks that did not land
    assert f"Skipping {100 - len(failed)} of 100 report(s)" in capfd.readouterr().out
    assert read_table(lake_from_airflow(), ORDERS.lower()).num_rows == 2 * 100
    assert sp_conn.stats()["responses"].get("429", 0) == 0
