"""`make demo`: the whole report path on embedded defaults, end to end.

Starts the local SP-API emulator, moto_server (SQS) and `airflow standalone` (SQLite, LocalExecutor), then:

1. requested reports: triggers the DAGs of four report types through Airflow's REST API for two sellers
   across the three regions (one seller in NA and FE, with two authorisations; one in EU), waits, prints
   what landed under which seller and checks the emulator saw exactly one createReport per report; one type
   is restricted (buyers' PII), so its document is fetched with a Restricted Data Token, which is checked too;
   then Amazon's limits: a rerun reuses Amazon's report instead of asking again, and a request inside an FBA
   report's cooldown ends FATAL and is waited out, deferred, then asked once more;
2. reports Amazon creates itself: subscribes the SQS queue to REPORT_PROCESSING_FINISHED, lets the
   report-schedules DAG create the registry's schedule, lets the notification DAG land what the
   notifications announce, and the generated-reports DAG land by listing what was never notified
   (the settlements Amazon generated before the subscription); prints what arrived by which path.

It stops what it started and exits non-zero if any run failed or any check did not hold. The emulator
runs 30x faster than Amazon (a five-minute schedule period takes ten seconds).

Two work-arounds for the Airflow 3.3.2 bugs behind the demo's intermittent failures on two cores:

* The tasks' Execution API gets an api-server process of its own (``airflow api-server --apps execution``).
  The REST API's audit log (``action_logging``, an async dependency) commits to SQLite on the event loop.
  When a request in a worker thread of the same process holds SQLite's write lock (an Execution API
  call: its session commits only after the endpoint returns, which needs that loop), the two wait on each
  other until SQLite's 5 s busy timeout: the whole api-server freezes and the demo's POST/PATCH answers
  500 "database is locked". With the tasks' calls in another process, the holder always commits.
* The scheduler's LocalExecutor ignores the stale "success" of a deferred task's first workload when the
  resumed workload of the same try is already queued or running (``SCHEDULER_PATCH``); Airflow 3.3.2
  would mark the resumed task up_for_retry ("killed externally"; the resumed run then gets 409
  "up_for_retry" or 404). apache/airflow#72716; drop the patch once the Airflow in use has the fix.
"""

from __future__ import annotations

import json
import os
import random
import secrets
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
# Every demo gets an empty lake of its own (an earlier demo's ledger would hold its reports already) and a fresh
# emulator seed (the same seed gives the same reportIds); SP_REPORTS_DEMO_SEED repeats a run.
RUN_STAMP = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
LAKE = ROOT / "lake" / f"demo-{RUN_STAMP}"
SEED = int(os.environ.get("SP_REPORTS_DEMO_SEED") or random.SystemRandom().randrange(1, 2**31))
BIN = Path(sys.executable).parent

