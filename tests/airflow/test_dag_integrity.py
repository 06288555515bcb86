"""The generated DAGs: import cleanly, one per registry entry, the expected shape and form."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from sp_reports.registry import load_registry

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def requestable():
    return {name: report for name, report in load_registry().items() if report.requestable}


def test_one_dag_per_requestable_registry_entry(dagbag):
    assert set(dagbag.dag_ids) == set(requestable())
    assert "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE" not in dagbag.dag_ids


def test_every_dag_has_the_report_path(dagbag):
    for dag in dagbag.dags.values():
        assert set(dag.task_ids) == {
            "plan", "report.request_report", "report.fetch_document", "report.parse_document", "report.land",
            "summarize",
        }, dag.dag_id
        assert dag.get_task("report.request_report").upstream_task_ids == {"plan"}
        assert dag.get_task("report.fetch_document").upstream_task_ids == {"report.request_report"}
        assert dag.get_task("summarize").trigger_rule == "none_failed"
        assert dag.get_task("report.request_report").deferrable is True


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


def test_schedules_come_from_the_registry(dagbag):
    for dag_id, report in requestable().items():
        assert dagbag.dags[dag_id].schedule == report.schedule
