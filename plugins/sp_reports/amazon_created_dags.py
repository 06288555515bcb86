"""The DAGs for reports Amazon creates itself, each landed exactly once:

* ``sp_reports_notifications``: lands every report a REPORT_PROCESSING_FINISHED notification
  announces (SQS, through the amazon provider's deferrable SqsSensor), with no getReport polling.
* ``sp_reports_generated_reports``: lists getReports for settlements and scheduled report types and
  lands what the ledger does not hold yet (the safety net for lost notifications, and for settlements).
* ``sp_reports_report_schedules``: keeps Amazon's report schedules in step with the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from airflow.providers.amazon.aws.sensors.sqs import SqsSensor
from airflow.sdk import DAG, Param, get_current_context, task, task_group

from sp_reports.amazon_created import DEFAULT_OVERLAP, find_unlanded_reports
from sp_reports.finished_report import ReportFatalError, fatal_error
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.lake_connection import lake_from_airflow
from sp_reports.landing_tasks import landing_tasks, summarize
from sp_reports.notification_messages import triage_notifications
from sp_reports.payloads import FinishedReport
from sp_reports.registry import ReportType
from sp_reports.schedules import reconcile_schedules

START = datetime(2026, 1, 1, tzinfo=UTC)
GROUP = "report"


def _dag(dag_id: str, description: str, tag: str, schedule: str | None, retries: int, **kwargs) -> DAG:
    """The settings the three DAGs share: one run at a time, no catch-up, this module's docs."""
    return DAG(
        dag_id=dag_id,
        description=description,
        doc_md=__doc__,
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["sp-api", "reports", tag],
        default_args={"retries": retries, "retry_delay": timedelta(minutes=1)},
        **kwargs,
    )


def _landing_group(finished_reports, conn_id: str, via: str):
    @task_group(group_id=GROUP)
    def one_report(finished: dict) -> None:
        landing_tasks(finished, selling_partner_conn_id=conn_id, via=via)

    return one_report.expand(finished=finished_reports)


def _selling_partner_id(hook: SellingPartnerHook, conn_id: str) -> str:
    """The seller whose account the connection reaches: its extra ``selling_partner_id`` (a listing's
    reports and watermark are that seller's)."""
    seller = hook.get_connection(conn_id).extra_dejson.get("selling_partner_id")
    if not seller:
        raise ValueError(f"connection {conn_id!r} names no selling_partner_id (extra): whose reports would these be?")
    return str(seller)