# Two sellers across the three regions. Amazon authorises each region separately, so the global seller has two
# authorisations (refresh tokens), hence two accounts (connections); the emulator serves each region's endpoint
# under its own path and refuses a marketplace of another region, as Amazon's endpoints do.
US, DE, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528"
GLOBAL_SELLER, EUROPE_SELLER = "A2DEMOGLOBALSELLER", "A3DEMOEUROPESELLER"
ACCOUNTS = {
    # connection id -> (seller, region, refresh token, marketplaces)
    "amazon_global_na": (GLOBAL_SELLER, "NA", "Atzr|demo-global-na", [US]),
    "amazon_global_fe": (GLOBAL_SELLER, "FE", "Atzr|demo-global-fe", [JP]),
    "amazon_europe_eu": (EUROPE_SELLER, "EU", "Atzr|demo-europe-eu", [DE]),
}
DEMO_RUNS = {
    # report type -> marketplaces (one report each, through the account serving it): US in UTF-8 (global seller,
    # NA), DE in Cp1252 (europe seller, EU), JP in cp932 (global seller, FE)
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL": [US, DE, JP],
    "GET_MERCHANT_LISTINGS_ALL_DATA": [US, JP],
    "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA": [DE],
    # A restricted report type: getReportDocument only with a Restricted Data Token (Tokens API) naming it.
    "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING": [US],
}
STARTUP_TIMEOUT = 240
RUN_TIMEOUT = 600
STARTED = datetime.now(timezone.utc)
SPEED = 30  # emulator time: processing, schedule periods, settlement cycle and quotas, 30x faster
# Emulated seconds between settlements of each account (30 s of demo time): enough for the listing to find some,
# few enough that a slow machine is not buried in them (three accounts settle independently).
SETTLEMENT_PERIOD = 900
GENERATED_DAGS = ("sp_reports_notifications", "sp_reports_report_schedules", "sp_reports_generated_reports")
# A near real-time FBA report: Amazon generates it at most once per 30 minutes and marketplace (one minute here).
COOLDOWN_TYPE, COOLDOWN_SECONDS = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA", 1800
NOTIFIED_WANTED = 2  # scheduled reports that must arrive by notification
# Airflow's API on SQLite, with the scheduler, triggerer and tasks on two cores, can take more than
# httpx's default 5 s to answer (a trigger timed out once).
http = httpx.Client(timeout=60)

