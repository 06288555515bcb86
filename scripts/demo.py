"""`make demo`: the whole report path on embedded defaults, end to end.

Starts the local SP-API emulator and `airflow standalone` (SQLite, LocalExecutor), triggers the DAGs of
three report types through Airflow's REST API, waits, prints what landed and the emulator's call counts,
stops what it started, and exits non-zero if any run failed or the emulator saw more than one
createReport per report.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
LAKE = ROOT / "lake"
BIN = Path(sys.executable).parent

DEMO_RUNS = {
    # report type -> marketplaces (one report each): US in UTF-8, DE in Cp1252, JP in cp932
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL": ["ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528"],
    "GET_MERCHANT_LISTINGS_ALL_DATA": ["ATVPDKIKX0DER", "A1VC38T7YXB528"],
    "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA": ["A1PA6795UKMFR9"],
}
STARTUP_TIMEOUT = 240
RUN_TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(message: str) -> None:
    print(f"[demo {datetime.now():%H:%M:%S}] {message}", flush=True)


def start(name: str, args: list[str], env: dict) -> subprocess.Popen:
    log = open(DEMO / f"{name}.log", "w")
    # A session of its own, so stopping the demo stops every process airflow standalone forked.
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process's whole group, then SIGKILL whatever is left: airflow standalone may exit
    before children of its own (the api-server's workers) have."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            return
        time.sleep(0.5)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_until(what: str, check, timeout: float, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} exited while waiting for {what}; see {DEMO}/*.log")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s; see {DEMO}/*.log")


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    emulator_port, api_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    api = f"http://127.0.0.1:{api_port}/api/v2"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(DEMO / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        # Task workers reach Airflow through the Execution API; it must follow the API server's port.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        # The demo's Airflow listens on loopback only; everyone who reaches it is an admin.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "SP_REPORTS_LAKE": str(LAKE),
        "SP_REPORTS_POLL_INTERVAL": "2",
        "SP_REPORTS_DISABLE_SCHEDULES": "1",  # only the runs the demo triggers
        "AIRFLOW_CONN_SELLING_PARTNER_DEFAULT": json.dumps(
            {
                "conn_type": "selling_partner",
                "login": "emulator-client-id",
                "password": "emulator-client-secret",
                "extra": {
                    "refresh_token": "Atzr|emulator-refresh-token",
                    "region": "NA",
                    "endpoint": emulator_url,
                    "lwa_endpoint": f"{emulator_url}/auth/o2/token",
                    "marketplace_ids": "ATVPDKIKX0DER",
                },
            }
        ),
    }
    processes: list[subprocess.Popen] = []
    try:
        say(f"starting the SP-API emulator on {emulator_url}")
        processes.append(start("emulator", [str(BIN / "sp-reports"), "emulator", "--port", str(emulator_port),
                                            "--processing-seconds", "4"], env))
        wait_until("the emulator", lambda: httpx.get(f"{emulator_url}/_emulator/stats").is_success, 30, processes)

        say(f"starting airflow standalone (SQLite, LocalExecutor) on http://127.0.0.1:{api_port}; logs in {DEMO}")
        processes.append(start("airflow", [str(BIN / "airflow"), "standalone"], env))
        wait_until("Airflow's API and the report DAGs",
                   lambda: all(httpx.get(f"{api}/dags/{dag_id}").is_success for dag_id in DEMO_RUNS),
                   STARTUP_TIMEOUT, processes)
        for dag_id in DEMO_RUNS:
            problems = httpx.get(f"{api}/importErrors").json().get("import_errors", [])
            if problems:
                raise RuntimeError(f"DAG import errors: {problems}")
            httpx.patch(f"{api}/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

        today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        runs = {}
        for dag_id, marketplaces in DEMO_RUNS.items():
            conf = {"marketplace_ids": marketplaces,
                    "data_start": (today - timedelta(days=3)).isoformat(), "data_end": today.isoformat()}
            response = httpx.post(f"{api}/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
            response.raise_for_status()
            runs[dag_id] = response.json()["dag_run_id"]
            say(f"triggered {dag_id} for {', '.join(marketplaces)} ({runs[dag_id]})")

        states = {}

        def all_finished() -> bool:
            for dag_id, run_id in runs.items():
                states[dag_id] = httpx.get(f"{api}/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
            return all(state in ("success", "failed") for state in states.values())

        wait_until("the DAG runs", all_finished, RUN_TIMEOUT, processes)

        rows = []
        for dag_id, run_id in runs.items():
            say(f"{dag_id}: run {states[dag_id]}")
            entry = httpx.get(f"{api}/dags/{dag_id}/dagRuns/{run_id}/taskInstances/summarize/xcomEntries/return_value")
            if entry.is_success:
                rows.extend(entry.json()["value"])
        stats = httpx.get(f"{emulator_url}/_emulator/stats").json()
    finally:
        for process in reversed(processes):
            stop(process)
        say("stopped the emulator and Airflow")

    print_table(rows)
    print("\nEmulator calls per operation:")
    for operation, count in sorted(stats["calls"].items()):
        print(f"  {operation:<24} {count}")

    failed = [dag_id for dag_id, state in states.items() if state != "success"]
    created, landed = stats["calls"].get("createReport", 0), len(rows)
    if failed:
        say(f"FAILED runs: {', '.join(failed)} (task logs under {DEMO / 'airflow' / 'logs'})")
    if created != landed:
        say(f"FAILED: the emulator saw {created} createReport calls for {landed} reports")
    if failed or created != landed or not rows:
        return 1
    say(f"OK: {landed} reports, one createReport each; the lake is {LAKE}")
    return 0


def print_table(rows: list[dict]) -> None:
    header = ("report type", "marketplace", "reportId", "status", "rows", "lake path")
    lines = [header] + [
        (r["report_type"], ",".join(r["marketplace_ids"]), r["report_id"], r["processing_status"],
         str(r["rows"]), r.get("table_uri") or "-")
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print()
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)))
        if n == 0:
            print("  ".join("-" * width for width in widths))


if __name__ == "__main__":
    sys.exit(main())
