"""ReportProcessingSensor against the emulator, outside a DAG run: deferred, poke mode, timeout, FATAL."""

from __future__ import annotations

import time

import pytest
from airflow.sdk.exceptions import AirflowException

from sp_reports.client import Credentials, SellingPartnerClient
from sp_reports.finished_report import ReportFatalError
from sp_reports.sensors.reports import ReportProcessingSensor
from support import EMULATOR_CREDENTIALS, run_deferred


def existing_report(emu, report_type="GET_MERCHANT_LISTINGS_ALL_DATA") -> str:
    with SellingPartnerClient(Credentials(**EMULATOR_CREDENTIALS), endpoint=emu.base_url,
                              lwa_endpoint=emu.lwa_url) as client:
        return client.create_report(report_type, ["ATVPDKIKX0DER"])


def test_sensor_waits_deferred_for_an_existing_report(sp_conn):
    report_id = existing_report(sp_conn)
    sensor = ReportProcessingSensor(task_id="wait", report_id=report_id, poll_interval=0.1)
    finished = run_deferred(sensor, {})
    assert finished["report_id"] == report_id and finished["processing_status"] == "DONE"
    assert sp_conn.stats()["calls"]["createReport"] == 1  # the one made above, none by the sensor


def test_sensor_timeout_names_the_report(sp_conn):
    sp_conn.config(processing_seconds=60)
    report_id = existing_report(sp_conn)
    sensor = ReportProcessingSensor(task_id="wait", report_id=report_id, poll_interval=0.1, timeout=0.5)
    with pytest.raises(AirflowException, match=report_id):
        run_deferred(sensor, {})


def test_sensor_fails_on_fatal_and_never_cancels(sp_conn):
    sp_conn.config(outcomes={"GET_MERCHANT_LISTINGS_ALL_DATA": "FATAL"})
    report_id = existing_report(sp_conn)
    sensor = ReportProcessingSensor(task_id="wait", report_id=report_id, poll_interval=0.1)
    with pytest.raises(ReportFatalError, match=report_id):
        run_deferred(sensor, {})
    sensor.on_kill()
    assert sp_conn.stats()["calls"].get("cancelReport", 0) == 0


def test_sensor_poke_mode(sp_conn):
    report_id = existing_report(sp_conn)
    sensor = ReportProcessingSensor(task_id="wait", report_id=report_id, deferrable=False)
    deadline = time.time() + 10
    while not (result := sensor.poke({})).is_done:
        assert time.time() < deadline
        time.sleep(0.1)
    assert result.xcom_value["processing_status"] == "DONE"


@pytest.mark.parametrize("deferrable", [True, False])
def test_sensor_fails_on_a_stuck_report_saying_it_cannot_replace_it(sp_conn, deferrable):
    from datetime import timedelta

    sp_conn.config(stuck_reports=1, processing_seconds=0.2)
    report_id = existing_report(sp_conn)
    sensor = ReportProcessingSensor(task_id="wait", report_id=report_id, poll_interval=0.1,
                                    stuck_after=timedelta(seconds=1), deferrable=deferrable)
    started = time.monotonic()
    with pytest.raises(AirflowException, match=f"report {report_id} .* is stuck: still IN_(QUEUE|PROGRESS) .*cannot replace"):
        if deferrable:
            run_deferred(sensor, {})
        else:
            while not sensor.poke({}).is_done:
                time.sleep(0.1)
    assert time.monotonic() - started < 30  # at stuck_after, not the sensor's 6-hour timeout
    assert sp_conn.stats()["calls"].get("cancelReport", 0) == 0