# Written to $AIRFLOW_HOME/config/airflow_local_settings.py, which every Airflow process imports; it acts in
# the scheduler only. Airflow 3.3.2's LocalExecutor keys workloads by TaskInstanceKey, and a task resumed
# after deferral runs as a second workload with the same key (same try). The supervisor of the first one
# notices its process exit only at its next poll (up to [workers] min_heartbeat_interval = 5 s later), so
# its "success" can reach the scheduler after the trigger fired and the resumed workload was queued: the
# scheduler then reads it as the resumed task having ended without reporting ("killed externally") and
# marks it up_for_retry (apache/airflow#72716, #71580). Here a terminal result is ignored while another
# workload of the same key is still outstanding: it can only be the earlier, deferred workload's.
SCHEDULER_PATCH = """\
import sys

if sys.argv[1:2] == ["scheduler"]:
    from collections import Counter

    from airflow.executors.local_executor import LocalExecutor
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.utils.state import TaskInstanceState

    _process_workloads = LocalExecutor._process_workloads

    def _counting_process_workloads(self, workload_list):
        outstanding = self.__dict__.setdefault("_demo_outstanding", Counter())
        for workload in workload_list:
            if isinstance(workload.key, TaskInstanceKey):
                outstanding[workload.key] += 1
        return _process_workloads(self, workload_list)

    def _read_results_ignoring_stale(self):
        outstanding = self.__dict__.setdefault("_demo_outstanding", Counter())
        while not self.result_queue.empty():
            key, state, exc = self.result_queue.get()
            if isinstance(key, TaskInstanceKey) and state in (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED):
                outstanding[key] -= 1
                if outstanding[key] > 0:
                    self.log.warning(
                        "sp-reports demo: ignoring %s of an earlier workload of %s; a later workload of the same "
                        "try (the task resumed after deferral) is queued or running (apache/airflow#72716)",
                        state, key)
                    continue
                del outstanding[key]
            self.change_state(key, state)

    LocalExecutor._process_workloads = _counting_process_workloads
    LocalExecutor._read_results = _read_results_ignoring_stale
"""


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
    emulator_port, api_port, sqs_port, execution_port = free_port(), free_port(), free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    sqs_url = f"http://127.0.0.1:{sqs_port}"
    registry = demo_registry()
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
        # Task workers reach Airflow through the Execution API, served by an api-server of its own (see the
        # module's docstring), not the one airflow standalone starts for the REST API and the UI.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{execution_port}/execution/",
        **airflow_demo_env(),
        "SP_REPORTS_LAKE": str(LAKE),
        **sp_reports_env(emulator_url, sqs_url, registry),
    }
    processes: list[subprocess.Popen] = []
    try:
        say(f"starting moto_server (SQS) on {sqs_url}")
        processes.append(start("moto_server", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(sqs_port)], env))
        wait_until("moto_server", lambda: http.get(sqs_url).status_code < 500, 30, processes)
        queue_url, queue_arn = create_queue(sqs_url)
        env["SP_REPORTS_NOTIFICATIONS_QUEUE_URL"] = queue_url  # the notification DAG exists with a queue

        start_emulator(emulator_port, sqs_url, env, processes, LAKE)

        say(f"starting airflow standalone (SQLite, LocalExecutor) on http://127.0.0.1:{api_port}; logs in {DEMO}")
        (DEMO / "airflow" / "config").mkdir(parents=True, exist_ok=True)
        (DEMO / "airflow" / "config" / "airflow_local_settings.py").write_text(SCHEDULER_PATCH, encoding="utf-8")
        processes.append(start("airflow", [str(BIN / "airflow"), "standalone"], env))
        wait_until("Airflow's API and the report DAGs",
                   lambda: all(http.get(f"{api}/dags/{dag_id}").is_success for dag_id in (*DEMO_RUNS, *GENERATED_DAGS)),
                   STARTUP_TIMEOUT, processes)
        # Started once standalone has written airflow.cfg (two processes creating it at once would race), and
        # before any task can run: every DAG is paused or unscheduled until the demo starts it.
        say(f"starting the tasks' Execution API server on http://127.0.0.1:{execution_port}/execution/")
        processes.append(start("execution_api", [str(BIN / "airflow"), "api-server", "--apps", "execution",
                                                 "-H", "127.0.0.1", "--port", str(execution_port)], env))
        wait_until("the Execution API server",
                   lambda: http.get(f"http://127.0.0.1:{execution_port}/execution/health").is_success,
                   STARTUP_TIMEOUT, processes)
        unpause_demo_dags(api)
        _runs, states, rows = requested_reports(api, processes)
        phase1_created = http.get(f"{emulator_url}/_emulator/stats").json()["calls"].get("createReport", 0)
        limit_problems = amazon_limits(api, emulator_url, processes)

        generated = amazon_generated_reports(api, env, emulator_url, queue_arn, processes)
        stats = http.get(f"{emulator_url}/_emulator/stats").json()
    finally:
        for process in reversed(processes):
            stop(process)
        say("stopped the emulator and Airflow")

    print_table(rows)
    print_emulator_stats(stats)
    problems = demo_problems(states, rows, phase1_created, generated, DEMO / "airflow" / "logs")
    problems += restricted_fetches(rows, stats)
    problems += limit_problems
    landed = len(rows)
    for problem in problems:
        say(f"FAILED: {problem}")
    if problems:
        return 1
    amazon = sum(1 for e in generated["entries"].values() if e["via"] != "request")
    say(f"OK: {landed} requested reports, one createReport each; {amazon} Amazon-generated "
        f"reports landed once each; the lake is {LAKE}")
    return 0


def airflow_demo_env() -> dict[str, str]:
    """Airflow settings every demo shares."""
    return {
        # One signing key for the tokens the scheduler issues and the api-servers check.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        # The demo's Airflow listens on loopback only; everyone who reaches it is an admin.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    }


def sp_reports_env(emulator_url: str, aws_url: str, registry: Path) -> dict[str, str]:
    """The sp-reports settings and connections of the demos (the lake and the notification queue are each
    demo's own): the three accounts at the emulator, and AWS (SQS, S3) at moto_server."""
    return {
        "SP_REPORTS_POLL_INTERVAL": "2",
        "SP_REPORTS_DISABLE_SCHEDULES": "1",  # only the runs the demo triggers
        "SP_REPORTS_REGISTRY": str(registry),
        "SP_REPORTS_NOTIFICATIONS_POLL_SECONDS": "2",
        # SQS (and S3) on moto_server on loopback, through the amazon provider's AWS connection.
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                "extra": {"endpoint_url": aws_url, "region_name": "us-east-1"}}),
        "SP_REPORTS_ACCOUNTS": ",".join(ACCOUNTS),
        **{f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection(conn_id, emulator_url)) for conn_id in ACCOUNTS},
    }


