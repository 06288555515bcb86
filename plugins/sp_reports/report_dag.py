"""Build the Airflow DAG for one registry report type: plan -> request -> fetch -> parse -> land."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, get_current_context, task, task_group

from sp_reports.hooks.selling_partner import SellingPartnerHook, parse_marketplace_ids
from sp_reports.landing_tasks import landing_tasks, summarize
from sp_reports.operators.reports import RequestReportOperator
from sp_reports.planning import plan_requests
from sp_reports.registry import ReportType

GROUP = "report"


def build_report_dag(
    report: ReportType,
    *,
    selling_partner_conn_id: str = SellingPartnerHook.default_conn_name,
    default_marketplace_ids: list[str] | None = None,
    poll_interval: float = 30.0,
    max_wait: timedelta = timedelta(hours=6),
    start_date: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    schedule: str | object | None = ...,
    retries: int = 2,
) -> DAG:
    """``schedule`` defaults to the registry's; pass None for manual runs only."""
    params = {
        "marketplace_ids": Param(
            default_marketplace_ids or [],
            type="array",
            items={"type": "string"},
            title="Marketplaces",
            description="Marketplace ids, one report each (empty: the connection's default marketplaces).",
        ),
        "report_options": Param(
            dict(report.report_options),
            type="object",
            title="Report options",
            description="reportOptions sent with createReport (string values).",
        ),
    }
    if report.takes_date_range:
        params["data_start"] = Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Data start",
            description="Empty: the run's data interval, or yesterday (UTC) for a manual run.",
        )
        params["data_end"] = Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Data end",
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
            marketplaces = (
                parse_marketplace_ids(p.get("marketplace_ids"))
                or SellingPartnerHook(selling_partner_conn_id).default_marketplace_ids()
            )
            start, end = _data_range(
                p.get("data_start"),
                p.get("data_end"),
                context.get("data_interval_start"),
                context.get("data_interval_end"),
            )
            requests = plan_requests(report, marketplaces, start, end, p.get("report_options"))
            print(
                f"Planned {len(requests)} report(s): {len(marketplaces)} marketplace(s) x "
                f"{len(requests) // len(marketplaces)} date range(s)"
            )
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

            landing_tasks(
                requested.output, selling_partner_conn_id=selling_partner_conn_id, via="request", report=report
            )

        one_report.expand(request=plan()) >> summarize(f"{GROUP}.request_report")
    return dag


def _data_range(start, end, interval_start, interval_end) -> tuple[datetime, datetime]:
    if start or end:
        if not (start and end):
            raise ValueError("give both data_start and data_end, or neither")
        return _parse_time(start, "data_start"), _parse_time(end, "data_end")
    if interval_start and interval_end and interval_end > interval_start:
        return interval_start, interval_end
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1), today


def _parse_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _doc(report: ReportType) -> str:
    keys = ", ".join(report.natural_keys) or "none"
    span = f"at most {report.max_range_days} days per report" if report.takes_date_range else "snapshot (no date range)"
    return (
        f"### {report.report_type}\n\n{report.description}\n\n"
        f"* format: `{report.format}`; {span}\n* natural keys: {keys}\n"
        f"* lands in Delta table `tables/{report.table_name}`, partitioned by marketplace and date\n"
        "\nTrigger with the form to choose marketplaces, the data range and report options."
    )
