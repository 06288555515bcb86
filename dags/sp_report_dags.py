"""One Airflow DAG per report type in include/report_types.yaml (see sp_reports.report_dag for the shape)."""

from __future__ import annotations

import os
from pathlib import Path

from sp_reports.registry import load_registry
from sp_reports.report_dag import build_report_dag

REGISTRY = os.environ.get("SP_REPORTS_REGISTRY") or Path(__file__).resolve().parents[1] / "include" / "report_types.yaml"

# Set by `make demo` (and useful in development) so only explicitly triggered runs happen.
SCHEDULES_ENABLED = os.environ.get("SP_REPORTS_DISABLE_SCHEDULES", "") not in ("1", "true", "True")

for _report in load_registry(REGISTRY).values():
    if not _report.requestable:
        continue  # Amazon creates these itself (settlements): they are listed, not requested
    globals()[_report.report_type] = build_report_dag(
        _report,
        schedule=_report.schedule if SCHEDULES_ENABLED else None,
        poll_interval=float(os.environ.get("SP_REPORTS_POLL_INTERVAL", "30")),
    )
