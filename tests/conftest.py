"""Shared fixtures. Airflow reads AIRFLOW_HOME at import, so it is pointed at a throwaway folder here,
before any test module imports Airflow."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support import connection_json

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="sp-reports-test-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

ROOT = Path(__file__).resolve().parents[1]

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def moto_server():
    """Endpoint URL of a moto S3 server running for the whole test session."""
    binary = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or shutil.which("moto_server")
    if binary is None:
        raise RuntimeError("moto_server not found: install requirements.txt (moto[server]) first")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with code {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("moto_server did not answer within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
