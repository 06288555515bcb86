"""A wait handed over to another triggerer never cancels the report; only a user ending the task does.

Airflow 3.3's triggerer cancels a trigger it no longer owns (another triggerer took it over after this
one stalled) through the same path as a user's action, and calls ``on_kill`` (triggerer_job_runner.py:
``update_triggers`` -> ``cancel_triggers`` -> ``_USER_ACTION_CANCEL_MSG``). ``on_kill`` therefore reads
the task instance's state through Airflow's execution API, as the triggerer serves it, from a real
metadata database: here the in-process execution API over the tests' SQLite database.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.operators.reports import REPORT_ID_KEY, RequestReportOperator
from sp_reports.triggers.notifications import ReportNotificationTrigger
from sp_reports.triggers.reports import ReportProcessingTrigger
from support import MemoryTaskStateStore, first_event, rebuilt

REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
US = "ATVPDKIKX0DER"


class ExecutionApiComms:
    """Answers a trigger's GetTaskStates the way the triggerer's supervisor does (same handler, same API)."""

    def __init__(self) -> None:
        from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor

        self.client = TriggerRunnerSupervisor.make_client(None)  # type: ignore[arg-type]  # uses no state
        self.asked = 0

    async def asend(self, msg):
        from airflow.sdk.execution_time.request_handlers import handle_get_task_states

        if type(msg).__name__ != "GetTaskStates":
            return None  # MaskSecret, sent while a connection is read: nothing to answer
        self.asked += 1
        response, _ = await asyncio.to_thread(handle_get_task_states, self.client, msg)
        return response


@pytest.fixture(scope="module")
def task_instance(airflow_db):
    """A real task instance in the metadata database (one run of a one-task DAG), whose state the tests set."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with DAG("sp_reports_handover_probe", schedule=None) as dag:
        EmptyOperator(task_id="request_report")
    DagBundlesManager().sync_bundles_to_db()
    with create_session() as session:  # what the DAG processor does with a parsed file
        update_dag_parsing_results_in_db("dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(),
                                         session=session)
    run = dag.test()
    return SimpleNamespace(dag_id=dag.dag_id, run_id=run.run_id, task_id="request_report", map_index=-1)


@pytest.fixture
def set_state(task_instance):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    def set_state(state: str | None) -> None:
        with create_session() as session:
            ti = session.query(TaskInstance).filter_by(dag_id=task_instance.dag_id, run_id=task_instance.run_id,
                                                       task_id=task_instance.task_id).one()
            ti.state = state

    return set_state


@pytest.fixture
def comms(monkeypatch):
    from airflow.sdk.execution_time import task_runner

    comms = ExecutionApiComms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    return comms


async def queued_report(emu, processing_seconds: float = 60) -> str:
    emu.config(processing_seconds=processing_seconds)  # IN_QUEUE until then
    async with await SellingPartnerHook().aget_async_client() as client:
        return await client.create_report(REPORT_TYPE, [US])


async def status_of(report_id: str) -> str:
    async with await SellingPartnerHook().aget_async_client() as client:
        return (await client.get_report(report_id))["processingStatus"]


def in_triggerer(trigger, task_instance):
    """The trigger as a triggerer holds it: rebuilt from its JSON kwargs, with its task instance attached."""
    trigger = rebuilt(trigger)
    trigger.task_instance = task_instance
    return trigger


async def test_a_wait_taken_over_by_another_triggerer_keeps_its_report(sp_conn, task_instance, set_state, comms):
    report_id = await queued_report(sp_conn, processing_seconds=16)  # IN_QUEUE for 8 s, then DONE at 16 s
    set_state("deferred")
    first = in_triggerer(ReportProcessingTrigger(report_id, poll_interval=0.5, deadline=time.time() + 60),
                         task_instance)

    # The first triggerer resumes after a stall and stops the trigger another triggerer now runs.
    await first.on_kill()

    assert comms.asked == 1
    assert await status_of(report_id) in ("IN_QUEUE", "IN_PROGRESS")
    assert sp_conn.stats()["calls"].get("cancelReport", 0) == 0
    # The second triggerer's copy waits on to the real finished.
    event = await first_event(in_triggerer(first, task_instance))
    assert event["status"] == "terminal"
    assert event["report"]["reportId"] == report_id
    assert event["report"]["processingStatus"] == "DONE"