def start_emulator(port: int, sqs_url: str, env: dict, processes: list[subprocess.Popen], lake: object) -> str:
    """The SP-API emulator with the demo's sellers, notifying through SQS; returns its URL."""
    emulator_url = f"http://127.0.0.1:{port}"
    say(f"starting the SP-API emulator on {emulator_url} ({SPEED}x Amazon's speed, notifying via SQS, "
        f"a settlement per account every {SETTLEMENT_PERIOD // SPEED}s, seed {SEED}); the lake is {lake}")
    processes.append(start("emulator", [str(BIN / "sp-reports"), "emulator", "--port", str(port),
                                        "--speed", str(SPEED), "--processing-seconds", str(4 * SPEED),
                                        "--sqs-endpoint", sqs_url, "--settlement-period", str(SETTLEMENT_PERIOD),
                                        "--seed", str(SEED), "--config-json",
                                        json.dumps({**emulator_sellers(), "cooldowns": {COOLDOWN_TYPE: COOLDOWN_SECONDS}})],
                                 env))
    wait_until("the emulator", lambda: http.get(f"{emulator_url}/_emulator/stats").is_success, 30, processes)
    return emulator_url


def unpause_demo_dags(api: str) -> None:
    for dag_id in (*DEMO_RUNS, "sp_reports_report_schedules", "sp_reports_generated_reports"):
        problems = http.get(f"{api}/importErrors").json().get("import_errors", [])
        if problems:
            raise RuntimeError(f"DAG import errors: {problems}")
        http.patch(f"{api}/dags/{dag_id}", json={"is_paused": False}).raise_for_status()