def build_generated_reports_dag(
    registry: Mapping[str, ReportType],
    *,
    selling_partner_conn_id: str = SellingPartnerHook.default_conn_name,
    schedule: str | None = "@hourly",
    retries: int = 2,
) -> DAG:
    reports = [report for report in registry.values() if report.generated_by_amazon]
    # One listing at a time; the ledger check before each landing covers runs that overlap anyway.
    with _dag(
        "sp_reports_generated_reports",
        "Lands the reports Amazon generated (settlements, report schedules) that the lake lacks",
        "generated",
        schedule,
        retries,
        params={
            "overlap_hours": Param(
                int(DEFAULT_OVERLAP.total_seconds() // 3600),
                type="integer",
                minimum=0,
                title="Overlap (hours)",
                description="How far before the newest landed report the listing starts.",
            )
        },
    ) as dag:

        @task
        def list_reports() -> list[FinishedReport]:
            overlap = timedelta(hours=get_current_context()["params"]["overlap_hours"])
            hook = SellingPartnerHook(selling_partner_conn_id)
            seller = _selling_partner_id(hook, selling_partner_conn_id)
            with hook.get_conn() as client:
                found = find_unlanded_reports(
                    client,
                    lake_from_airflow(),
                    reports,
                    selling_partner_id=seller,
                    selling_partner_conn_id=selling_partner_conn_id,
                    overlap=overlap,
                )
            print(
                f"{len(found)} report(s) to land: " + ", ".join(f"{o['report_type']} {o['report_id']}" for o in found)
            )
            return found

        listed = list_reports()
        _landing_group(listed, selling_partner_conn_id, "listing") >> summarize("list_reports")
    return dag


def build_notifications_dag(
    registry: Mapping[str, ReportType],
    *,
    queue_url: str,
    aws_conn_id: str = "aws_default",
    selling_partner_conn_id: str = SellingPartnerHook.default_conn_name,
    poll_seconds: int = 20,
    schedule: str | None = "@continuous",
    retries: int = 2,
) -> DAG:
    with _dag(
        "sp_reports_notifications",
        "Lands the reports REPORT_PROCESSING_FINISHED notifications announce (SQS)",
        "notifications",
        schedule,
        retries,
    ) as dag:
        # Deferred while the queue is empty: no worker is held. An idle day ends the run as skipped
        # and the continuous schedule starts the next one.
        receive = SqsSensor(
            task_id="receive_notifications",
            sqs_queue=queue_url,
            aws_conn_id=aws_conn_id,
            max_messages=10,
            num_batches=5,
            wait_time_seconds=min(poll_seconds, 20),
            poke_interval=poll_seconds,
            deferrable=True,
            timeout=timedelta(days=1).total_seconds(),
            soft_fail=True,
            retries=0,
        )

        @task
        def triage() -> list[dict]:
            """The reports to land (DONE and CANCELLED); the FATAL ones go to fail_on_fatal."""
            ti = get_current_context()["ti"]
            messages = ti.xcom_pull(task_ids="receive_notifications", key="messages") or []
            with SellingPartnerHook(selling_partner_conn_id).get_conn() as client:
                result = triage_notifications(messages, lake_from_airflow(), registry, client.get_report)
            print(
                f"{len(messages)} message(s): {len(result['land'])} report(s) to land, {len(result['fatal'])} FATAL, "
                f"{len(result['ignored'])} ignored"
            )
            ti.xcom_push(key="fatal", value=result["fatal"])
            return result["land"]

        @task
        def fail_on_fatal() -> None:
            fatal = get_current_context()["ti"].xcom_pull(task_ids="triage", key="fatal") or []
            if not fatal:
                return
            lake, errors = lake_from_airflow(), []
            with SellingPartnerHook(selling_partner_conn_id).get_conn() as client:
                for finished in fatal:
                    errors.append(
                        str(
                            fatal_error(
                                client,
                                {
                                    "reportId": finished["report_id"],
                                    "reportType": finished["report_type"],
                                    "reportDocumentId": finished["report_document_id"],
                                },
                            )
                        )
                    )
                    # Recorded, so a redelivered notification of the same failure does not fail another run.
                    from sp_reports.lake.ledger import Ledger

                    Ledger(lake).record(finished, "FATAL", "notification")
            raise ReportFatalError("; ".join(errors))

        triaged = triage()
        receive >> triaged >> fail_on_fatal()
        _landing_group(triaged, selling_partner_conn_id, "notification") >> summarize("triage")
    return dag


def build_report_schedules_dag(
    registry: Mapping[str, ReportType],
    *,
    selling_partner_conn_id: str = SellingPartnerHook.default_conn_name,
    schedule: str | None = "@daily",
    retries: int = 2,
) -> DAG:
    with _dag(
        "sp_reports_report_schedules",
        "Makes Amazon's report schedules match the registry's amazon_schedule entries",
        "schedules",
        schedule,
        retries,
        params={
            "dry_run": Param(
                False,
                type="boolean",
                title="Dry run",
                description="Only show what would be created, replaced and cancelled.",
            )
        },
    ) as dag:

        @task
        def reconcile() -> dict:
            dry_run = bool(get_current_context()["params"]["dry_run"])
            with SellingPartnerHook(selling_partner_conn_id).get_conn() as client:
                plan = reconcile_schedules(client, lake_from_airflow(), registry.values(), dry_run=dry_run)
            for action, entries in plan.items():
                for entry in entries:
                    print(f"{action:<10} {entry['reportType']} {','.join(entry['marketplaceIds'])} {entry['period']}")
            return plan

        reconcile()
    return dag