@pytest.mark.parametrize("state", ["failed", "success"])
async def test_a_user_ending_the_task_cancels_a_report_still_in_queue(sp_conn, task_instance, set_state, comms, state):
    report_id = await queued_report(sp_conn)
    set_state(state)

    await in_triggerer(ReportProcessingTrigger(report_id, poll_interval=0.1), task_instance).on_kill()

    assert await status_of(report_id) == "CANCELLED"
    assert sp_conn.stats()["calls"]["cancelReport"] == 1


async def test_the_notification_wait_follows_the_same_rule(sp_conn, task_instance, set_state, comms):
    report_id = await queued_report(sp_conn)
    trigger = in_triggerer(ReportNotificationTrigger(report_id, queue_url="http://127.0.0.1:1/q"), task_instance)
    set_state("deferred")
    await trigger.on_kill()
    assert await status_of(report_id) == "IN_QUEUE"
    set_state("failed")
    await trigger.on_kill()
    assert await status_of(report_id) == "CANCELLED"


async def test_a_cleared_task_leaves_its_report_for_the_next_try(sp_conn, task_instance, set_state, comms):
    report_id = await queued_report(sp_conn)
    set_state(None)
    await in_triggerer(ReportProcessingTrigger(report_id), task_instance).on_kill()
    assert await status_of(report_id) == "IN_QUEUE"


async def test_without_a_readable_task_state_nothing_is_cancelled(sp_conn, task_instance, set_state, monkeypatch):
    from airflow.sdk.execution_time import task_runner

    class Broken:
        async def asend(self, msg):
            raise ConnectionError("supervisor gone")

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Broken(), raising=False)
    report_id = await queued_report(sp_conn)
    set_state("failed")
    await in_triggerer(ReportProcessingTrigger(report_id), task_instance).on_kill()
    # A trigger built outside a triggerer has no task instance at all.
    await rebuilt(ReportProcessingTrigger(report_id)).on_kill()
    assert await status_of(report_id) == "IN_QUEUE"


async def test_cancel_on_kill_off_never_cancels(sp_conn, task_instance, set_state, comms):
    report_id = await queued_report(sp_conn)
    set_state("failed")
    await in_triggerer(ReportProcessingTrigger(report_id, cancel_on_kill=False), task_instance).on_kill()
    assert await status_of(report_id) == "IN_QUEUE"
    assert comms.asked == 0


def test_a_report_the_pipeline_cancelled_is_never_read_as_no_data(sp_conn):
    """A user marked the task failed (its report was cancelled), then cleared it: the next try must not adopt
    the CANCELLED report as Amazon's "no data" (0 rows, downstream skipped, a green run missing data)."""
    store = MemoryTaskStateStore()
    sp_conn.config(processing_seconds=60)
    with SellingPartnerHook().get_conn() as client:
        cancelled = client.create_report(REPORT_TYPE, [US])
        client.cancel_report(cancelled)
    store.set(REPORT_ID_KEY, cancelled)
    sp_conn.config(processing_seconds=0.2)
    operator = RequestReportOperator(task_id="request_report", report_type=REPORT_TYPE, marketplace_ids=[US],
                                     deferrable=False, poll_interval=0.1)

    finished = operator.execute({"task_state_store": store})

    assert finished["report_id"] != cancelled
    assert finished["processing_status"] == "DONE"
    assert store.get(REPORT_ID_KEY) == finished["report_id"]
    assert sp_conn.stats()["calls"]["createReport"] == 2
