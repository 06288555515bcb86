"""RequestReportOperator against the emulator, outside a DAG run."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from sp_reports.client import Credentials, SellingPartnerClient
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.operators.reports import REPORT_ID_KEY, RequestReportOperator
from sp_reports.finished_report import ReportFatalError
from support import EMULATOR_CREDENTIALS, MemoryTaskStateStore, first_event, rebuilt, run_deferred

REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
REQUEST = {
    "report_type": REPORT_TYPE,
    "marketplace_ids": ["ATVPDKIKX0DER"],
    "data_start_time": "2026-11-01T00:00:00+00:00",
    "data_end_time": "2026-11-02T00:00:00+00:00",
    "report_options": {},
}


def operator(**kwargs) -> RequestReportOperator:
    return RequestReportOperator(task_id="request_report", request=REQUEST, poll_interval=0.1, **kwargs)


def test_done_report_yields_its_outcome(sp_conn):
    finished = run_deferred(operator(), {"task_state_store": MemoryTaskStateStore()})
    assert finished["processing_status"] == "DONE"
    assert finished["report_type"] == REPORT_TYPE
    assert finished["report_document_id"]
    assert finished["data_start_time"].startswith("2026-11-01")


def test_deferrable_by_default_and_the_report_id_is_stored_before_deferring(sp_conn):
    store = MemoryTaskStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        operator().execute({"task_state_store": store})
    report_id = store.get(REPORT_ID_KEY)
    assert report_id and deferred.value.trigger.report_id == report_id
    assert deferred.value.timeout > timedelta(hours=6)  # only a backstop to the trigger's own deadline


def test_a_retry_resumes_the_report_instead_of_creating_another(sp_conn):
    sp_conn.config(processing_seconds=1.0)
    store = MemoryTaskStateStore()
    with pytest.raises(TaskDeferred) as first:
        operator().execute({"task_state_store": store})
    # The worker dies; the retry runs with the same task instance's state store.
    finished = run_deferred(operator(), {"task_state_store": store})

    assert finished["report_id"] == first.value.trigger.report_id
    assert sp_conn.stats()["calls"]["createReport"] == 1


def test_a_retry_after_success_returns_the_finished_report_without_waiting(sp_conn):
    store = MemoryTaskStateStore()
    first = run_deferred(operator(), {"task_state_store": store})
    again = operator().execute({"task_state_store": store})  # no TaskDeferred: already DONE
    assert again == first
    assert sp_conn.stats()["calls"]["createReport"] == 1


def test_a_fatal_report_from_an_earlier_try_is_requested_anew(sp_conn):
    sp_conn.config(outcomes={REPORT_TYPE: "FATAL"})
    store = MemoryTaskStateStore()
    with pytest.raises(ReportFatalError):
        run_deferred(operator(), {"task_state_store": store})
    sp_conn.config(outcomes={})
    finished = run_deferred(operator(), {"task_state_store": store})
    assert finished["processing_status"] == "DONE"
    assert sp_conn.stats()["calls"]["createReport"] == 2


def test_fatal_fails_with_the_error_document_summarised(sp_conn):
    sp_conn.config(outcomes={REPORT_TYPE: "FATAL"})
    with pytest.raises(ReportFatalError) as error:
        run_deferred(operator(), {"task_state_store": MemoryTaskStateStore()})
    message = str(error.value)
    assert "FATAL" in message and REPORT_TYPE in message
    assert "X-Amz-Signature" not in message
    assert len(message) < 800
    # The summary is the error document's text, not a placeholder.
    assert "could not be fetched" not in message and "no error document" not in message


def test_fatal_without_an_error_document(sp_conn):
    sp_conn.config(outcomes={REPORT_TYPE: "FATAL"}, fatal_error_document=False)
    with pytest.raises(ReportFatalError, match="gave no error document"):
        run_deferred(operator(), {"task_state_store": MemoryTaskStateStore()})


def test_cancelled_is_success_with_zero_rows(sp_conn):
    sp_conn.config(outcomes={REPORT_TYPE: "CANCELLED"})
    finished = run_deferred(operator(), {"task_state_store": MemoryTaskStateStore()})
    assert finished["processing_status"] == "CANCELLED"
    assert finished["rows"] == 0
    assert finished["report_document_id"] is None


def test_timeout_names_the_report(sp_conn):
    sp_conn.config(processing_seconds=60)
    store = MemoryTaskStateStore()
    with pytest.raises(AirflowException) as error:
        run_deferred(operator(max_wait=timedelta(seconds=0.5)), {"task_state_store": store})
    assert store.get(REPORT_ID_KEY) in str(error.value)
    assert "still IN_" in str(error.value)


def test_non_deferrable_mode_polls_in_the_worker(sp_conn):
    finished = operator(deferrable=False).execute({"task_state_store": MemoryTaskStateStore()})
    assert finished["processing_status"] == "DONE"


def test_killing_the_task_cancels_a_queued_report(sp_conn):
    sp_conn.config(processing_seconds=60)
    op = operator()
    with pytest.raises(TaskDeferred):
        op.execute({"task_state_store": MemoryTaskStateStore()})
    op.on_kill()
    assert sp_conn.stats()["calls"]["cancelReport"] == 1


def test_no_marketplaces_anywhere_is_a_clear_error(emulator, monkeypatch):
    from support import connection_json

    monkeypatch.setenv("AIRFLOW_CONN_SELLING_PARTNER_DEFAULT", connection_json(emulator, marketplace_ids=""))
    op = RequestReportOperator(task_id="t", report_type=REPORT_TYPE)
    with pytest.raises(ValueError, match="no marketplace ids"):
        op.execute({"task_state_store": MemoryTaskStateStore()})


def test_marketplaces_default_to_the_connection(sp_conn):
    op = RequestReportOperator(task_id="t", report_type="GET_MERCHANT_LISTINGS_ALL_DATA", poll_interval=0.1)
    finished = run_deferred(op, {"task_state_store": MemoryTaskStateStore()})
    assert finished["marketplace_ids"] == ["ATVPDKIKX0DER"]


class LostResponseClient:
    """A client whose createReport reached Amazon but whose response was lost on the way back."""

    def __init__(self, real: SellingPartnerClient):
        self.real = real
        self.created: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()

    def create_report(self, **spec):
        from sp_reports.client import OutcomeUnknownError

        self.created.append(self.real.create_report(**spec))
        raise OutcomeUnknownError(status=None, code="NetworkError", message="connection reset",
                                  operation="createReport")

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_lost_create_response_adopts_the_matching_report(sp_conn, monkeypatch):
    sp_conn.config(processing_seconds=30)  # still running at the first check, whatever the machine's load
    real = SellingPartnerClient(Credentials(**EMULATOR_CREDENTIALS), endpoint=sp_conn.base_url,
                                lwa_endpoint=sp_conn.lwa_url)
    lost = LostResponseClient(real)
    monkeypatch.setattr(RequestReportOperator, "hook", property(lambda self: type("H", (), {
        "get_conn": lambda _: lost, "account": lambda _: SellingPartnerHook().account()})()))
    store = MemoryTaskStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        operator().execute({"task_state_store": store})
    assert deferred.value.trigger.report_id == lost.created[0] == store.get(REPORT_ID_KEY)
    assert sp_conn.stats()["calls"]["createReport"] == 1
