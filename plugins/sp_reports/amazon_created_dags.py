"""The DAGs for reports Amazon creates itself, each landed exactly once:

* ``sp_reports_notifications``: lands every report a REPORT_PROCESSING_FINISHED notification
  announces (SQS, through the amazon provider's deferrable SqsSensor), with no getReport polling.
* ``sp_reports_generated_reports``: lists getReports for settlements and scheduled report types and
  lands what the ledger does not hold yet (the safety net for lost notifications, and for settlements).
* ``sp_reports_report_schedules``: keeps Amazon's report schedules in step with the registry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from airflow.providers.amazon.aws.sensors.sqs import SqsSensor
from airflow.sdk import DAG, Param, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowException

from sp_reports.amazon_created import DEFAULT_OVERLAP, find_unlanded_reports
from sp_reports.finished_report import ReportFatalError, fatal_error
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.lake_connection import lake_from_airflow
from sp_reports.landing_tasks import ACCOUNT_ERRORS, landing_tasks, summarize
from sp_reports.notification_messages import triage_notifications
from sp_reports.payloads import FinishedReport
from sp_reports.registry import ReportType
from sp_reports.schedules import reconcile_schedules
from sp_reports.settings import DEFAULT_ACCOUNT

log = logging.getLogger(__name__)
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


def _landing_group(finished_reports, via: str):
    @task_group(group_id=GROUP)
    def one_report(finished: dict) -> None:
        landing_tasks(finished, via=via)

    return one_report.expand(finished=finished_reports)


def _for_each_account(conn_ids: Sequence[str], work) -> tuple[list, list[dict]]:
    """``work(account, client)`` for every account: the results in one list, and the accounts that failed. One
    account's failure (a revoked authorisation, a throttled region) must not stop the others; the run's summary
    fails the run afterwards, naming it."""
    results: list = []
    failures: list[dict] = []
    for conn_id in conn_ids:
        try:
            hook = SellingPartnerHook(conn_id)
            account = hook.account()
            with hook.get_conn() as client:
                results.extend(work(account, client))
        except Exception as exc:
            log.exception("Account %s failed; the other accounts go on", conn_id)
            failures.append({"selling_partner_conn_id": conn_id, "error": f"{type(exc).__name__}: {exc}"})
    return results, failures


def build_generated_reports_dag(
    registry: Mapping[str, ReportType],
    *,
    accounts: Sequence[str] = (DEFAULT_ACCOUNT,),
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
            context = get_current_context()
            overlap = timedelta(hours=context["params"]["overlap_hours"])
            lake = lake_from_airflow()

            def listing(account, client) -> list[FinishedReport]:
                found = find_unlanded_reports(client, lake, account, reports, overlap=overlap)
                print(
                    f"{account}: {len(found)} report(s) to land: "
                    + ", ".join(f"{o['report_type']} {o['report_id']}" for o in found)
                )
                return found

            found, failures = _for_each_account(accounts, listing)
            context["ti"].xcom_push(key=ACCOUNT_ERRORS, value=failures)
            return found

        listed = list_reports()
        _landing_group(listed, "listing") >> summarize("list_reports", mapped_over="list_reports")
    return dag


def build_notifications_dag(
    registry: Mapping[str, ReportType],
    *,
    queue_url: str,
    aws_conn_id: str = "aws_default",
    accounts: Sequence[str] = (DEFAULT_ACCOUNT,),
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
            # Triage deletes what it handled: a message for a seller no account serves stays on the queue.
            delete_message_on_reception=False,
            timeout=timedelta(days=1).total_seconds(),
            soft_fail=True,
            retries=0,
        )

        @task
        def triage() -> list[dict]:
            """The reports to land (DONE and CANCELLED), each routed to its seller's account; the FATAL ones go to
            fail_on_fatal. Handled messages are deleted; those for a seller no account serves stay on the queue."""
            ti = get_current_context()["ti"]
            messages = ti.xcom_pull(task_ids="receive_notifications", key="messages") or []
            loaded = [SellingPartnerHook(conn_id).account() for conn_id in accounts]

            def get_report(account, report_id: str) -> dict:
                with SellingPartnerHook(account.conn_id).get_conn() as client:
                    return client.get_report(report_id)

            result = triage_notifications(messages, lake_from_airflow(), registry, loaded, get_report)
            settle_messages(queue_url, aws_conn_id, result["handled"], result["unrouted"])
            print(
                f"{len(messages)} message(s): {len(result['land'])} report(s) to land, {len(result['fatal'])} FATAL, "
                f"{len(result['ignored'])} ignored, {len(result['unrouted'])} for sellers no account serves"
            )
            ti.xcom_push(key="fatal", value=result["fatal"])
            return result["land"]

        @task
        def fail_on_fatal() -> None:
            fatal = get_current_context()["ti"].xcom_pull(task_ids="triage", key="fatal") or []
            if not fatal:
                return
            lake, errors = lake_from_airflow(), []
            for finished in fatal:
                with SellingPartnerHook(finished["selling_partner_conn_id"]).get_conn() as client:
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
        _landing_group(triaged, "notification") >> summarize("triage", mapped_over="triage")
    return dag


def settle_messages(queue_url: str, aws_conn_id: str | None, handled: list, unrouted: list[dict]) -> None:
    """Delete the messages triage handled. Those for a seller no account serves stay on the queue, hidden for
    ``UNROUTED_HIDE_SECONDS`` so that the continuous DAG does not spin on them; the queue's redrive policy (if
    any) moves them to its dead-letter queue after its maxReceiveCount."""
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    sqs = SqsHook(aws_conn_id=aws_conn_id).get_conn()
    for start in range(0, len(handled), 10):  # DeleteMessageBatch takes at most 10
        batch = handled[start : start + 10]
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(batch) if handle]
        if entries:
            failed = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
            for failure in failed:  # SQS redelivers it; the ledger skips the report then
                log.warning("Could not delete a handled SQS message: %s", failure)
    for message in unrouted:
        if message.get("receipt_handle"):
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["receipt_handle"], VisibilityTimeout=UNROUTED_HIDE_SECONDS
            )


UNROUTED_HIDE_SECONDS = 3600


def build_report_schedules_dag(
    registry: Mapping[str, ReportType],
    *,
    accounts: Sequence[str] = (DEFAULT_ACCOUNT,),
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
            lake = lake_from_airflow()

            def reconciled(account, client) -> list[dict]:
                plan = reconcile_schedules(client, lake, registry.values(), account, dry_run=dry_run)
                for action, entries in plan.items():
                    for entry in entries:
                        print(
                            f"{account.conn_id:<24} {action:<10} {entry['reportType']} "
                            f"{','.join(entry['marketplaceIds'])} {entry['period']}"
                        )
                return [{"selling_partner_conn_id": account.conn_id, **plan}]

            plans, failures = _for_each_account(accounts, reconciled)
            if failures:
                raise AirflowException(
                    "report schedules of account(s) could not be reconciled (the others were): "
                    + "; ".join(f"{f['selling_partner_conn_id']}: {f['error']}" for f in failures)
                )
            return {"accounts": plans}

        reconcile()
    return dag
