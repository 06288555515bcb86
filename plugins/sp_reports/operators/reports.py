"""Request an SP-API report and wait, deferred, until Amazon has finished processing it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from sp_reports.client import NotFoundError, OutcomeUnknownError, SellingPartnerClient
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.outcome import TERMINAL_STATUSES, fatal_error, report_outcome
from sp_reports.triggers.notifications import ReportNotificationTrigger
from sp_reports.triggers.reports import ReportProcessingTrigger

# The key under which a task instance remembers the report it created, across retries and restarts.
REPORT_ID_KEY = "sp_report_id"
# Amazon serves getReport for 90 days; remembering the id longer is pointless.
REPORT_ID_RETENTION = timedelta(days=90)


class ReportWaitMixin:
    """Waiting for a report and turning its terminal status into a task result; shared by the
    operator and the sensor so both behave identically."""

    selling_partner_conn_id: str
    poll_interval: float
    deferrable: bool
    cancel_on_kill: bool
    # Waiting by notification (deferrable only): the SQS queue Amazon notifies, and how often to poll
    # getReport anyway in case the notification is lost.
    notification_queue_url: str | None = None
    aws_conn_id: str | None = "aws_default"
    fallback_poll_interval: float = 900.0
    _report_id: str | None = None

    def waiting_trigger(self, report_id: str, deadline: float) -> ReportProcessingTrigger:
        if self.notification_queue_url:
            return ReportNotificationTrigger(
                report_id=report_id,
                queue_url=self.notification_queue_url,
                aws_conn_id=self.aws_conn_id,
                fallback_poll_interval=self.fallback_poll_interval,
                selling_partner_conn_id=self.selling_partner_conn_id,
                deadline=deadline,
                cancel_on_kill=self.cancel_on_kill,
            )
        return ReportProcessingTrigger(
            report_id=report_id,
            selling_partner_conn_id=self.selling_partner_conn_id,
            poll_interval=self.poll_interval,
            deadline=deadline,
            cancel_on_kill=self.cancel_on_kill,
        )

    @property
    def hook(self) -> SellingPartnerHook:
        return SellingPartnerHook(self.selling_partner_conn_id)

    def wait_for_report(self, client: SellingPartnerClient, report_id: str, max_wait: timedelta) -> dict:
        """Return the report's outcome once terminal; in deferrable mode, defer after the first check."""
        self._report_id = report_id
        deadline = time.time() + max_wait.total_seconds()
        while True:
            report = client.get_report(report_id)
            status = report["processingStatus"]
            if status in TERMINAL_STATUSES:
                return self.finish(client, report)
            if self.deferrable:
                self.defer(  # type: ignore[attr-defined]
                    trigger=self.waiting_trigger(report_id, deadline),
                    method_name="execute_complete",
                    # Backstop only: the trigger's own deadline fires first, with a message naming the report.
                    timeout=max_wait + timedelta(minutes=10),
                )
            if time.time() >= deadline:
                raise self.timeout_error(report_id, status, max_wait.total_seconds())
            self.log.info("Report %s is %s; checking again in %.0fs", report_id, status, self.poll_interval)  # type: ignore[attr-defined]
            time.sleep(min(self.poll_interval, max(deadline - time.time(), 0)))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict:
        if event["status"] == "timeout":
            raise self.timeout_error(event["report_id"], event["last_status"], event["waited_seconds"])
        if event["status"] == "error":
            raise AirflowException(f"waiting for report {event['report_id']} failed: {event['message']}")
        with self.hook.get_conn() as client:
            return self.finish(client, event["report"])

    def finish(self, client: SellingPartnerClient, report: dict) -> dict:
        outcome = report_outcome(report)
        status = report["processingStatus"]
        self.log.info("Report %s (%s) finished %s", report["reportId"], report["reportType"], status)  # type: ignore[attr-defined]
        if status == "FATAL":
            raise fatal_error(client, report)
        if status == "CANCELLED":
            # Amazon's "no data" (MWS _DONE_NO_DATA_): a successful run that lands nothing.
            self.log.info("Amazon cancelled report %s: no data for this request; downstream tasks skip",  # type: ignore[attr-defined]
                          report["reportId"])
            outcome["rows"] = 0
        return outcome

    @staticmethod
    def timeout_error(report_id: str, last_status: str, waited_seconds: float) -> AirflowException:
        return AirflowException(
            f"report {report_id} was still {last_status} after {waited_seconds:.0f}s of waiting; it is left "
            f"running at Amazon and a retry of this task resumes waiting for it"
        )

    def cancel_if_queued(self) -> None:
        if not (self.cancel_on_kill and self._report_id):
            return
        with self.hook.get_conn() as client:
            if client.get_report(self._report_id)["processingStatus"] == "IN_QUEUE":
                client.cancel_report(self._report_id)
                self.log.info("Cancelled report %s, which was still IN_QUEUE", self._report_id)  # type: ignore[attr-defined]


