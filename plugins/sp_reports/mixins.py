"""What the report operator and the report sensor share: one way to wait for a report and to turn its
terminal status into the task's result (modelled on the amazon provider's ``utils/mixins.py``)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from sp_reports.existing_reports import instant
from sp_reports.finished_report import TERMINAL_STATUSES, fatal_error, finished_report
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.triggers.notifications import ReportNotificationTrigger
from sp_reports.triggers.reports import ReportProcessingTrigger

if TYPE_CHECKING:
    from typing import NoReturn

    from airflow.sdk import Context
    from airflow.sdk.types import Logger
    from airflow.triggers.base import BaseTrigger

    from sp_reports.client import SellingPartnerClient
    from sp_reports.payloads import FinishedReport
    from sp_reports.triggers.base import ReportWaitTrigger


class ReportWaitMixin:
    """Waiting for a report and turning its terminal status into a ``FinishedReport``.

    Deferrable: one getReport in the worker, then a trigger holds the wait (no worker slot) until the report
    is terminal. Not deferrable: the same getReport check every ``poll_interval`` seconds in the worker.
    FATAL fails the task with the error document summarised; CANCELLED (Amazon's "no data") succeeds with
    ``rows: 0``.
    """

    selling_partner_conn_id: str
    poll_interval: float
    deferrable: bool
    cancel_on_kill: bool
    # Waiting by notification (deferrable only): the SQS queue Amazon notifies, and how often to poll
    # getReport anyway in case the notification is lost.
    notification_queue_url: str | None = None
    aws_conn_id: str | None = "aws_default"
    fallback_poll_interval: float = 900.0
    # A report still IN_QUEUE/IN_PROGRESS this long after its creation is stuck (``report_stuck``); None: never.
    stuck_after: timedelta | None = None
    _report_id: str | None = None

    if TYPE_CHECKING:  # provided by BaseOperator; the signatures are its own, or mypy rejects the mix

        @property
        def log(self) -> Logger: ...

        def defer(
            self,
            *,
            trigger: BaseTrigger,
            method_name: str,
            kwargs: dict[str, Any] | None = None,
            timeout: timedelta | int | float | None = None,
        ) -> NoReturn: ...

    def configure_wait(
        self,
        *,
        selling_partner_conn_id: str,
        deferrable: bool,
        poll_interval: float,
        cancel_on_kill: bool,
        notification_queue_url: str | None,
        aws_conn_id: str | None,
        fallback_poll_interval: float,
    ) -> None:
        """The wait's settings, as the operator's and the sensor's constructors take them."""
        self.selling_partner_conn_id = selling_partner_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.cancel_on_kill = cancel_on_kill
        self.notification_queue_url = notification_queue_url
        self.aws_conn_id = aws_conn_id
        self.fallback_poll_interval = fallback_poll_interval

    @property
    def hook(self) -> SellingPartnerHook:
        return SellingPartnerHook(self.selling_partner_conn_id)

    def waiting_trigger(self, report_id: str, deadline: float, stuck_at: float | None) -> ReportWaitTrigger:
        if self.notification_queue_url:
            return ReportNotificationTrigger(
                report_id=report_id,
                queue_url=self.notification_queue_url,
                aws_conn_id=self.aws_conn_id,
                fallback_poll_interval=self.fallback_poll_interval,
                selling_partner_conn_id=self.selling_partner_conn_id,
                deadline=deadline,
                stuck_at=stuck_at,
                cancel_on_kill=self.cancel_on_kill,
            )
        return ReportProcessingTrigger(
            report_id=report_id,
            selling_partner_conn_id=self.selling_partner_conn_id,
            poll_interval=self.poll_interval,
            deadline=deadline,
            stuck_at=stuck_at,
            cancel_on_kill=self.cancel_on_kill,
        )

    def wait_for_report(self, client: SellingPartnerClient, report_id: str, max_wait: timedelta) -> FinishedReport:
        """The finished report; in deferrable mode, defer after the first check."""
        self._report_id = report_id
        self.hook.account()  # a connection that cannot name the report's seller fails now, not after the wait
        deadline = time.time() + max_wait.total_seconds()
        while True:
            finished, status, stuck_at = self.check_report(client, report_id)
            if finished is not None:
                return finished
            if self.deferrable:
                self.defer(
                    trigger=self.waiting_trigger(report_id, deadline, stuck_at),
                    method_name="execute_complete",
                    # Backstop only: the trigger's own deadline fires first, with a message naming the report.
                    timeout=max_wait + timedelta(minutes=10),
                )
            if time.time() >= deadline:
                raise self.timeout_error(report_id, status, max_wait.total_seconds())
            until = min(deadline, stuck_at) if stuck_at is not None else deadline
            time.sleep(min(self.poll_interval, max(until - time.time(), 0)))

    def check_report(
        self, client: SellingPartnerClient, report_id: str
    ) -> tuple[FinishedReport | None, str, float | None]:
        """One getReport: (the finished report once terminal or replaced, else None; its status; when it counts as
        stuck)."""
        report = client.get_report(report_id)
        status = str(report["processingStatus"])
        if status in TERMINAL_STATUSES:
            return self.finish(client, report), status, None
        self.log.info("Report %s is %s", report_id, status)
        stuck_at = self.stuck_at(report)
        if stuck_at is not None and time.time() >= stuck_at:
            return self.report_stuck(client, report), status, stuck_at
        return None, status, stuck_at

    def stuck_at(self, report: dict[str, Any]) -> float | None:
        """When this report counts as stuck (epoch seconds): ``stuck_after`` past its creation."""
        if self.stuck_after is None or not report.get("createdTime"):
            return None
        return (instant(report["createdTime"]) + self.stuck_after).timestamp()

    def report_stuck(self, client: SellingPartnerClient, report: dict[str, Any]) -> FinishedReport:
        """A report Amazon is not finishing. Waiting for a report someone else requested, all a task can do is
        fail saying so; the request operator replaces it instead."""
        raise AirflowException(
            self.stuck_message(report)
            + (
                "; this task did not request it, so it cannot replace it: request the report again (e.g. clear the "
                "request task of the DAG that created it)"
            )
        )

    def stuck_message(self, report: dict[str, Any]) -> str:
        age = time.time() - instant(report["createdTime"]).timestamp()
        return (
            f"report {report['reportId']} ({report['reportType']}) is stuck: still {report['processingStatus']} "
            f"{timedelta(seconds=round(age))} after its creation (stuck_after {self.stuck_after})"
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> FinishedReport:
        if event["status"] == "timeout":
            raise self.timeout_error(event["report_id"], event["last_status"], event["waited_seconds"])
        if event["status"] == "error":
            raise AirflowException(f"waiting for report {event['report_id']} failed: {event['message']}")
        with self.hook.get_conn() as client:
            if event["status"] == "stuck":
                return self.report_stuck(client, event["report"])
            return self.finish(client, event["report"])

    def finish(self, client: SellingPartnerClient, report: dict[str, Any]) -> FinishedReport:
        finished = finished_report(report, self.hook.account())
        status = report["processingStatus"]
        self.log.info("Report %s (%s) finished %s", report["reportId"], report["reportType"], status)
        if status == "FATAL":
            raise fatal_error(client, report)
        if status == "CANCELLED":
            # Amazon's "no data" (MWS _DONE_NO_DATA_): a successful run that lands nothing.
            self.log.info(
                "Amazon cancelled report %s: no data for this request; downstream tasks skip", report["reportId"]
            )
            finished["rows"] = 0
        return finished

    @staticmethod
    def timeout_error(report_id: str, last_status: str, waited_seconds: float) -> AirflowException:
        return AirflowException(
            f"report {report_id} was still {last_status} after {waited_seconds:.0f}s of waiting; it is left "
            f"running at Amazon and a retry of this task resumes waiting for it"
        )

    def cancel_if_in_queue(self) -> None:
        """On kill: a report this task created and Amazon has not started yet is cancelled."""
        if not (self.cancel_on_kill and self._report_id):
            return
        with self.hook.get_conn() as client:
            if client.cancel_if_in_queue(self._report_id):
                self.log.info("Cancelled report %s, which was still IN_QUEUE", self._report_id)
