"""Build the Airflow DAG for one registry report type: plan -> request -> fetch -> parse -> land."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, get_current_context, task, task_group

from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.landing_tasks import landing_tasks, summarize
from sp_reports.operators.reports import RequestReportOperator
from sp_reports.planning import drop_landed, numbered, plan_requests
from sp_reports.registry import ReportType
from sp_reports.settings import DEFAULT_ACCOUNT

GROUP = "report"
SKIPPED_SHOWN = 5  # skipped requests the plan's log names; the rest are counted


def build_report_dag(
    report: ReportType,
    *,
    accounts: Sequence[str] = (DEFAULT_ACCOUNT,),
    default_marketplace_ids: list[str] | None = None,
    poll_interval: float = 30.0,
    max_wait: timedelta = timedelta(hours=6),
    start_date: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    schedule: str | object | None = ...,
    retries: int = 2,
) -> DAG:
    """``accounts``: the ``selling_partner`` connections a run serves by default (the trigger form can pick
    fewer). ``schedule`` defaults to the registry's; pass None for manual runs only."""
    accounts = list(dict.fromkeys(accounts))
    params = {
        "accounts": Param(
            accounts,
            type="array",
            items={"type": "string", "enum": accounts},
            title="Accounts",
            description="The selling_partner connections (seller and region) to request for; default: all.",
        ),
        "marketplace_ids": Param(
            default_marketplace_ids or [],
            type="array",
            items={"type": "string"},
            title="Marketplaces",
            description=(
                "Marketplace ids, one report each, requested through every chosen account that covers them "
                "(empty: each account's default marketplaces)."
            ),
        ),
        "report_options": Param(
            dict(report.report_options),
            type="object",
            title="Report options",
            description="reportOptions sent with createReport (string values).",
        ),
        "force_new_report": Param(
            False,
            type="boolean",
            title="Force new reports",
            description="Request new reports even if Amazon has a recent matching one.",
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
        params["skip_landed"] = Param(
            True,
            type="boolean",
            title="Skip landed ranges",
            description="Skip date ranges the ledger already holds (a re-triggered backfill resumes).",
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
            chosen = [SellingPartnerHook(conn_id).account() for conn_id in (p.get("accounts") or accounts)]
            start, end = _data_range(
                p.get("data_start"),
                p.get("data_end"),
                context.get("data_interval_start"),
                context.get("data_interval_end"),
            )
            requests = plan_requests(
                report, chosen, p.get("marketplace_ids") or [], start, end, p.get("report_options")
            )
            print(f"Planned {len(requests)} report(s):")
            for account in chosen:
                mine = [r for r in requests if r["selling_partner_conn_id"] == account.conn_id]
                marketplaces = sorted({m for r in mine for m in r["marketplace_ids"]})
                print(f"  {account}: {len(mine)} report(s) for {', '.join(marketplaces) or 'no marketplace'}")
            if p.get("skip_landed"):
                requests = _without_landed(report, requests)
                if not requests:
                    print("Nothing left to request: the ledger holds every planned range")
            return numbered(requests, force_new_report=bool(p.get("force_new_report")))

        @task_group(group_id=GROUP)
        def one_report(request: dict) -> None:
            # The request names its account (connection): the operator requests and waits with it, and the
            # finished report carries it to the fetch.
            requested = RequestReportOperator(
                task_id="request_report",
                request=request,
                poll_interval=poll_interval,
                max_wait=max_wait,
                cooldown=report.cooldown,
                reuse_max_age=report.reuse_max_age,
                stuck_after=report.stuck_after,
            )

            landing_tasks(requested.output, via="request", report=report)

        planned = plan()
        one_report.expand(request=planned) >> summarize(f"{GROUP}.request_report", mapped_over="plan")
    return dag


def _without_landed(report: ReportType, requests: list[dict]) -> list[dict]:
    """The requests whose data range the lake's ledger does not hold yet: one ledger read for the whole plan."""
    from sp_reports.lake.ledger import Ledger  # pyarrow and deltalake: only when a plan runs, not at DAG parsing
    from sp_reports.lake_connection import lake_from_airflow

    kept, skipped = drop_landed(requests, Ledger(lake_from_airflow()).landed_ranges([report.report_type]))
    if skipped:
        print(f"Skipping {len(skipped)} of {len(requests)} report(s): their ranges are in the ledger already")
        for request in skipped[:SKIPPED_SHOWN]:
            print(
                f"  {request['selling_partner_conn_id']} {','.join(request['marketplace_ids'])} "
                f"{request['data_start_time']}..{request['data_end_time']}"
            )
        if len(skipped) > SKIPPED_SHOWN:
            print(f"  and {len(skipped) - SKIPPED_SHOWN} more")
    return kept


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
    span = (
        f"at most {report.max_range_days} days per report; a re-triggered run skips the ranges the ledger holds"
        if report.takes_date_range
        else "snapshot (no date range)"
    )
    return (
        f"### {report.report_type}\n\n{report.description}\n\n"
        f"* format: `{report.format}`; {span}\n* natural keys: {keys}\n"
        f"* lands in Delta table `tables/{report.table_name}`, partitioned by marketplace, keyed by seller and report\n"
        "\nTrigger with the form to choose accounts, marketplaces, the data range and report options. One report "
        "per account, marketplace and date chunk; a failing account does not stop the others, and the run then "
        "fails naming it."
    )
