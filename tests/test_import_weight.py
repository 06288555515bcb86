"""What Airflow's DAG processor, scheduler and triggerer import of ours stays light: no pyarrow, deltalake,
numpy or pandas (they load in the task bodies that need them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pyarrow", "deltalake", "numpy", "pandas")
DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "sp_report_dags.py"


def heavy_modules_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={**os.environ, "SP_REPORTS_NOTIFICATIONS_QUEUE_URL": "http://127.0.0.1:1/q"})
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", [
    "sp_reports.operators.reports",
    "sp_reports.sensors.reports",
    "sp_reports.triggers.reports",
    "sp_reports.triggers.notifications",
    "sp_reports.hooks.selling_partner",
    "sp_reports.lake_connection",
])
def test_airflow_facing_modules_import_nothing_heavy(module):
    assert heavy_modules_after(f"import {module}") == []


def test_parsing_the_dag_file_imports_nothing_heavy():
    # Every DAG the file defines, the notifications DAG included (its queue is set above).
    code = (f"import runpy; names = runpy.run_path({str(DAG_FILE)!r}); "
            "assert 'sp_reports_notifications' in names and 'sp_reports_lake_maintenance' in names")
    assert heavy_modules_after(code) == []


def test_the_probe_sees_a_heavy_import():
    assert heavy_modules_after("import sp_reports.lake") != []