def requested_reports(api: str, processes: list[subprocess.Popen],
                      demo_runs: dict[str, list[str]] | None = None) -> tuple[dict, dict, list[dict]]:
    """Phase 1: trigger each report type's DAG for its marketplaces (the last three days), wait for the runs.
    Returns the run ids and final states by DAG id, and the summary rows (one per report)."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    runs = {}
    for dag_id, marketplaces in (demo_runs or DEMO_RUNS).items():
        conf = {"marketplace_ids": marketplaces,
                "data_start": (today - timedelta(days=3)).isoformat(), "data_end": today.isoformat()}
        response = http.post(f"{api}/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        response.raise_for_status()
        runs[dag_id] = response.json()["dag_run_id"]
        say(f"triggered {dag_id} for {', '.join(marketplaces)} ({runs[dag_id]})")

    states = {}

    def all_finished() -> bool:
        for dag_id, run_id in runs.items():
            states[dag_id] = http.get(f"{api}/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
        return all(state in ("success", "failed") for state in states.values())

    wait_until("the DAG runs", all_finished, RUN_TIMEOUT, processes)

    rows = []
    for dag_id, run_id in runs.items():
        say(f"{dag_id}: run {states[dag_id]}")
        entry = http.get(f"{api}/dags/{dag_id}/dagRuns/{run_id}/taskInstances/summarize/xcomEntries/return_value")
        if entry.is_success:
            rows.extend(entry.json()["value"])
    return runs, states, rows


def amazon_limits(api: str, emulator_url: str, processes: list[subprocess.Popen]) -> list[str]:
    """Phase 1b, Amazon's limits on real Airflow: (a) the orders DAG triggered again for the same US range, with
    Skip landed ranges off, reuses Amazon's DONE report instead of requesting it (no createReport); (b) the
    inventory DAG triggered twice for DE with Force new reports: the second request lands inside the type's
    cooldown and ends FATAL, so its task waits the window out deferred and requests once more. Returns problems."""
    def creates() -> int:
        return http.get(f"{emulator_url}/_emulator/stats").json()["calls"].get("createReport", 0)

    problems = []
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    orders = {"marketplace_ids": [US], "data_start": (today - timedelta(days=3)).isoformat(),
              "data_end": today.isoformat(), "skip_landed": False}
    before = creates()
    run_id, state = run_to_the_end(api, "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", processes, orders)
    rows = http.get(f"{api}/dags/GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL/dagRuns/{run_id}/taskInstances/"
                    "summarize/xcomEntries/return_value").json().get("value", [])
    reused = [row["report_id"] for row in rows if row.get("reused")]
    say(f"reuse: the orders run again for US: {state}, reused report(s) {', '.join(reused) or 'none'}, "
        f"{creates() - before} createReport")
    if state != "success" or not reused or creates() != before:
        problems.append(f"reuse: run {state}, reused {reused}, {creates() - before} createReport (expected 0)")

    inventory = {"marketplace_ids": [DE], "force_new_report": True}
    before = creates()
    first = trigger_and_wait(api, COOLDOWN_TYPE, processes, inventory)
    started = time.monotonic()
    second = trigger_and_wait(api, COOLDOWN_TYPE, processes, inventory)
    waited = time.monotonic() - started
    made = creates() - before
    say(f"cooldown: {COOLDOWN_TYPE} for DE twice in a row: {first}, then {second} after {waited:.0f}s, "
        f"{made} createReport: the second run's request ended FATAL inside the {COOLDOWN_SECONDS // SPEED}s cooldown "
        "the first run's report started; its task waited the window out, deferred, and asked once more")
    # The first run may also have met the window phase 1's report started (then it asked twice too).
    if (first, second) != ("success", "success") or made not in (3, 4) or waited < COOLDOWN_SECONDS / SPEED / 2:
        problems.append(f"cooldown: runs {first}/{second} in {waited:.0f}s with {made} createReport "
                        "(expected 3 or 4, the second run waiting out the cooldown)")
    return problems


def print_emulator_stats(stats: dict) -> None:
    print("\nEmulator calls per operation:")
    for operation, count in sorted(stats["calls"].items()):
        print(f"  {operation:<24} {count}")
    print(f"  {'notifications published':<24} {stats['notifications']['notificationsPublished']}")
    print("\nEmulator calls per seller:")
    for seller, calls in sorted(stats.get("calls_by_seller", {}).items()):
        print(f"  {seller:<24} " + ", ".join(f"{op} {n}" for op, n in sorted(calls.items())))


def demo_problems(states: dict, rows: list[dict], created: int, generated: dict, logs: Path) -> list[str]:
    """What did not hold: failed runs, a createReport count other than one per requested report, a report
    under the wrong seller, and report_generated's checks of the reports Amazon created."""
    problems = report_generated(generated)
    failed = [dag_id for dag_id, state in states.items() if state != "success"]
    if failed:
        problems.append(f"failed runs: {', '.join(failed)} (task logs under {logs})")
    if created != len(rows) or not rows:
        problems.append(f"the emulator saw {created} createReport calls for {len(rows)} requested reports")
    return problems + wrong_sellers(rows, generated)


def restricted_fetches(rows: list[dict], stats: dict) -> list[str]:
    """Says how the restricted reports' documents were fetched: each through a Restricted Data Token (the emulator
    refuses them the LWA token), so at least one createRestrictedDataToken when one landed."""
    from sp_reports.registry import RESTRICTED_REPORT_TYPES

    restricted = [r for r in rows if r["report_type"] in RESTRICTED_REPORT_TYPES]
    tokens = stats.get("calls", {}).get("createRestrictedDataToken", 0)
    say(f"{len(restricted)} restricted report(s) fetched through {tokens} Restricted Data Token(s) "
        f"(createRestrictedDataToken)")
    if restricted and not tokens:
        return [f"{len(restricted)} restricted reports landed but the emulator minted no Restricted Data Token"]
    return []


