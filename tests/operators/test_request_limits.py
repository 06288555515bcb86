"""RequestReportOperator and Amazon's own limits, against the emulator: reusing a report Amazon already has, waiting a
cooldown FATAL out, replacing a stuck report, and booking createReport's quota ahead."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from sp_reports.finished_report import ReportFatalError
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.operators.reports import REPORT_ID_KEY, RequestReportOperator
from support import MemoryTaskStateStore, run_deferred

ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"  # a near real-time FBA report: one per 30 minutes at Amazon
REQUEST = {
    "report_type": ORDERS,
    "marketplace_ids": ["ATVPDKIKX0DER"],
    "data_start_time": "2026-11-01T00:00:00+00:00",
    "data_end_time": "2026-11-02T00:00:00+00:00",
    "report_options": {},
}


def operator(request: dict | None = None, **kwargs) -> RequestReportOperator:
    return RequestReportOperator(task_id="request_report", request=request or REQUEST, poll_interval=0.1, **kwargs)


def run(op: RequestReportOperator, store: MemoryTaskStateStore | None = None, on_defer=None) -> dict:
    return run_deferred(op, {"task_state_store": store or MemoryTaskStateStore()}, on_defer=on_defer)


def creates(emulator) -> int:
    return emulator.stats()["calls"].get("createReport", 0)


# -- reuse ----------------------------------------------------------------------------------------------------


def test_a_recent_done_report_is_reused_with_no_create_report(sp_conn, capfd):
    first = run(operator())
    assert creates(sp_conn) == 1 and "reused" not in first

    again = run(operator())  # another run, another task instance: nothing remembered

    assert creates(sp_conn) == 1
    assert again["report_id"] == first["report_id"] and again["reused"] is True
    assert f"Reusing report {first['report_id']}" in capfd.readouterr().out


def test_a_report_still_in_progress_is_reused(sp_conn):
    sp_conn.config(processing_seconds=2.0)
    with pytest.raises(TaskDeferred) as waiting:
        operator().execute({"task_state_store": MemoryTaskStateStore()})
    again = run(operator())
    assert again["report_id"] == waiting.value.trigger.report_id and again["reused"] is True
    assert creates(sp_conn) == 1


def test_another_data_range_or_marketplace_is_not_reused(sp_conn):
    run(operator())
    run(operator({**REQUEST, "data_end_time": "2026-11-03T00:00:00+00:00"}))
    run(operator({**REQUEST, "marketplace_ids": ["A2EUQ1WTGCTBG2"]}))
    assert creates(sp_conn) == 3


def test_a_done_report_older_than_reuse_max_age_is_not_reused(sp_conn):
    first = run(operator())
    time.sleep(1.5)
    again = run(operator(reuse_max_age=timedelta(seconds=1)))
    assert again["report_id"] != first["report_id"] and creates(sp_conn) == 2


def test_force_new_report_requests_anyway(sp_conn):
    first = run(operator())
    again = run(operator({**REQUEST, "force_new_report": True}))
    assert again["report_id"] != first["report_id"] and "reused" not in again
    assert creates(sp_conn) == 2


# -- cooldown -------------------------------------------------------------------------------------------------

SNAPSHOT = {"report_type": INVENTORY, "marketplace_ids": ["ATVPDKIKX0DER"], "force_new_report": True}


def test_a_cooldown_fatal_is_waited_out_deferred_then_requested_once_more(sp_conn):
    sp_conn.config(cooldowns={INVENTORY: 4.0})
    earlier = run(operator(SNAPSHOT))
    deferrals: list[tuple[object, int]] = []

    finished = run(
        operator(SNAPSHOT, cooldown=timedelta(seconds=4)),
        on_defer=lambda deferred: deferrals.append((deferred.trigger, creates(sp_conn))),
    )

    assert finished["processing_status"] == "DONE"
    # The second request ended FATAL inside the window; the task waited, deferred, until the window closed
    # (and no request went out meanwhile), then asked once more.
    waits = [(trigger, made) for trigger, made in deferrals if isinstance(trigger, DateTimeTrigger)]
    assert len(waits) == 1
    trigger, made_before_waiting = waits[0]
    window_ends = datetime.fromisoformat(earlier["created_time"].replace("Z", "+00:00")) + timedelta(seconds=4)
    assert window_ends <= trigger.moment <= window_ends + timedelta(seconds=2)  # a margin for clocks and rounding
    assert made_before_waiting == 2
    assert creates(sp_conn) == 3


def test_a_second_cooldown_fatal_fails_instead_of_waiting_again(sp_conn):
    sp_conn.config(cooldowns={INVENTORY: 3.0})
    run(operator(SNAPSHOT))
    store = MemoryTaskStateStore()

    def someone_else_requests_meanwhile(deferred):
        if isinstance(deferred.trigger, DateTimeTrigger):
            time.sleep(max(0.0, (deferred.trigger.moment - datetime.now(UTC)).total_seconds()))
            run(operator(SNAPSHOT))  # restarts Amazon's window just before this task asks again

    with pytest.raises(ReportFatalError, match="ended FATAL again after this task waited out"):
        run(operator(SNAPSHOT, cooldown=timedelta(seconds=3)), store, on_defer=someone_else_requests_meanwhile)
    assert creates(sp_conn) == 4  # first, the FATAL, the other job's, the one retry: never into the wall again


def test_a_fatal_with_an_error_document_fails_with_its_summary_even_with_a_cooldown(sp_conn):
    sp_conn.config(outcomes={INVENTORY: "FATAL"})
    with pytest.raises(ReportFatalError) as error:
        run(operator(SNAPSHOT, cooldown=timedelta(minutes=30)))
    assert "no error document" not in str(error.value) and INVENTORY in str(error.value)
    assert creates(sp_conn) == 1


def test_a_fatal_without_an_earlier_report_is_not_a_cooldown(sp_conn):
    sp_conn.config(outcomes={INVENTORY: "FATAL"}, fatal_error_document=False)
    with pytest.raises(ReportFatalError, match="gave no error document"):
        run(operator(SNAPSHOT, cooldown=timedelta(minutes=30)))
    assert creates(sp_conn) == 1


# -- stuck reports --------------------------------------------------------------------------------------------


def test_a_stuck_report_is_replaced_once(sp_conn, capfd):
    sp_conn.config(stuck_reports=1, processing_seconds=0.5)
    store = MemoryTaskStateStore()

    finished = run(operator(stuck_after=timedelta(seconds=2)), store)

    assert finished["processing_status"] == "DONE"
    assert creates(sp_conn) == 2
    with SellingPartnerHook().get_conn() as client:
        listed = client.get_reports(report_types=[ORDERS])["reports"]
    stuck = next(r for r in listed if r["reportId"] != finished["report_id"])
    assert stuck["processingStatus"] == "IN_PROGRESS"
    assert f"Stuck report {stuck['reportId']} is replaced by report {finished['report_id']}" in capfd.readouterr().out
    assert store.get(REPORT_ID_KEY) == finished["report_id"]


def test_a_second_stuck_report_fails_saying_what_to_do(sp_conn):
    sp_conn.config(stuck_reports=2, processing_seconds=0.5)
    with pytest.raises(AirflowException, match="already replaces stuck report .* clear this task"):
        run(operator(stuck_after=timedelta(seconds=1.5)))
    assert creates(sp_conn) == 2


def test_a_stuck_report_is_not_reused(sp_conn):
    # Amazon's createdTime is to the second, so a report counts as stuck up to a second early: stuck_after leaves
    # the new report's 0.2 s of processing more than that second.
    sp_conn.config(stuck_reports=1, processing_seconds=0.2)
    with pytest.raises(TaskDeferred):
        operator().execute({"task_state_store": MemoryTaskStateStore()})
    time.sleep(2.2)
    finished = run(operator(stuck_after=timedelta(seconds=2)))
    assert "reused" not in finished and creates(sp_conn) == 2


# -- quota pacing ---------------------------------------------------------------------------------------------


def test_a_create_report_token_due_later_is_waited_for_deferred_then_used(sp_conn, monkeypatch, capfd):
    from sp_reports.operators import reports

    monkeypatch.setattr(reports, "DEFER_QUOTA_WAITS_OVER", 0.5)
    sp_conn.config(speed=30.0)  # createReport: 0.5 per second, burst 15
    with SellingPartnerHook().get_conn() as client:
        # Another task's createReport teaches the fleet's bucket Amazon's (scaled) rate; others booked the rest.
        client.create_report(ORDERS, ["ATVPDKIKX0DER"])
        booked = [client.reserve_quota("createReport") for _ in range(13)]
    assert booked[-1] < 0.5  # the burst covers them: due now
    deferrals = []
    numbered = {**REQUEST, "force_new_report": True, "request_number": 15, "request_count": 40}

    finished = run(operator(numbered), on_defer=lambda deferred: deferrals.append((deferred.trigger, datetime.now(UTC))))

    assert finished["processing_status"] == "DONE"
    trigger, deferred_at = deferrals[0]
    assert isinstance(trigger, DateTimeTrigger)  # no worker held while the token comes due
    assert timedelta(seconds=1) <= trigger.moment - deferred_at <= timedelta(seconds=3)  # one refill: 2 s
    stats = sp_conn.stats()
    assert stats["calls"]["createReport"] == 2 and stats["responses"].get("429", 0) == 0
    out = capfd.readouterr().out
    assert "report 15 of 40: createReport quota for" in out and "booked ahead" in out
    assert "report 15 of 40: Requested" in out
