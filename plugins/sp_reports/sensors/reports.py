"""Wait for an existing SP-API report (scheduled, Amazon-generated or requested elsewhere)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue

from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.mixins import ReportWaitMixin


class ReportProcessingSensor(ReportWaitMixin, BaseSensorOperator):
    """Succeeds when ``report_id`` reaches DONE or CANCELLED (``rows: 0``); fails on FATAL with the
    error document summarised. Deferrable by default; the sensor's ``timeout`` bounds the wait and
    the failure names the report. It never cancels a report it did not create. With
    ``notification_queue_url`` it waits for the report's notification instead of polling (see
    ``RequestReportOperator``). With ``stuck_after``, a report still IN_QUEUE/IN_PROGRESS that long after its
    creation fails the sensor at once, saying so, rather than when ``timeout`` runs out."""

    template_fields: Sequence[str] = ("report_id",)
    ui_color = "#ff9900"

    def __init__(
        self,
        *,
        report_id: str,
        selling_partner_conn_id: str = SellingPartnerHook.default_conn_name,
        deferrable: bool = True,
        poll_interval: float = 30.0,
        notification_queue_url: str | None = None,
        aws_conn_id: str | None = "aws_default",
        fallback_poll_interval: float = 900.0,
        stuck_after: timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", timedelta(hours=6).total_seconds())
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.report_id = report_id
        self.stuck_after = stuck_after
        self.configure_wait(
            selling_partner_conn_id=selling_partner_conn_id,
            deferrable=deferrable,
            poll_interval=poll_interval,
            cancel_on_kill=False,  # never cancel a report this task did not create
            notification_queue_url=notification_queue_url,
            aws_conn_id=aws_conn_id,
            fallback_poll_interval=fallback_poll_interval,
        )

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        with self.hook.get_conn() as client:
            return self.wait_for_report(client, self.report_id, timedelta(seconds=self.timeout))

    def poke(self, context: Context) -> PokeReturnValue:
        with self.hook.get_conn() as client:
            finished, _, _ = self.check_report(client, self.report_id)
        if finished is None:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=finished)
