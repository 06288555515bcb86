"""Request an SP-API report and wait, deferred, until Amazon has finished processing it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, overload

from airflow.sdk import BaseOperator, Context

from sp_reports.client import NotFoundError, OutcomeUnknownError, SellingPartnerClient
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.mixins import ReportWaitMixin
from sp_reports.payloads import FinishedReport

# A planned request's account: which connection requests it (not createReport arguments).
ACCOUNT_KEYS = ("selling_partner_conn_id", "selling_partner_id")
# Every key of a planned request that is no createReport argument: its account, and how to run it.
NOT_CREATE_REPORT_ARGS = (*ACCOUNT_KEYS, "force_new_report", "request_number", "request_count")
# The key under which a task instance remembers the report it created, across retries and restarts.
REPORT_ID_KEY = "sp_report_id"
# Amazon serves getReport for 90 days; remembering the id longer is pointless.
REPORT_ID_RETENTION = timedelta(days=90)


class RequestReportOperator(ReportWaitMixin, BaseOperator):
    """Create an SP-API report (createReport) and wait until Amazon has processed it.

    Deferrable by default: no worker slot is held while Amazon prepares the report. The reportId
    is stored in the task instance's ``task_state_store`` before waiting, so a retried or restarted
    task resumes that report instead of creating another one (createReport allows about one call a
    minute). Returns the finished report (see ``sp_reports.finished_report.finished_report``); FATAL fails the
    task with the error document summarised; CANCELLED succeeds with ``rows: 0``.

    :param request: a planned request (``sp_reports.planning.plan_requests``); its keys override
        ``report_type``, ``marketplace_ids``, ``data_start_time``, ``data_end_time``, ``report_options``,
        and its account (``selling_partner_conn_id``) overrides the operator's connection.
    :param max_wait: how long to wait for a terminal status before failing (the report is kept).
    :param notification_queue_url: wait for the report's REPORT_PROCESSING_FINISHED notification on
        this SQS queue (through ``aws_conn_id``) instead of polling, polling getReport only every
        ``fallback_poll_interval`` seconds in case it is lost. Deferrable mode only.
    """

    template_fields: Sequence[str] = (
        "report_type",
        "marketplace_ids",
        "data_start_time",
        "data_end_time",
        "report_options",
        "request",
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
        self.report_type = report_type
        self.marketplace_ids = marketplace_ids
        self.data_start_time = data_start_time
        self.data_end_time = data_end_time
        self.report_options = report_options
        self.request = request
        self.max_wait = max_wait
        self.configure_wait(
            selling_partner_conn_id=selling_partner_conn_id,
            deferrable=deferrable,
            poll_interval=poll_interval,
            cancel_on_kill=cancel_on_kill,
            notification_queue_url=notification_queue_url,
            aws_conn_id=aws_conn_id,
            fallback_poll_interval=fallback_poll_interval,
        )

    def report_spec(self) -> dict:
        """The createReport arguments: the operator's, overridden by the planned request's."""
        request = {k: v for k, v in (self.request or {}).items() if k not in NOT_CREATE_REPORT_ARGS}
        spec = {
            "report_type": self.report_type,
            "marketplace_ids": self.marketplace_ids,
            "data_start_time": self.data_start_time,
            "data_end_time": self.data_end_time,
            "report_options": self.report_options,
            **request,
        }
        if not spec["report_type"]:
            raise ValueError(f"{self.task_id}: report_type is required")
        if not spec["marketplace_ids"]:
            spec["marketplace_ids"] = list(self.hook.account().marketplace_ids)
        if not spec["marketplace_ids"]:
            raise ValueError(f"{self.task_id}: no marketplace ids given and the connection names none")
        return spec

    def use_requested_account(self) -> None:
        """A planned request names the account (connection) to request with. Called by ``execute`` and again by
        ``execute_complete``, which runs on a new instance of the operator once the trigger fires."""
        conn_id = (self.request or {}).get("selling_partner_conn_id")
        if conn_id:
            self.selling_partner_conn_id = conn_id

    def execute_complete(self, context: Context, event: dict[str, Any]) -> FinishedReport:
        self.use_requested_account()
        return super().execute_complete(context, event)

    def execute(self, context: Context) -> FinishedReport:
        self.use_requested_account()
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
        asked_at = datetime.now(UTC) - timedelta(minutes=2)
        try:
            return client.create_report(**spec)
        except OutcomeUnknownError:
            report_id = find_matching_report(client, spec, created_since=asked_at)
            if report_id is None:
                raise
            self.log.warning(
                "createReport's response was lost; adopting report %s, which matches the request", report_id
            )
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
        self.cancel_if_in_queue()


def find_matching_report(client: SellingPartnerClient, spec: dict, created_since: datetime) -> str | None:
    """The newest report created since ``created_since`` with this request's type, marketplaces and
    data range: how a createReport whose response was lost is recovered without asking twice."""
    listing = client.get_reports(
        report_types=[spec["report_type"]], marketplace_ids=spec["marketplace_ids"], created_since=created_since
    )
    wanted = (_instant(spec.get("data_start_time")), _instant(spec.get("data_end_time")))
    candidates = [
        report
        for report in listing.get("reports", [])
        if sorted(report.get("marketplaceIds", [])) == sorted(spec["marketplace_ids"])
        and all(
            w is None or w == _instant(report.get(key))
            for w, key in zip(wanted, ("dataStartTime", "dataEndTime"), strict=True)
        )
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda report: _instant(report["createdTime"]))["reportId"]


@overload
def _instant(value: str | datetime) -> datetime: ...
@overload
def _instant(value: None) -> None: ...
def _instant(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