def connection(conn_id: str, emulator_url: str) -> dict:
    """The Airflow connection of one account, at the emulator's endpoint for its region."""
    seller, region, refresh_token, marketplaces = ACCOUNTS[conn_id]
    return {
        "conn_type": "selling_partner",
        "login": "emulator-client-id",
        "password": "emulator-client-secret",
        "extra": {
            "selling_partner_id": seller,
            "refresh_token": refresh_token,
            "region": region,
            "endpoint": f"{emulator_url}/{region.lower()}",
            "lwa_endpoint": f"{emulator_url}/auth/o2/token",
            "marketplace_ids": ",".join(marketplaces),
        },
    }


def emulator_sellers() -> dict:
    """The emulator's sellers: one authorisation per account."""
    return {
        "sellers": [
            {"seller_id": seller, "region": region, "refresh_token": token, "marketplace_ids": marketplaces}
            for seller, region, token, marketplaces in ACCOUNTS.values()
        ]
    }


def demo_registry() -> Path:
    """The project's registry with the scheduled report every five minutes instead of daily, so the
    demo sees Amazon's schedule at work (ten seconds at the emulator's speed)."""
    from sp_reports.settings import PACKAGED_REGISTRY

    text = PACKAGED_REGISTRY.read_text(encoding="utf-8").replace("period: P1D", "period: PT5M")
    # Amazon's cooldown of that type, in the emulator's time.
    text = text.replace(f"{COOLDOWN_TYPE}:\n", f"{COOLDOWN_TYPE}:\n  cooldown: {COOLDOWN_SECONDS // SPEED}s\n", 1)
    path = DEMO / "report_types.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def create_queue(sqs_url: str) -> tuple[str, str]:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=sqs_url, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    url = sqs.create_queue(QueueName="sp-reports-notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def trigger_and_wait(api: str, dag_id: str, processes: list[subprocess.Popen], conf: dict | None = None) -> str:
    return run_to_the_end(api, dag_id, processes, conf)[1]


