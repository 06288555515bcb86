"""The project's Airflow DAGs, from the report-type registry: one DAG per report type (sp_reports.report_dag),
plus the DAGs for the reports Amazon creates itself (sp_reports.amazon_created_dags) and the lake maintenance
DAG (sp_reports.maintenance_dag). Every setting comes from sp_reports.settings (the README's "Settings")."""

from __future__ import annotations

from sp_reports.amazon_created_dags import (
    build_generated_reports_dag,
    build_notifications_dag,
    build_report_schedules_dag,
)
from sp_reports.maintenance_dag import build_lake_maintenance_dag
from sp_reports.registry import load_registry
from sp_reports.report_dag import build_report_dag
from sp_reports.settings import settings

_settings = settings()
_registry = load_registry(_settings.registry)
_daily = "@daily" if _settings.schedules_enabled else None

for _report in _registry.values():
    if not _report.requestable:
        continue  # Amazon creates these itself (settlements): they are listed, not requested
    globals()[_report.report_type] = build_report_dag(
        _report,
        accounts=_settings.accounts,
        schedule=_report.schedule if _settings.schedules_enabled else None,
        poll_interval=_settings.poll_interval,
    )

sp_reports_generated_reports = build_generated_reports_dag(
    _registry, accounts=_settings.accounts, schedule="@hourly" if _settings.schedules_enabled else None
)
sp_reports_report_schedules = build_report_schedules_dag(_registry, accounts=_settings.accounts, schedule=_daily)
# Compaction, VACUUM, checkpoints and dead landings' leftovers (docs/maintenance.md).
sp_reports_lake_maintenance = build_lake_maintenance_dag(schedule=_daily)
if _settings.notifications_queue_url:
    sp_reports_notifications = build_notifications_dag(
        _registry,
        queue_url=_settings.notifications_queue_url,
        aws_conn_id=_settings.sqs_aws_conn_id,
        accounts=_settings.accounts,
        poll_seconds=_settings.notifications_poll_seconds,
    )
