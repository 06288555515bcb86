"""Request an SP-API report and wait, deferred, until Amazon has finished processing it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from sp_reports.client import NotFoundError, OutcomeUnknownError, SellingPartnerClient
from sp_reports.existing_reports import cooldown_started_by, find_matching_report, find_reusable_report, instant
from sp_reports.finished_report import ReportFatalError
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.mixins import ReportWaitMixin
from sp_reports.payloads import FinishedReport
from sp_reports.planning import FORCE_NEW_REPORT, REQUEST_COUNT, REQUEST_NUMBER
from sp_reports.registry import DEFAULT_REUSE_MAX_AGE, DEFAULT_STUCK_AFTER

# A planned request's account: which connection requests it (not createReport arguments).
ACCOUNT_KEYS = ("selling_partner_conn_id", "selling_partner_id")
# Everything else a planned request carries that is not a createReport argument: the reuse switch of the trigger
# form, and the request's place in its run (for "report 17 of 120" progress lines).
NOT_CREATE_REPORT_ARGS = (*ACCOUNT_KEYS, FORCE_NEW_REPORT, REQUEST_NUMBER, REQUEST_COUNT)
# The key under which a task instance remembers the report it created, across retries and restarts.
REPORT_ID_KEY = "sp_report_id"
# ... the report it reused instead of requesting one (said so in the run's summary) ...
REUSED_KEY = "sp_report_reused"
# ... the stuck report it replaced (replaced once only) ...
REPLACED_KEY = "sp_report_replaced"
# ... and the FATAL report whose cooldown it waited out (waited out once only).
COOLDOWN_KEY = "sp_report_cooldown_waited"
# Amazon serves getReport for 90 days; remembering the id longer is pointless.
REPORT_ID_RETENTION = timedelta(days=90)
# A createReport token due later than this is waited for deferred (no worker held), sooner in the worker.
DEFER_QUOTA_WAITS_OVER = 10.0
# Amazon's times are to the second and its clock is not ours: a cooldown is waited out with a second and a tenth
# more, at most this much more.
COOLDOWN_MARGIN = timedelta(seconds=30)


class RequestReportOperator(ReportWaitMixin, BaseOperator):
    """Create an SP-API report (createReport) and wait until Amazon has processed it.

    Deferrable by default: no worker slot is held while Amazon prepares the report. The reportId
    is stored in the task instance's ``task_state_store`` before waiting, so a retried or restarted
    task resumes that report instead of creating another one. Returns the finished report (see
    ``sp_reports.finished_report.finished_report``); FATAL fails the task with the error document summarised;
    CANCELLED succeeds with ``rows: 0``. On the way it respects Amazon's own limits:

    * **Reuse.** Before asking, one getReports looks for a report of the same type, marketplaces and data range that
      is DONE and at most ``reuse_max_age`` old, or still in progress; it is used instead (``reused: true`` in the
      result). A planned request's ``force_new_report`` skips this.
    * **Quota pacing.** createReport allows one call a minute (burst 15) per seller. The task books its token in
      the fleet's quota store first; when it is due later than a few seconds, the task waits for it deferred.
    * **Cooldown.** A report ending FATAL with no error document inside the type's ``cooldown`` after an earlier
      one of the same type and marketplace is Amazon refusing to generate it again so soon: the task waits the
      rest of the window out, deferred, and requests once more.
    * **Stuck reports.** A report still IN_QUEUE/IN_PROGRESS ``stuck_after`` its creation is cancelled if Amazon
      still allows it and requested again, once; a second stuck report fails the task saying what to do.

    :param request: a planned request (``sp_reports.planning.plan_requests``); its keys override
        ``report_type``, ``marketplace_ids``, ``data_start_time``, ``data_end_time``, ``report_options``,
        and its account (``selling_partner_conn_id``) overrides the operator's connection.
    :param max_wait: how long to wait for a terminal status before failing (the report is kept).
    :param notification_queue_url: wait for the report's REPORT_PROCESSING_FINISHED notification on
        this SQS queue (through ``aws_conn_id``) instead of polling, polling getReport only every
        ``fallback_poll_interval`` seconds in case it is lost. Deferrable mode only.
    :param cooldown, reuse_max_age, stuck_after: the report type's limits (the registry's, in the generated DAGs).
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
        cooldown: timedelta | None = None,
        reuse_max_age: timedelta = DEFAULT_REUSE_MAX_AGE,
        stuck_after: timedelta | None = DEFAULT_STUCK_AFTER,
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
        self.cooldown = cooldown
        self.reuse_max_age = reuse_max_age
        self.stuck_after = stuck_after
        self._store: Any = None
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

    def use_requested_account(self, context: Context) -> None:
        """A planned request names the account (connection) to request with. Called on every entry (``execute``
        and each method resumed after a deferral, which run on a new instance of the operator)."""
        conn_id = (self.request or {}).get("selling_partner_conn_id")
        if conn_id:
            self.selling_partner_conn_id = conn_id
        self._store = context.get("task_state_store")

    # -- entries: execute, and the methods resumed after each kind of deferral -------------------------------

    def execute(self, context: Context) -> FinishedReport:
        self.use_requested_account(context)
        spec = self.report_spec()
        with self.hook.get_conn() as client:
            report_id = self._resumable_report_id(client)
            if report_id is None and not (self.request or {}).get(FORCE_NEW_REPORT):
                report_id = self._reusable_report_id(client, spec)
            if report_id is None:
                return self._request(client, spec)
            return self.wait_for_report(client, report_id, self.max_wait)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> FinishedReport:
        self.use_requested_account(context)
        return super().execute_complete(context, event)

    def request_when_due(self, context: Context, event: Any = None) -> FinishedReport:
        """Resumed when the createReport token booked before deferring is due."""
        self.use_requested_account(context)
        with self.hook.get_conn() as client:
            return self._request(client, self.report_spec(), quota_booked=True)

    def request_after_cooldown(self, context: Context, event: Any = None) -> FinishedReport:
        """Resumed once the report type's cooldown has passed: the one request more."""
        self.use_requested_account(context)
        self.log.info("%sThe cooldown has passed; requesting once more", self._progress())
        with self.hook.get_conn() as client:
            return self._request(client, self.report_spec())

    # -- the steps ------------------------------------------------------------------------------------------

    def _request(self, client: SellingPartnerClient, spec: dict, *, quota_booked: bool = False) -> FinishedReport:
        """Request the report at the pace Amazon's createReport quota allows, remember it, and wait for it."""
        if not quota_booked:
            due_in = client.reserve_quota("createReport")
            if due_in > DEFER_QUOTA_WAITS_OVER and self.deferrable:
                due = datetime.now(UTC) + timedelta(seconds=due_in)
                self.log.info(
                    "%screateReport quota for %s is booked ahead: requesting at %s UTC (in %s), deferred",
                    self._progress(), spec["report_type"], f"{due:%H:%M:%S}", timedelta(seconds=round(due_in)),
                )  # fmt: skip
                self.defer(trigger=DateTimeTrigger(moment=due), method_name="request_when_due")
            time.sleep(due_in)
        report_id = self._create_report(client, spec)
        period = f" {spec['data_start_time']}..{spec['data_end_time']}" if spec.get("data_start_time") else ""
        self.log.info(
            "%sRequested %s for %s%s: report %s",
            self._progress(), spec["report_type"], ",".join(spec["marketplace_ids"]), period, report_id,
        )  # fmt: skip
        replaced = self._get(REPLACED_KEY)
        if replaced and self._get(REPORT_ID_KEY) == replaced:
            self.log.warning("Stuck report %s is replaced by report %s", replaced, report_id)
        self._remember(REPORT_ID_KEY, report_id)
        return self.wait_for_report(client, report_id, self.max_wait)

    def _create_report(self, client: SellingPartnerClient, spec: dict) -> str:
        # Allow for clock skew between this worker and Amazon when looking the report up again.
        asked_at = datetime.now(UTC) - timedelta(minutes=2)
        try:
            return client.create_report(**spec, quota_reserved=True)
        except OutcomeUnknownError:
            report_id = find_matching_report(client, spec, created_since=asked_at)
            if report_id is None:
                raise
            self.log.warning(
                "createReport's response was lost; adopting report %s, which matches the request", report_id
            )
            return report_id

    def _resumable_report_id(self, client: SellingPartnerClient) -> str | None:
        report_id = self._get(REPORT_ID_KEY)
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

    def _reusable_report_id(self, client: SellingPartnerClient, spec: dict) -> str | None:
        found = find_reusable_report(
            client, spec, reuse_max_age=self.reuse_max_age, stuck_after=self.stuck_after or timedelta(days=90)
        )
        if found is None:
            return None
        self.log.info(
            "%sReusing report %s (%s, created %s) instead of requesting %s again: Amazon has it for the same "
            "marketplaces and data range (force_new_report in the trigger form requests a new one)",
            self._progress(), found["reportId"], found["processingStatus"], found["createdTime"], spec["report_type"],
        )  # fmt: skip
        self._remember(REPORT_ID_KEY, found["reportId"])
        self._remember(REUSED_KEY, found["reportId"])
        return str(found["reportId"])

    def finish(self, client: SellingPartnerClient, report: dict[str, Any]) -> FinishedReport:
        if report["processingStatus"] == "FATAL" and not report.get("reportDocumentId"):
            self._wait_out_cooldown(client, report)
        finished = super().finish(client, report)
        if self._get(REUSED_KEY) == finished["report_id"]:
            finished["reused"] = True
        return finished

    def _wait_out_cooldown(self, client: SellingPartnerClient, report: dict[str, Any]) -> None:
        """Defer until the type's cooldown has passed when this FATAL is Amazon refusing to generate the report
        again so soon; return (and let the FATAL fail the task) when it is not, or when it was waited out once."""
        if self.cooldown is None:
            return
        earlier = cooldown_started_by(client, report, self.cooldown)
        if earlier is None:
            return
        waited = self._get(COOLDOWN_KEY)
        if waited:
            raise ReportFatalError(
                f"report {report['reportId']} ({report['reportType']}) ended FATAL again after this task waited "
                f"out the {self.cooldown} cooldown once (report {waited} ran into it); the window now runs from "
                f"report {earlier['reportId']}, created {earlier['createdTime']}. Something else requests this type "
                "for the same marketplace, or the registry's cooldown is shorter than Amazon's: space the requests "
                "at least the cooldown apart (registry: cooldown), then clear this task"
            )
        margin = min(COOLDOWN_MARGIN, timedelta(seconds=1) + self.cooldown / 10)
        until = instant(earlier["createdTime"]) + self.cooldown + margin
        self.log.warning(
            "%sReport %s ended FATAL with no error document %s after report %s of the same type and marketplace: "
            "Amazon generates %s at most once per %s. Waiting until %s UTC, deferred, then requesting once more",
            self._progress(), report["reportId"], instant(report["createdTime"]) - instant(earlier["createdTime"]),
            earlier["reportId"], report["reportType"], self.cooldown, f"{until:%Y-%m-%d %H:%M:%S}",
        )  # fmt: skip
        self._remember(COOLDOWN_KEY, report["reportId"])
        self.defer(trigger=DateTimeTrigger(moment=until), method_name="request_after_cooldown")

    def report_stuck(self, client: SellingPartnerClient, report: dict[str, Any]) -> FinishedReport:
        report_id = report["reportId"]
        replaced = self._get(REPLACED_KEY)
        if replaced:
            raise AirflowException(
                f"{self.stuck_message(report)}, and it already replaces stuck report {replaced}: Amazon is not "
                f"generating {report['reportType']} for {','.join(report.get('marketplaceIds', []))} now. Check the "
                "SP-API status and Seller Central, then clear this task to request again; if this type's reports "
                "are just slow, raise stuck_after for it in the registry"
            )
        cancelled = client.cancel_if_in_queue(report_id)
        self.log.warning(
            "%s%s; %s. Requesting it again, once",
            self._progress(), self.stuck_message(report).capitalize(),
            "cancelled it" if cancelled else "Amazon cancels only IN_QUEUE reports, so it is left as it is",
        )  # fmt: skip
        self._remember(REPLACED_KEY, report_id)
        return self._request(client, self.report_spec())

    # -- helpers --------------------------------------------------------------------------------------------

    def _progress(self) -> str:
        """ "report 17 of 120: " for a planned request that knows its place in the run."""
        number, count = (self.request or {}).get(REQUEST_NUMBER), (self.request or {}).get(REQUEST_COUNT)
        return f"report {number} of {count}: " if number and count else ""

    def _get(self, key: str) -> Any:
        return self._store.get(key) if self._store is not None else None

    def _remember(self, key: str, value: str) -> None:
        if self._store is None:
            self.log.warning("No task_state_store in this context: a retry would not know %s=%s", key, value)
            return
        self._store.set(key, value, retention=REPORT_ID_RETENTION)

    def on_kill(self) -> None:
        self.cancel_if_in_queue()
