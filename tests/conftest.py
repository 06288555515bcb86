"""Shared fixtures. Airflow reads AIRFLOW_HOME at import, so it is pointed at a throwaway folder here,
before any test module imports Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support import connection_json

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="sp-reports-test-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

@pytest.fixture
def emulator():
    """A fresh local SP-API emulator over real HTTP, fast enough for tests."""
    from sp_reports.emulator.testing import running_emulator

    with running_emulator(processing_seconds=0.3, rows_per_report=20) as emu:
        yield emu


@pytest.fixture
def sp_conn(emulator, monkeypatch):
    """The default selling_partner connection, pointing at the emulator (as an env-var connection)."""
    monkeypatch.setenv("AIRFLOW_CONN_SELLING_PARTNER_DEFAULT", connection_json(emulator))
    return emulator


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated SQLite metadata DB for tests that run DAGs (dag.test())."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env={**os.environ})
    return _AIRFLOW_HOME
