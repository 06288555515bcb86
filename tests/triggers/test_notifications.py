"""Waiting by notification: ReportNotificationTrigger and the operator/sensor in that mode, against the
emulator publishing to an SQS queue on moto_server (real HTTP, real aiobotocore)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import TaskDeferred

from sp_reports.client import ensure_report_notifications
from sp_reports.emulator.testing import sqs_queue
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.operators.reports import RequestReportOperator
from sp_reports.sensors.reports import ReportProcessingSensor
from sp_reports.triggers.notifications import ReportNotificationTrigger
from support import MemoryTaskStateStore, first_event, rebuilt

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
US = "ATVPDKIKX0DER"


@pytest.fixture
def queue(sp_conn, moto_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": moto_server, "region_name": "us-east-1"},
    }))
    sp_conn.config(sqs_endpoint_url=moto_server, processing_seconds=1.0)
    with sqs_queue(moto_server) as q:
        with SellingPartnerHook().get_conn() as client:
            ensure_report_notifications(client, q.arn)
        yield q


def create_report() -> str:
    with SellingPartnerHook().get_conn() as client:
        return client.create_report(REPORT_TYPE, [US])


def test_the_notification_ends_the_wait_with_one_getreport(queue, sp_conn):
    report_id = create_report()
    trigger = rebuilt(ReportNotificationTrigger(report_id, queue_url=queue.url, fallback_poll_interval=600,
                                                deadline=time.time() + 60))
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "terminal" and event["report"]["processingStatus"] == "DONE"
    assert event["report"]["marketplaceIds"] == [US]
    assert sp_conn.stats()["calls"]["getReport"] == 1  # after the notification, never before
    assert queue.receive(0, timeout=1) == []  # its notification was taken off the queue


def test_a_lost_notification_is_covered_by_the_fallback_poll(queue, sp_conn):
    sp_conn.config(notification_drop_rate=1.0)
    report_id = create_report()
    trigger = ReportNotificationTrigger(report_id, queue_url=queue.url, fallback_poll_interval=1.5,
                                        deadline=time.time() + 60)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "terminal" and event["report"]["processingStatus"] == "DONE"
    assert sp_conn.stats()["notifications"]["notificationsDropped"] == 1
    assert sp_conn.stats()["calls"]["getReport"] >= 1


def test_other_reports_notifications_stay_on_the_queue(queue, sp_conn):
    other, mine = create_report(), None
    deadline = time.time() + 20
    while sp_conn.stats()["notifications"]["notificationsPublished"] < 1:
        assert time.time() < deadline
        time.sleep(0.05)
    mine = create_report()
    event = asyncio.run(first_event(ReportNotificationTrigger(mine, queue_url=queue.url, fallback_poll_interval=600,
                                                              deadline=time.time() + 60)))
    assert event["report"]["reportId"] == mine
    left = queue.receive(1, timeout=5)
    assert [n["payload"]["reportProcessingFinishedNotification"]["reportId"] for n in left] == [other]


def test_the_deadline_names_the_report(queue, sp_conn):
    sp_conn.config(processing_seconds=600.0)
    report_id = create_report()
    event = asyncio.run(first_event(ReportNotificationTrigger(report_id, queue_url=queue.url,
                                                              fallback_poll_interval=600, deadline=time.time() + 1.5)))
    assert (event["status"], event["report_id"]) == ("timeout", report_id)


def test_operator_and_sensor_defer_to_the_notification_trigger(queue, sp_conn):
    # Both waits run in one event loop, as in one triggerer: its queue listener outlives a single wait.
    async def triggerer():
        op = RequestReportOperator(task_id="request_report", report_type=REPORT_TYPE, marketplace_ids=[US],
                                   notification_queue_url=queue.url, fallback_poll_interval=300)
        context = {"task_state_store": MemoryTaskStateStore()}
        with pytest.raises(TaskDeferred) as deferred:
            await asyncio.to_thread(op.execute, context)
        trigger = deferred.value.trigger
        assert isinstance(trigger, ReportNotificationTrigger) and trigger.poll_interval == 300
        event = await first_event(rebuilt(trigger))
        finished = await asyncio.to_thread(op.execute_complete, context, event)
        assert finished["processing_status"] == "DONE" and finished["marketplace_ids"] == [US]

        sensor = ReportProcessingSensor(task_id="wait", report_id=await asyncio.to_thread(create_report),
                                        notification_queue_url=queue.url, timeout=timedelta(minutes=1).total_seconds())
        with pytest.raises(TaskDeferred) as deferred:
            await asyncio.to_thread(sensor.execute, {})
        assert isinstance(deferred.value.trigger, ReportNotificationTrigger)
        assert deferred.value.trigger.cancel_on_kill is False  # the sensor never cancels what it did not create
        event = await first_event(rebuilt(deferred.value.trigger))
        finished = await asyncio.to_thread(sensor.execute_complete, {}, event)
        assert finished["processing_status"] == "DONE"

    asyncio.run(triggerer())
