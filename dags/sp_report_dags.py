"""The project's Airflow DAGs, from include/report_types.yaml: one DAG per report type (sp_reports.report_dag),
plus the DAGs for the reports Amazon creates itself (sp_reports.generated_dags) and the lake maintenance DAG
(sp_reports.maintenance_dag)."""

from __future__ import annotations

import os
from pathlib import Path

from sp_reports.generated_dags import build_generated_reports_dag, build_notifications_dag, build_report_schedules_dag
from sp_reports.maintenance_dag import build_lake_maintenance_dag
from sp_reports.registry import load_registry
from sp_reports.report_dag import build_report_dag

REGISTRY = os.environ.get("SP_REPORTS_REGISTRY") or Path(__file__).resolve().parents[1] / "include" / "report_types.yaml"

# Set by `make demo` (and useful in development) so only explicitly triggered runs happen.
SCHEDULES_ENABLED = os.environ.get("SP_REPORTS_DISABLE_SCHEDULES", "") not in ("1", "true", "True")
# The SQS queue Amazon sends REPORT_PROCESSING_FINISHED notifications to (see README, "Notifications").
NOTIFICATIONS_QUEUE_URL = os.environ.get("SP_REPORTS_NOTIFICATIONS_QUEUE_URL")

_registry = load_registry(REGISTRY)
for _report in _registry.values():
    if not _report.requestable:
        continue  # Amazon creates these itself (settlements): they are listed, not requested
    globals()[_report.report_type] = build_report_dag(
        _report,
        schedule=_report.schedule if SCHEDULES_ENABLED else None,
        poll_interval=float(os.environ.get("SP_REPORTS_POLL_INTERVAL", "30")),
    )

sp_reports_generated_reports = build_generated_reports_dag(
    _registry, schedule="@hourly" if SCHEDULES_ENABLED else None
)
sp_reports_report_schedules = build_report_schedules_dag(_registry, schedule="@daily" if SCHEDULES_ENABLED else None)
# Compaction, VACUUM, checkpoints and dead landings' leftovers (docs/maintenance.md).
sp_reports_lake_maintenance = build_lake_maintenance_dag(schedule="@daily" if SCHEDULES_ENABLED else None)
if NOTIFICATIONS_QUEUE_URL:
    sp_reports_notifications = build_notifications_dag(
        _registry,
        queue_url=NOTIFICATIONS_QUEUE_URL,
        aws_conn_id=os.environ.get("SP_REPORTS_SQS_AWS_CONN_ID", "aws_default"),
        poll_seconds=int(os.environ.get("SP_REPORTS_NOTIFICATIONS_POLL_SECONDS", "20")),
    )
