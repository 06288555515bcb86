"""The Airflow tasks that take one finished report into the lake: fetch_document -> parse_document -> land.

Every DAG that lands reports uses these (requested, notified or listed reports alike), so a report
lands the same way whichever path found it, and each landing is recorded in the lake's ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, get_current_context, task
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.lake_connection import lake_from_airflow
from sp_reports.registry import ReportType, load_registry
from sp_reports.settings import settings

if TYPE_CHECKING:
    from sp_reports.payloads import FetchedDocument, FinishedReport, Manifest, ParsedDocument

# sp_reports.pipeline and the lake (pyarrow, deltalake, numpy) are imported in the task bodies: the DAG
# processor parses this module constantly and runs none of them.

# DAGs that land several report types announce each landing on its table's Asset through this alias
# (declaring every table as an outlet would signal all of them on every landing).
LANDED_ALIAS = AssetAlias("sp_reports.landed")


def table_asset(report: ReportType) -> Asset:
    """The table as an Airflow Asset. Its URI names the logical table, not where the lake happens to be,
    so moving the lake (a local folder to S3, say) keeps asset-scheduled consumers attached; each event's
    extra carries the physical ``table_uri``."""
    return Asset(name=f"sp_reports.{report.table_name}", uri=f"sp-reports://tables/{report.table_name}")


def asset_extra(manifest: Manifest) -> dict[str, Any]:
    main = manifest["tables"][""]
    return {
        "selling_partner_id": manifest["selling_partner_id"],
        "report_id": manifest["report_id"],
        "rows": manifest["rows_landed"],
        "rows_quarantined": manifest["rows_quarantined"],
        "marketplace_ids": manifest["marketplace_ids"],
        "table_version": main["version"],
        "table_uri": main["uri"],
        "manifest": manifest["manifest_path"],
    }


def landing_tasks(finished, *, via: str, report: ReportType | None = None):
    """Wire the three tasks after ``finished`` (a finished report, usually mapped), fetched through the account
    that found it. With ``report`` the tasks serve that one report type; without, each report's type is looked
    up in the registry and, because another run may have landed the same report, the ledger is consulted first."""

    def report_of(finished: FinishedReport) -> ReportType:
        return report or load_registry()[finished["report_type"]]

    # multiple_outputs=False: each payload is one XCom. Inferred from the Mapping return type, Airflow would
    # also push every key of it as an XCom of its own (a dozen extra rows per report, none ever read).
    @task(multiple_outputs=False)
    def fetch_document(finished: FinishedReport) -> FetchedDocument:
        from sp_reports import pipeline
        from sp_reports.lake.ledger import Ledger

        lake = lake_from_airflow()
        ledger = Ledger(lake)
        if report is None and ledger.landed([(finished["selling_partner_id"], finished["report_id"])]):
            raise AirflowSkipException(
                f"report {finished['report_id']} of seller {finished['selling_partner_id']} was landed already (ledger)"
            )
        if finished["processing_status"] == "CANCELLED":
            ledger.record(finished, "CANCELLED", via)
            raise AirflowSkipException(f"report {finished['report_id']}: Amazon had no data; nothing to fetch")
        with SellingPartnerHook(finished["selling_partner_conn_id"]).get_conn() as client:
            # Without a report type of its own, fetch_document looks it up (registry, else Amazon's list).
            restricted = report.restricted if report else None
            return pipeline.fetch_document(client, lake, finished, restricted=restricted)

    # Parsing is the CPU- and memory-heavy step: SP_REPORTS_PARSE_QUEUE can send it to workers of its own
    # (``airflow celery worker --queues``); unset, it runs on Airflow's default queue like the other tasks.
    parse_queue = settings().parse_queue
    parse_options: dict[str, Any] = {"queue": parse_queue} if parse_queue else {}

    @task(multiple_outputs=False, **parse_options)
    def parse_document(fetched: FetchedDocument) -> ParsedDocument:
        from sp_reports import pipeline

        return pipeline.parse_raw_document(lake_from_airflow(), fetched, report_of(fetched))

    @task(outlets=[table_asset(report)] if report else [LANDED_ALIAS], multiple_outputs=False)
    def land(parsed: ParsedDocument) -> Manifest:
        from sp_reports import pipeline

        landed_report = report_of(parsed)
        manifest = pipeline.land_and_record(lake_from_airflow(), parsed, landed_report, via)
        events = get_current_context()["outlet_events"]
        if report:
            events[table_asset(report)].extra = asset_extra(manifest)
        else:
            events[LANDED_ALIAS].add(table_asset(landed_report), extra=asset_extra(manifest))
        return manifest

    return land(parse_document(fetch_document(finished)))  # type: ignore[arg-type]  # Task.__call__ refuses XComArgs


@task(trigger_rule="all_done")
def summarize(
    finished_task_id: str, mapped_over: str, finished_key: str = "return_value", group_id: str = "report"
) -> list[dict]:
    """Log and return one row per report the run handled (seller, reportId, marketplace, status, rows, table);
    then fail the run if any of its tasks failed, naming the accounts whose reports did not land.

    It runs whatever happened upstream, so that one account's failure (revoked authorisation, a FATAL report)
    does not stop the others' reports from landing, and the run still ends failed, saying whose.
    ``mapped_over`` is the task whose list the ``group_id`` task group maps over (planned requests or found
    reports): its items name the accounts."""
    from sp_reports import pipeline

    context = get_current_context()
    ti = context["ti"]
    finished_reports = _as_list(ti.xcom_pull(task_ids=finished_task_id, key=finished_key))
    landed = {_key(m): m for m in _as_list(ti.xcom_pull(task_ids=f"{group_id}.land")) if m}
    rows = [pipeline.summary_row(finished, landed.get(_key(finished))) for finished in finished_reports if finished]
    print(pipeline.format_summary(rows))

    dag_run = context["dag_run"]
    states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id]).get(dag_run.run_id, {})
    failed = {task: state for task, state in states.items() if state in FAILED_STATES and task != ti.task_id}
    account_errors = ti.xcom_pull(task_ids=mapped_over, key=ACCOUNT_ERRORS) or []
    if failed or account_errors:
        message = failure_message(failed, _as_list(ti.xcom_pull(task_ids=mapped_over)), group_id) if failed else ""
        for error in account_errors:
            message += f"\naccount {error['selling_partner_conn_id']} failed: {error['error']}"
        raise AirflowException(message.strip())
    return rows


FAILED_STATES = ("failed", "upstream_failed")
# The XCom key under which a task that works through every account lists those that failed.
ACCOUNT_ERRORS = "account_errors"


def failure_message(failed_tasks: dict[str, str], mapped_items: list[dict], group_id: str) -> str:
    """Which reports failed, by account: ``failed_tasks`` are {task id: state} as Airflow reports task states (a
    mapped task's id as ``<task_id>_<map_index>``), ``mapped_items`` what the task group was mapped over."""
    failed_items: dict[int, list[str]] = {}
    others = []
    for task_id, state in sorted(failed_tasks.items()):
        name, _, index = task_id.rpartition("_")
        if task_id.startswith(f"{group_id}.") and index.isdigit() and int(index) < len(mapped_items):
            names = failed_items.setdefault(int(index), [])
            if state == "failed":  # the tasks after it are upstream_failed: naming them adds nothing
                names.append(name.removeprefix(f"{group_id}."))
        elif state == "failed":
            others.append(task_id)
    lines = []
    for position, names in sorted(failed_items.items()):
        item = mapped_items[position]
        what = item.get("report_id") or ",".join(item.get("marketplace_ids") or [])
        period = f" {item['data_start_time']}..{item['data_end_time']}" if item.get("data_start_time") else ""
        lines.append(
            f"account {item.get('selling_partner_conn_id')} (seller {item.get('selling_partner_id')}): "
            f"{item.get('report_type')} {what}{period} failed in {', '.join(names) or 'an upstream task'}"
        )
    lines.extend(f"task {task} failed" for task in others)
    accounts = sorted({str(mapped_items[i].get("selling_partner_conn_id")) for i in failed_items})
    heading = f"reports of account(s) {', '.join(accounts)} did not land" if accounts else "the run failed"
    return f"{heading}; every other report landed or was skipped as this summary shows:\n" + "\n".join(lines)


def _key(report: dict) -> tuple[str, str]:
    return report.get("selling_partner_id", ""), report["report_id"]


def _as_list(value) -> list:
    # A mapped task's XCom comes back as one value when it ran once, as a list otherwise.
    if value is None:
        return []
    return [value] if isinstance(value, dict) else list(value)
