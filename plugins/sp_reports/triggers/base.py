"""What every report wait in the triggerer shares: the shared client, one getReport check that rides out
transient errors, the deadline, and ``on_kill`` that cancels only what a user cancelled."""

from __future__ import annotations

import time
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from sp_reports.client import AsyncSellingPartnerClient, SellingPartnerError, is_transient
from sp_reports.finished_report import TERMINAL_STATUSES
from sp_reports.hooks.selling_partner import SellingPartnerHook

# The longest pause between two checks after consecutive transient failures.
MAX_ERROR_BACKOFF = 300.0
# Task instance states in which a user has ended the task: mark failed / success (and what the scheduler
# makes of them). A cleared task (no state, scheduled, queued, running ...) resumes its report on the next
# try, so it is left running.
USER_ENDED_STATES = frozenset({"failed", "success", "skipped", "upstream_failed", "removed"})


class ReportWaitTrigger(BaseTrigger):
    """Base of the report waits. Everything it needs is in its JSON kwargs and the deadline is an absolute
    epoch time, so a triggerer restart rebuilds it and carries on with the same deadline. Subclasses
    implement ``run`` with ``check``; each yields exactly one event:

    * ``{"status": "terminal", "report": <Report>}``
    * ``{"status": "timeout", "report_id": ..., "last_status": ..., "waited_seconds": ...}``
    * ``{"status": "stuck", "report": <Report>}``: still IN_QUEUE/IN_PROGRESS at ``stuck_at`` (epoch seconds)
    * ``{"status": "error", "report_id": ..., "message": ...}``: a permanent error (a 4xx other than 429,
      credentials refused after a fresh token). 429, 5xx and network errors are retried until the deadline.
    """

    # The constructor arguments ``serialize`` records, each an attribute of the same name: what a triggerer
    # rebuilds the trigger from. A subclass adds its own.
    serialized_fields: tuple[str, ...] = (
        "report_id",
        "selling_partner_conn_id",
        "poll_interval",
        "deadline",
        "started_at",
        "cancel_on_kill",
        "stuck_at",
    )

    def __init__(
        self,
        report_id: str,
        selling_partner_conn_id: str = SellingPartnerHook.default_conn_name,
        poll_interval: float = 30.0,
        deadline: float | None = None,
        started_at: float | None = None,
        cancel_on_kill: bool = True,
        stuck_at: float | None = None,
    ) -> None:
        super().__init__()
        self.report_id = report_id
        self.selling_partner_conn_id = selling_partner_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.started_at = started_at if started_at is not None else time.time()
        self.cancel_on_kill = cancel_on_kill
        self.stuck_at = stuck_at
        self._failures = 0
        self._last_status = "unknown"

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = {name: getattr(self, name) for name in self.serialized_fields}
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def client(self) -> AsyncSellingPartnerClient:
        return await SellingPartnerHook(self.selling_partner_conn_id).shared_async_client()

    async def check(self) -> TriggerEvent | float:
        """One getReport: the event to yield (terminal, permanent error, or timeout once past the deadline),
        else how long to wait before the next check (longer after transient errors, never past the deadline)."""
        try:
            report = await (await self.client()).get_report(self.report_id)
        except SellingPartnerError as exc:
            if not is_transient(exc):
                return TriggerEvent({"status": "error", "report_id": self.report_id, "message": str(exc)})
            self._failures += 1
            wait = min(max(self.poll_interval, MAX_ERROR_BACKOFF), self.poll_interval * 2 ** (self._failures - 1))
            self.log.warning(
                "Report %s: getReport failed (%s), transient failure %d in a row; checking again in %.0fs",
                self.report_id,
                exc,
                self._failures,
                self._bounded(wait),
            )
        else:
            self._failures = 0
            self._last_status = report["processingStatus"]
            if self._last_status in TERMINAL_STATUSES:
                return TriggerEvent({"status": "terminal", "report": report})
            if self.stuck_at is not None and time.time() >= self.stuck_at:
                return TriggerEvent({"status": "stuck", "report": report})
            wait = self.poll_interval
        if self.deadline is not None and time.time() >= self.deadline:
            return TriggerEvent(
                {
                    "status": "timeout",
                    "report_id": self.report_id,
                    "last_status": self._last_status,
                    "waited_seconds": round(time.time() - self.started_at),
                }
            )
        return self._bounded(wait)

    def _bounded(self, wait: float) -> float:
        """Never sleep past the deadline, nor past the moment the report counts as stuck."""
        limits = [t for t in (self.deadline, self.stuck_at) if t is not None]
        if not limits:
            return wait
        return max(0.0, min(wait, min(limits) - time.time()))

    async def on_kill(self) -> None:
        """A report still in Amazon's queue is cancelled, but only if a user ended the task.

        Airflow 3.3's triggerer calls ``on_kill`` for every trigger it stops running while not shutting
        down, including the ones another triggerer took over (e.g. after this one stalled past its
        heartbeat): that report is still awaited over there. So the task instance's state decides: only
        a state a user sets (failed, success) cancels. When the state cannot be read, nothing is cancelled:
        a report left running costs nothing, a cancelled live one loses data.
        """
        if not self.cancel_on_kill:
            return
        state = await self._task_state()
        if state not in USER_ENDED_STATES:
            self.log.info(
                "Report %s is left running at Amazon: the task is %s, not ended by a user (the wait "
                "moved to another triggerer, or the task will resume it)",
                self.report_id,
                state,
            )
            return
        if await (await self.client()).cancel_if_in_queue(self.report_id):
            self.log.info(
                "Cancelled report %s, which was still IN_QUEUE (the task was marked %s)", self.report_id, state
            )

    async def _task_state(self) -> str | None:
        """The deferred task instance's state now, from Airflow's execution API; None if it can't be read."""
        ti = self.task_instance
        if ti is None:
            return None
        try:
            from airflow.sdk.execution_time import task_runner
            from airflow.sdk.execution_time.comms import GetTaskStates, TaskStatesResult

            response = await task_runner.SUPERVISOR_COMMS.asend(
                GetTaskStates(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=[ti.task_id], map_index=ti.map_index)
            )
            if not isinstance(response, TaskStatesResult):
                raise TypeError(f"the supervisor answered GetTaskStates with {type(response).__name__}")
            states = response.task_states.get(ti.run_id, {})
        except Exception:
            self.log.warning("Could not read the state of task %s", ti.task_id, exc_info=True)
            return None
        key = ti.task_id if ti.map_index is None or ti.map_index < 0 else f"{ti.task_id}_{ti.map_index}"
        state = states.get(key)
        return str(getattr(state, "value", state)) if state is not None else None