class RequestReportOperator(ReportWaitMixin, BaseOperator):
    """Create an SP-API report (createReport) and wait until Amazon has processed it.

    Deferrable by default: no worker slot is held while Amazon prepares the report. The reportId
    is stored in the task instance's ``task_state_store`` before waiting, so a retried or restarted
    task resumes that report instead of creating another one (createReport allows about one call a
    minute). Returns the report outcome (see ``sp_reports.outcome.report_outcome``); FATAL fails the
    task with the error document summarised; CANCELLED succeeds with ``rows: 0``.

    :param request: a planned request (``sp_reports.planning.plan_requests``); its keys override
        ``report_type``, ``marketplace_ids``, ``data_start_time``, ``data_end_time``, ``report_options``.
    :param max_wait: how long to wait for a terminal status before failing (the report is kept).
    :param notification_queue_url: wait for the report's REPORT_PROCESSING_FINISHED notification on
        this SQS queue (through ``aws_conn_id``) instead of polling, polling getReport only every
        ``fallback_poll_interval`` seconds in case it is lost. Deferrable mode only.
    """

    template_fields: Sequence[str] = (
        "report_type", "marketplace_ids", "data_start_time", "data_end_time", "report_options", "request",
    )
    ui_color = "#ff9900"

    def __init__(
        self,
        *,
        report_type: str | None = None,
        marketplace_ids: list[str] | None = None,
        data_start_time: str | None = None,
        data_end_time: str | None = None,
        report_options: dict[str, str] | None = None,
        request: dict | None = None,
        selling_partner_conn_id: str = SellingPartnerHook.default_conn_name,
        deferrable: bool = True,
        poll_interval: float = 30.0,
        max_wait: timedelta = timedelta(hours=6),
        cancel_on_kill: bool = True,
        notification_queue_url: str | None = None,
        aws_conn_id: str | None = "aws_default",
        fallback_poll_interval: float = 900.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.notification_queue_url = notification_queue_url
        self.aws_conn_id = aws_conn_id
        self.fallback_poll_interval = fallback_poll_interval
        self.report_type = report_type
        self.marketplace_ids = marketplace_ids
        self.data_start_time = data_start_time
        self.data_end_time = data_end_time
        self.report_options = report_options
        self.request = request
        self.selling_partner_conn_id = selling_partner_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.cancel_on_kill = cancel_on_kill

    def report_spec(self) -> dict:
        spec = {
            "report_type": self.report_type,
            "marketplace_ids": self.marketplace_ids,
            "data_start_time": self.data_start_time,
            "data_end_time": self.data_end_time,
            "report_options": self.report_options,
            **(self.request or {}),
        }
        if not spec["report_type"]:
            raise ValueError(f"{self.task_id}: report_type is required")
        if not spec["marketplace_ids"]:
            spec["marketplace_ids"] = self.hook.default_marketplace_ids()
        if not spec["marketplace_ids"]:
            raise ValueError(f"{self.task_id}: no marketplace ids given and the connection names none")
        return spec

    def execute(self, context: Context) -> dict:
        store = context.get("task_state_store")
        spec = self.report_spec()
        with self.hook.get_conn() as client:
            report_id = self._resumable_report_id(client, store)
            if report_id is None:
                report_id = self._create_report(client, spec)
                self.log.info("Requested %s for %s: report %s", spec["report_type"], spec["marketplace_ids"], report_id)
                if store is not None:
                    store.set(REPORT_ID_KEY, report_id, retention=REPORT_ID_RETENTION)
                else:
                    self.log.warning("No task_state_store in this context: a retry would request a new report")
            return self.wait_for_report(client, report_id, self.max_wait)

    def _create_report(self, client: SellingPartnerClient, spec: dict) -> str:
        # Allow for clock skew between this worker and Amazon when looking the report up again.
        asked_at = datetime.now(timezone.utc) - timedelta(minutes=2)
        try:
            return client.create_report(**spec)
        except OutcomeUnknownError:
            report_id = find_matching_report(client, spec, created_since=asked_at)
            if report_id is None:
                raise
            self.log.warning("createReport's response was lost; adopting report %s, which matches the request",
                             report_id)
            return report_id

    def _resumable_report_id(self, client: SellingPartnerClient, store: Any) -> str | None:
        report_id = store.get(REPORT_ID_KEY) if store is not None else None
        if not report_id:
            return None
        try:
            status = client.get_report(report_id)["processingStatus"]
        except NotFoundError:
            self.log.warning("Report %s from an earlier try is gone at Amazon; requesting a new one", report_id)
            return None
        if status in ("FATAL", "CANCELLED"):
            # A CANCELLED report from an earlier try may be one this pipeline cancelled (a user marked the
            # task failed, then cleared it): never read that as Amazon's "no data". Asking again is cheap.
            self.log.warning("Report %s from an earlier try ended %s; requesting a new one", report_id, status)
            return None
        self.log.info("Resuming report %s (%s), created by an earlier try of this task", report_id, status)
        return report_id

    def on_kill(self) -> None:
        self.cancel_if_queued()


def find_matching_report(client: SellingPartnerClient, spec: dict, created_since: datetime) -> str | None:
    """The newest report created since ``created_since`` with this request's type, marketplaces and
    data range: how a createReport whose response was lost is recovered without asking twice."""
    listing = client.get_reports(report_types=[spec["report_type"]], marketplace_ids=spec["marketplace_ids"],
                                 created_since=created_since)
    wanted = (_instant(spec.get("data_start_time")), _instant(spec.get("data_end_time")))
    candidates = [
        report
        for report in listing.get("reports", [])
        if sorted(report.get("marketplaceIds", [])) == sorted(spec["marketplace_ids"])
        and all(w is None or w == _instant(report.get(key))
                for w, key in zip(wanted, ("dataStartTime", "dataEndTime")))
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda report: _instant(report["createdTime"]))["reportId"]


def _instant(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