def run_to_the_end(api: str, dag_id: str, processes: list[subprocess.Popen],
                   conf: dict | None = None) -> tuple[str, str]:
    """Trigger a run and wait for it to end: (its run id, its final state)."""
    response = http.post(f"{api}/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
    response.raise_for_status()
    run_id = response.json()["dag_run_id"]
    say(f"triggered {dag_id} ({run_id})")
    state = {}

    def finished() -> bool:
        state["value"] = http.get(f"{api}/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
        return state["value"] in ("success", "failed")

    wait_until(dag_id, finished, RUN_TIMEOUT, processes)
    say(f"{dag_id}: run {state['value']}")
    return run_id, state["value"]


def amazon_generated_reports(api: str, env: dict, emulator_url: str, queue_arn: str,
                             processes: list[subprocess.Popen], lake: object = None) -> dict:
    """Phase 2: notifications, schedules as code, settlements by listing. Returns what it saw."""
    from sp_reports.client import Credentials, SellingPartnerClient, ensure_report_notifications
    from sp_reports.lake import Lake
    from sp_reports.lake.ledger import Ledger

    for conn_id in ACCOUNTS:
        account = connection(conn_id, emulator_url)
        credentials = Credentials(client_id=account["login"], client_secret=account["password"],
                                  refresh_token=account["extra"]["refresh_token"])
        with SellingPartnerClient(credentials, endpoint=account["extra"]["endpoint"],
                                  lwa_endpoint=account["extra"]["lwa_endpoint"], scale_quotas=SPEED) as client:
            ids = ensure_report_notifications(client, queue_arn)
        say(f"subscribed the SQS queue to REPORT_PROCESSING_FINISHED for {conn_id} "
            f"(subscription {ids['subscription_id']})")
    http.patch(f"{api}/dags/sp_reports_notifications", json={"is_paused": False}).raise_for_status()
    say("unpaused sp_reports_notifications (continuous: deferred on the queue between batches)")

    states = {"sp_reports_report_schedules": trigger_and_wait(api, "sp_reports_report_schedules", processes)}
    ledger = Ledger(lake or Lake(str(LAKE)))

    def recorded_now() -> dict:
        # Only what this demo recorded counts (its lake is its own; the filter keeps that true if it is reused).
        return {rid: e for rid, e in ledger.entries().items() if e["recorded_at"] >= STARTED}

    def notified_enough() -> bool:
        scheduled = [e for e in recorded_now().values()
                     if e["via"] == "notification" and e["report_type"] == "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"]
        return len(scheduled) >= NOTIFIED_WANTED

    say(f"waiting for {NOTIFIED_WANTED} scheduled reports to arrive by notification and land")
    wait_until("notified reports", notified_enough, RUN_TIMEOUT, processes)
    states["sp_reports_generated_reports"] = trigger_and_wait(api, "sp_reports_generated_reports", processes)
    http.patch(f"{api}/dags/sp_reports_notifications", json={"is_paused": True}).raise_for_status()
    runs = http.get(f"{api}/dags/sp_reports_notifications/dagRuns", params={"limit": 100}).json()["dag_runs"]
    states["sp_reports_notifications"] = "failed" if any(r["state"] == "failed" for r in runs) else "success"
    return {"states": states, "entries": recorded_now(), "notification_runs": len(runs)}


def report_generated(generated: dict) -> list[str]:
    entries = sorted(generated["entries"].values(), key=lambda e: (e["via"], e["report_created_time"] or 0))
    print("\nReports Amazon created itself (the ledger, tables/_ledger):")
    header = ("arrived by", "seller", "report type", "reportId", "status", "rows")
    lines = [header] + [(e["via"], e["selling_partner_id"], e["report_type"], e["report_id"], e["status"],
                         str(e["rows_landed"])) for e in entries if e["via"] != "request"]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)))
        if n == 0:
            print("  ".join("-" * width for width in widths))
    print(f"({generated['notification_runs']} runs of sp_reports_notifications)")
    problems = [f"{dag_id} run {state}" for dag_id, state in generated["states"].items() if state != "success"]
    vias = {e["via"] for e in entries}
    if "notification" not in vias:
        problems.append("no report arrived by notification")
    if not {"listing", "recovered"} & vias:
        problems.append("no report was landed by listing")
    if any(e["status"] == "LISTED" for e in entries):
        problems.append("a listed report was not landed")
    return problems


def wrong_sellers(rows: list[dict], generated: dict) -> list[str]:
    """Every report landed under the seller whose account serves its marketplace, and both sellers landed."""
    seller_of = {m: seller for seller, _, _, marketplaces in ACCOUNTS.values() for m in marketplaces}
    problems = [
        f"report {r['report_id']} ({','.join(r['marketplace_ids'])}) landed under seller {r['selling_partner_id']}"
        for r in rows
        if {seller_of.get(m) for m in r["marketplace_ids"]} != {r["selling_partner_id"]}
    ]
    sellers = {r["selling_partner_id"] for r in rows} | {e["selling_partner_id"] for e in generated["entries"].values()}
    if sellers != {GLOBAL_SELLER, EUROPE_SELLER}:
        problems.append(f"reports landed for sellers {sorted(sellers)}, not for both demo sellers")
    return problems


def print_table(rows: list[dict]) -> None:
    header = ("seller", "report type", "marketplace", "reportId", "status", "rows", "lake path")
    lines = [header] + [
        (r["selling_partner_id"], r["report_type"], ",".join(r["marketplace_ids"]), r["report_id"],
         r["processing_status"], str(r["rows"]), r.get("table_uri") or "-")
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
