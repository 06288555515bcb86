"""The lake maintenance DAG: registered in the DAG file, light to parse, and a whole run (dag.test())
that compacts, vacuums, checkpoints and removes leftovers, first as a dry run."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.dag_processing.dagbag import DagBag

from sp_reports.maintenance_dag import DAG_ID, build_lake_maintenance_dag

SELLER = "A3EMULATORSELLER"

DAGS = Path(__file__).resolve().parents[1] / "dags"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
DE = "A1PA6795UKMFR9"
DAY = 86400


def test_the_dag_module_loads_no_data_library():
    code = ("import sys, sp_reports.maintenance_dag as m; m.build_lake_maintenance_dag(); "
            "print([name for name in ('pyarrow', 'deltalake', 'numpy', 'pandas') if name in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_form_repeats_the_library_defaults():
    import sp_reports.maintenance_dag as dag_module
    from sp_reports.lake import maintenance

    assert dag_module.RETENTION_HOURS == maintenance.MaintenanceSettings().retention_hours
    assert dag_module.STAGING_MAX_AGE_HOURS == maintenance.MaintenanceSettings().staging_max_age_hours
    assert dag_module.MIN_STAGING_MAX_AGE_HOURS == maintenance.MIN_STAGING_MAX_AGE_HOURS
    assert dag_module.LONGEST_LANDING_HOURS == maintenance.LONGEST_LANDING_HOURS


def test_shape_schedule_and_form():
    dag = build_lake_maintenance_dag()
    assert dag.dag_id == DAG_ID and dag.schedule == "@daily" and dag.max_active_runs == 1 and not dag.catchup
    assert set(dag.task_ids) == {"clean_leftovers", "list_tables", "maintain_table", "summarize"}
    assert dag.get_task("list_tables").upstream_task_ids == {"clean_leftovers"}
    assert dag.get_task("summarize").upstream_task_ids == {"clean_leftovers", "maintain_table"}
    assert dag.params["retention_hours"] == 168 and dag.params["staging_max_age_hours"] == 48
    assert dag.params["dry_run"] is False
    assert dag.params.get_param("retention_hours").schema["minimum"] == 36
    assert build_lake_maintenance_dag(schedule=None).schedule is None


@pytest.mark.parametrize("disabled", [False, True])
def test_the_dag_file_registers_it(monkeypatch, disabled):
    if disabled:
        monkeypatch.setenv("SP_REPORTS_DISABLE_SCHEDULES", "1")
    else:
        monkeypatch.delenv("SP_REPORTS_DISABLE_SCHEDULES", raising=False)
    dagbag = DagBag(dag_folder=str(DAGS))
    assert dagbag.import_errors == {}
    assert dagbag.dags[DAG_ID].schedule == (None if disabled else "@daily")


# ----------------------------------------------------------------------------------------- a run


@pytest.fixture
def lake_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SP_REPORTS_LAKE", str(tmp_path / "lake"))
    return tmp_path / "lake"


def land(lake, report_id: str, orders: list[tuple[str, int]], hour: int) -> None:
    from sp_reports import pipeline
    from sp_reports.registry import load_registry

    report = load_registry()[ORDERS]
    text = "amazon-order-id\tpurchase-date\tsku\tquantity\n" + "".join(
        f"{order}\t2026-11-20T10:00:00+00:00\tSKU\t{quantity}\n" for order, quantity in orders)
    finished = {"selling_partner_id": SELLER, "selling_partner_conn_id": "selling_partner_default", "report_type": ORDERS, "report_id": report_id, "report_document_id": f"doc-{report_id}",
               "marketplace_ids": [DE], "processing_status": "DONE", "created_time": f"2026-11-22T{hour:02d}:00:00Z",
               "data_end_time": "2026-11-22T00:00:00Z"}
    fetched = pipeline.store_raw_document(lake, finished, io.BytesIO(text.encode()), content_type="text/plain")
    pipeline.land_and_record(lake, pipeline.parse_raw_document(lake, fetched, report), report, "request")


def task_states(run) -> dict:
    states: dict = {}
    for ti in run.get_task_instances():
        states.setdefault(ti.task_id, []).append(ti.state)
    return states


def summary(run) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=DAG_ID, task_ids="summarize",
                                                 key="return_value")).one()
        return XComModel.deserialize_value(row)


def test_a_run_maintains_the_lake(airflow_db, lake_dir, monkeypatch, capfd):
    import sp_reports.lake.datafiles as datafiles
    from sp_reports.lake_connection import lake_from_airflow
    from sp_reports.lake import read_table

    lake = lake_from_airflow()
    with monkeypatch.context() as patch:  # landed ten days ago: the replaced files are past the retention
        patch.setattr(datafiles, "time", SimpleNamespace(time=lambda: time.time() - 10 * DAY))
        land(lake, "1001", [("o1", 1), ("o2", 2)], hour=1)
        land(lake, "1002", [("o1", 10)], hour=2)
        land(lake, "1003", [("o3", 3)], hour=3)
    table_dir = lake_dir / "tables" / ORDERS.lower()
    dead = lake_dir / "staging" / ORDERS.lower() / SELLER / "2001"
    dead.mkdir(parents=True)
    (dead / "part-0.parquet").write_bytes(b"x" * 100)
    for path in (dead / "part-0.parquet", dead):
        os.utime(path, (time.time() - 3 * DAY,) * 2)
    rows = sorted((r["amazon_order_id"], r["quantity"]) for r in read_table(lake, ORDERS.lower()).to_pylist())
    files = set(table_dir.rglob("*.parquet"))

    dry = build_lake_maintenance_dag(schedule=None, retries=0).test(run_conf={"dry_run": True})
    assert dry.state == "success", task_states(dry)
    planned = summary(dry)
    assert planned["dry_run"] and planned["files_removed"] >= 2 and dead.exists()
    assert set(table_dir.rglob("*.parquet")) == files

    run = build_lake_maintenance_dag(schedule=None, retries=0).test()
    assert run.state == "success", task_states(run)
    assert task_states(run)["maintain_table"] == ["success"] * 2  # the orders table and the ledger
    report = summary(run)
    assert {t["table"] for t in report["tables"]} == {ORDERS.lower(), "_ledger"}
    assert report["leftovers"]["staging_dirs"] == [f"staging/{ORDERS.lower()}/{SELLER}/2001"] and not dead.exists()
    main = next(t for t in report["tables"] if t["table"] == ORDERS.lower())
    assert main["removed"] == next(t for t in planned["tables"] if t["table"] == ORDERS.lower())["removed"]
    assert main["files_removed"] >= 1 and not any((lake_dir / p).exists() for p in main["removed"])
    assert main["files_compacted"] >= 2 and main["checkpoint_version"] is not None
    assert json.loads((table_dir / "_delta_log" / "_last_checkpoint").read_text())["version"] == main["version"]
    assert report["files_removed"] == planned["files_removed"] and report["bytes_reclaimed"] > 0
    assert sorted((r["amazon_order_id"], r["quantity"]) for r in read_table(lake, ORDERS.lower()).to_pylist()) == rows
    assert f"total: removed {report['files_removed']} file(s)" in capfd.readouterr().out


def test_a_run_on_an_empty_lake(airflow_db, lake_dir):
    run = build_lake_maintenance_dag(schedule=None, retries=0).test()
    assert run.state == "success", task_states(run)
    report = summary(run)
    assert report["tables"] == [] and report["files_removed"] == 0 and report["errors"] == {}
