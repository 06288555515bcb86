"""The Airflow tasks that take one finished report into the lake: fetch_document -> parse_document -> land.

Every DAG that lands reports uses these (requested, notified or listed reports alike), so a report
lands the same way whichever path found it, and each landing is recorded in the lake's ledger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.lake_connection import lake_from_airflow
from sp_reports.registry import ReportType, load_registry

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


def landing_tasks(finished, *, selling_partner_conn_id: str, via: str, report: ReportType | None = None):
    """Wire the three tasks after ``finished`` (a finished report, usually mapped). With ``report`` the
    tasks serve that one report type; without, each report's type is looked up in the registry
    and, because another run may have landed the same report, the ledger is consulted first."""

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
        with SellingPartnerHook(selling_partner_conn_id).get_conn() as client:
            return pipeline.fetch_document(client, lake, finished)

    @task(multiple_outputs=False)
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


@task(trigger_rule="none_failed")
def summarize(finished_task_id: str, finished_key: str = "return_value", group_id: str = "report") -> list[dict]:
    """Log and return one row per report the run handled: seller, reportId, marketplace, status, rows, table."""
    from sp_reports import pipeline

    ti = get_current_context()["ti"]
    finished_reports = _as_list(ti.xcom_pull(task_ids=finished_task_id, key=finished_key))
    landed = {
        (m["selling_partner_id"], m["report_id"]): m for m in _as_list(ti.xcom_pull(task_ids=f"{group_id}.land")) if m
    }
    rows = [
        pipeline.summary_row(finished, landed.get((finished["selling_partner_id"], finished["report_id"])))
        for finished in finished_reports
        if finished
    ]
    print(pipeline.format_summary(rows))
    return rows


def _as_list(value) -> list:
    # A mapped task's XCom comes back as one value when it ran once, as a list otherwise.
    if value is None:
        return []
    return [value] if isinstance(value, dict) else list(value)
