"""The generated DAGs: import cleanly, one per registry entry, the expected shape and form."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from sp_reports.registry import load_registry

DAGS = Path(__file__).resolve().parents[2] / "dags"


GENERATED = {"sp_reports_generated_reports", "sp_reports_report_schedules", "sp_reports_lake_maintenance"}
NOTIFICATIONS = "sp_reports_notifications"


@pytest.fixture(scope="module")
def dagbag():
    # With a queue configured, the notification DAG exists too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SP_REPORTS_NOTIFICATIONS_QUEUE_URL", "http://127.0.0.1:1/123456789012/sp-reports")
        return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def requestable():
    return {name: report for name, report in load_registry().items() if report.requestable}


def test_one_dag_per_requestable_registry_entry(dagbag):
    assert set(dagbag.dag_ids) == set(requestable()) | GENERATED | {NOTIFICATIONS}
    assert "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE" not in dagbag.dag_ids


def test_no_notification_dag_without_a_queue():
    assert NOTIFICATIONS not in DagBag(dag_folder=str(DAGS)).dag_ids


def test_every_report_dag_has_the_report_path(dagbag):
    for dag in (dagbag.dags[dag_id] for dag_id in requestable()):
        assert set(dag.task_ids) == {
            "plan", "report.request_report", "report.fetch_document", "report.parse_document", "report.land",
            "summarize",
        }, dag.dag_id
        assert dag.get_task("report.request_report").upstream_task_ids == {"plan"}
        assert dag.get_task("report.fetch_document").upstream_task_ids == {"report.request_report"}
        # It runs after every report, failed ones included, and fails the run naming the failed accounts.
        assert dag.get_task("summarize").trigger_rule == "all_done"
        assert dag.get_task("report.request_report").deferrable is True


def test_every_dag_serves_the_configured_accounts(monkeypatch):
    monkeypatch.setenv("SP_REPORTS_ACCOUNTS", "amazon_acme_na,amazon_acme_fe")
    dags = DagBag(dag_folder=str(DAGS)).dags
    for dag_id in requestable():
        accounts = dags[dag_id].params.get_param("accounts")
        assert accounts.value == ["amazon_acme_na", "amazon_acme_fe"], dag_id
        assert accounts.schema["items"]["enum"] == ["amazon_acme_na", "amazon_acme_fe"]


def test_landing_task_updates_the_table_asset(dagbag):
    for dag_id, report in requestable().items():
        outlets = dagbag.dags[dag_id].get_task("report.land").outlets
        assert [asset.name for asset in outlets] == [f"sp_reports.{report.table_name}"]
        assert outlets[0].uri == f"sp-reports://tables/{report.table_name}"


def test_trigger_form_matches_the_report_type(dagbag):
    for dag_id, report in requestable().items():
        params = dagbag.dags[dag_id].params
        assert {"marketplace_ids", "report_options"} <= set(params)
        assert ("data_start" in params) is report.takes_date_range
        assert params["report_options"] == report.report_options
        # A backfill resumes by default; only a date range can be partly landed.
        assert ("skip_landed" in params) is report.takes_date_range and params.get("skip_landed", True) is True
        assert params["force_new_report"] is False


def test_schedules_come_from_the_registry(dagbag):
    for dag_id, report in requestable().items():
        assert dagbag.dags[dag_id].schedule == report.schedule


def test_generated_and_notified_reports_land_through_the_same_tasks(dagbag):
    landing = {"report.fetch_document", "report.parse_document", "report.land"}
    listing = dagbag.dags["sp_reports_generated_reports"]
    assert set(listing.task_ids) == {"list_reports", "summarize"} | landing
    assert listing.max_active_runs == 1
    notified = dagbag.dags[NOTIFICATIONS]
    assert set(notified.task_ids) == {"receive_notifications", "triage", "fail_on_fatal", "summarize"} | landing
    assert notified.get_task("receive_notifications").deferrable is True
    # Several report types: each landing names its table through the alias, not a fixed outlet.
    assert [o.name for o in listing.get_task("report.land").outlets] == ["sp_reports.landed"]
    assert set(dagbag.dags["sp_reports_report_schedules"].task_ids) == {"reconcile"}
