"""### sp_reports_lake_maintenance

Keeps the lake clean (see docs/maintenance.md):

* **clean_leftovers**: staging directories and temporary files (local `.tmp`, S3 multipart uploads)
  that no running task has touched for *staging age* hours, and staging directories of reports the
  ledger records as finished;
* **maintain_table** (one mapped task per Delta table, ledger and quarantine tables included):
  compaction of small files, VACUUM of files removed or never committed more than *retention* hours
  ago, a checkpoint and the expired log files;
* **summarize**: what was removed and reclaimed, in total.

Trigger with **dry run** to see what would be removed, with nothing changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, get_current_context, task

# Nothing from sp_reports.lake is imported here: it loads pyarrow and deltalake, which the DAG
# processor has no use for. These repeat sp_reports.lake.maintenance's defaults (a test checks).
DAG_ID = "sp_reports_lake_maintenance"
RETENTION_HOURS = 168
STAGING_MAX_AGE_HOURS = 48
MIN_STAGING_MAX_AGE_HOURS = 12
LONGEST_LANDING_HOURS = 24
START = datetime(2026, 1, 1, tzinfo=UTC)


def build_lake_maintenance_dag(*, schedule: str | None = "@daily", retries: int = 1, parallel_tables: int = 1) -> DAG:
    """``parallel_tables``: tables maintained at once (compaction reads and rewrites files: memory and I/O
    taken from the landings sharing the workers)."""
    with DAG(
        dag_id=DAG_ID,
        description="Compacts, vacuums and checkpoints the lake's Delta tables; removes dead landings' leftovers",
        doc_md=__doc__,
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["sp-api", "lake", "maintenance"],
        default_args={"retries": retries, "retry_delay": timedelta(minutes=5)},
        params={
            "retention_hours": Param(
                RETENTION_HOURS,
                type="integer",
                minimum=MIN_STAGING_MAX_AGE_HOURS + LONGEST_LANDING_HOURS,
                title="Retention (hours)",
                description="VACUUM removes files replaced, or never committed, longer ago than this (time travel "
                f"reaches this far back). At least staging age + {LONGEST_LANDING_HOURS}.",
            ),
            "staging_max_age_hours": Param(
                STAGING_MAX_AGE_HOURS,
                type="integer",
                minimum=MIN_STAGING_MAX_AGE_HOURS,
                title="Staging age (hours)",
                description="Staging directories and temporary files untouched this long belong to no running task.",
            ),
            "dry_run": Param(
                False, type="boolean", title="Dry run", description="Only report what would be removed and compacted."
            ),
        },
    ) as dag:

        @task
        def clean_leftovers() -> dict:
            from sp_reports.lake import maintenance
            from sp_reports.lake_connection import lake_from_airflow

            settings = _settings()
            report = maintenance.clean_leftovers(lake_from_airflow(), settings).to_dict()
            verb = "would remove" if settings.dry_run else "removed"
            for path in report["staging_dirs"] + report["tmp_files"]:
                print(f"{verb} {path}")
            print(
                f"{verb} {len(report['staging_dirs'])} staging dir(s) ({report['staging_bytes']} bytes) and "
                f"{len(report['tmp_files'])} temporary file(s) ({report['tmp_bytes']} bytes)"
            )
            return report

        @task
        def list_tables() -> list[str]:
            from sp_reports.lake.maintenance import list_tables
            from sp_reports.lake_connection import lake_from_airflow

            tables = list_tables(lake_from_airflow())
            print(f"{len(tables)} table(s): {', '.join(tables)}")
            return tables

        @task(max_active_tis_per_dagrun=parallel_tables)
        def maintain_table(table: str) -> dict:
            from sp_reports.lake.maintenance import maintain_table
            from sp_reports.lake_connection import lake_from_airflow

            return maintain_table(lake_from_airflow(), table, _settings()).to_dict()

        # none_failed: a lake without tables maps maintain_table to nothing (skipped), still summarized.
        @task(trigger_rule="none_failed")
        def summarize(leftovers: dict, tables) -> dict:
            from sp_reports.lake.maintenance import format_report, lake_report

            report = lake_report(_settings(), leftovers, list(tables or []))
            print(format_report(report))
            return report

        leftovers = clean_leftovers()
        # Leftovers first: VACUUM would otherwise also find old temporary files in partition directories.
        tables = list_tables()
        leftovers >> tables
        summarize(leftovers, maintain_table.expand(table=tables))  # type: ignore[arg-type]  # Task.__call__ refuses XComArgs
    return dag


def _settings():
    from sp_reports.lake.maintenance import MaintenanceSettings

    params = get_current_context()["params"]
    return MaintenanceSettings(
        retention_hours=int(params["retention_hours"]),
        staging_max_age_hours=int(params["staging_max_age_hours"]),
        dry_run=bool(params["dry_run"]),
    )
