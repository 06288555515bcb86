"""Build the Airflow DAG for one registry report type: plan -> request -> fetch -> parse -> land."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, Asset, Param, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowSkipException

from sp_reports import pipeline
from sp_reports.hooks.lake import lake_from_airflow
from sp_reports.hooks.selling_partner import SellingPartnerHook, parse_marketplace_ids
from sp_reports.operators.reports import RequestReportOperator
from sp_reports.planning import plan_requests
from sp_reports.registry import ReportType

GROUP = "report"


def table_asset(report: ReportType) -> Asset:
    """The table as an Airflow Asset. Its URI names the logical table, not where the lake happens to be,
    so moving the lake (a local folder to S3, say) keeps asset-scheduled consumers attached; each event's
    extra carries the physical ``table_uri``."""
    return Asset(name=f"sp_reports.{report.table_name}", uri=f"sp-reports://tables/{report.table_name}")


def build_report_dag(
    report: ReportType,
    *,
    selling_partner_conn_id: str = SellingPartnerHook.default_conn_name,
    default_marketplace_ids: list[str] | None = None,
    poll_interval: float = 30.0,
    max_wait: timedelta = timedelta(hours=6),
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
    schedule: str | None | object = ...,
    retries: int = 2,
) -> DAG:
    """``schedule`` defaults to the registry's; pass None for manual runs only."""
    asset = table_asset(report)
    params = {
        "marketplace_ids": Param(
            default_marketplace_ids or [],
            type="array",
            items={"type": "string"},
            title="Marketplaces",
            description="Marketplace ids, one report each (empty: the connection's default marketplaces).",
        ),
        "report_options": Param(
            dict(report.report_options), type="object", title="Report options",
            description="reportOptions sent with createReport (string values).",
        ),
    }
    if report.takes_date_range:
        params["data_start"] = Param(
            None, type=["null", "string"], format="date-time", title="Data start",
            description="Empty: the run's data interval, or yesterday (UTC) for a manual run.",
        )
        params["data_end"] = Param(
            None, type=["null", "string"], format="date-time", title="Data end",
            description=f"At most {report.max_range_days} days per report; longer ranges are split.",
        )

    with DAG(
        dag_id=report.report_type,
        description=report.description,
        doc_md=_doc(report),
        schedule=report.schedule if schedule is ... else schedule,
        start_date=start_date,
        catchup=False,
        max_active_runs=1,
        params=params,
        tags=["sp-api", "reports", report.format],
        default_args={"retries": retries, "retry_delay": timedelta(minutes=1)},
    ) as dag:

        @task
        def plan() -> list[dict]:
            context = get_current_context()
            p = context["params"]
            marketplaces = parse_marketplace_ids(p.get("marketplace_ids")) or SellingPartnerHook(
                selling_partner_conn_id
            ).default_marketplace_ids()
            start, end = _data_range(p.get("data_start"), p.get("data_end"),
                                     context.get("data_interval_start"), context.get("data_interval_end"))
            requests = plan_requests(report, marketplaces, start, end, p.get("report_options"))
            print(f"Planned {len(requests)} report(s): {len(marketplaces)} marketplace(s) x "
                  f"{len(requests) // len(marketplaces)} date range(s)")
            return requests

        @task_group(group_id=GROUP)
        def one_report(request: dict) -> None:
            requested = RequestReportOperator(
                task_id="request_report",
                request=request,
                selling_partner_conn_id=selling_partner_conn_id,
                poll_interval=poll_interval,
                max_wait=max_wait,
            )

            @task
            def fetch_document(outcome: dict) -> dict:
                if outcome["processing_status"] == "CANCELLED":
                    raise AirflowSkipException(f"report {outcome['report_id']}: Amazon had no data; nothing to fetch")
                with SellingPartnerHook(selling_partner_conn_id).get_conn() as client:
                    return pipeline.fetch_document(client, lake_from_airflow(), outcome)

            @task
            def parse_document(fetched: dict) -> dict:
                return pipeline.parse_raw_document(lake_from_airflow(), fetched, report)

            @task(outlets=[asset])
            def land(parsed: dict) -> dict:
                manifest = pipeline.land_parsed_document(lake_from_airflow(), parsed, report)
                main = manifest["tables"][""]
                get_current_context()["outlet_events"][asset].extra = {
                    "report_id": manifest["report_id"],
                    "rows": manifest["rows_landed"],
                    "rows_quarantined": manifest["rows_quarantined"],
                    "marketplace_ids": manifest["marketplace_ids"],
                    "table_version": main["version"],
                    "table_uri": main["uri"],
                    "manifest": manifest["manifest_path"],
                }
                return manifest

            land(parse_document(fetch_document(requested.output)))

        @task(trigger_rule="none_failed")
        def summarize() -> list[dict]:
            ti = get_current_context()["ti"]
            outcomes = _as_list(ti.xcom_pull(task_ids=f"{GROUP}.request_report"))
            landed = {row["report_id"]: row for row in _as_list(ti.xcom_pull(task_ids=f"{GROUP}.land")) if row}
            summary = [pipeline.summary_row(outcome, landed.get(outcome["report_id"])) for outcome in outcomes if outcome]
            print(pipeline.format_summary(summary))
            return summary

        one_report.expand(request=plan()) >> summarize()
    return dag


def _data_range(start, end, interval_start, interval_end) -> tuple[datetime, datetime]:
    if start or end:
        if not (start and end):
            raise ValueError("give both data_start and data_end, or neither")
        return _parse_time(start, "data_start"), _parse_time(end, "data_end")
    if interval_start and interval_end and interval_end > interval_start:
        return interval_start, interval_end
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1), today


def _parse_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, dict) else list(value)


def _doc(report: ReportType) -> str:
    keys = ", ".join(report.natural_keys) or "none"
    span = f"at most {report.max_range_days} days per report" if report.takes_date_range else "snapshot (no date range)"
    return (
        f"### {report.report_type}\n\n{report.description}\n\n"
        f"* format: `{report.format}`; {span}\n* natural keys: {keys}\n"
        f"* lands in Delta table `tables/{report.table_name}`, partitioned by marketplace and date\n"
        "\nTrigger with the form to choose marketplaces, the data range and report options."
    )
