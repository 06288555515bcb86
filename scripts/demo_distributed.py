"""`make demo-distributed`: `make demo`'s DAGs on the production topology, each component its own process.

    PostgreSQL (127.0.0.1:5432)   metadata DB of this run's own (created here, dropped at the end), and the
                                  Celery result backend (db+postgresql+psycopg://...)
    Redis (127.0.0.1:6379/5)      the Celery broker (db 5, flushed at the start)
    airflow db migrate            once, before anything else
    airflow api-server            REST API and the tasks' Execution API (one JWT secret, shared by env)
    airflow scheduler             CeleryExecutor: queues each task on Redis
    airflow dag-processor         parses dags/ (SP_REPORTS_PARSE_QUEUE is read there)
    airflow triggerer             the deferred waits (getReport polls, the SQS notification sensor)
    airflow celery worker x2      worker1 serves the default queue, worker2 the parse queue (sp_reports_parse):
                                  each report's fetch_document and land run on worker1, its parse_document
                                  on worker2, so one report crosses workers and still lands
    moto_server                   S3 (the lake: s3://sp-reports-demo/<run>/lake) and SQS (notifications)
    sp-reports emulator           the SP-API, with `make demo`'s two sellers across three regions

Then it runs `make demo`'s two phases (scripts/demo.py: requested reports; reports Amazon creates), prints which
worker ran each task (the task instances' hostname), reads the tables back from S3 with deltalake, prints the
emulator's calls and 429s, checks one createReport per requested report and one report split across workers,
stops everything it started and prints each process type's wall time and peak memory. Exit status non-zero if
anything failed. Logs: .demo-distributed/*.log, task logs under .demo-distributed/airflow/logs.

The workers run on one machine here, so each gets SP_REPORTS_DEMO_WORKER and Airflow's hostname_callable
(scripts/demo_hostname.py) records that name on the task instances it runs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "plugins")]
import demo  # noqa: E402  (scripts/demo.py: accounts, emulator, phases, checks)
from demo import BIN, ROOT, http, say, wait_until  # noqa: E402

HOME = ROOT / ".demo-distributed"
PARSE_QUEUE = "sp_reports_parse"
BUCKET = "sp-reports-demo"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
# Worker name -> the Celery queues it serves (default: Airflow's [operators] default_queue).
DEMO_WORKERS = {"worker1": ["default"], "worker2": [PARSE_QUEUE]}
# Celery pool size of each: the default queue carries two tasks of every three (fetch, land, and the rest).
CONCURRENCY = {"worker1": 4, "worker2": 2}


class Topology:
    """The processes of one distributed Airflow (plus moto_server and the emulator), started and stopped
    together, with their wall time and memory sampled. Used by the demo and by tests/test_distributed.py."""

    def __init__(self, home: Path, *, redis_db: int, workers: dict[str, list[str]], sample_seconds: float = 0.5):
        self.home = home
        demo.DEMO = home  # demo.start() logs to <home>/<name>.log, demo_registry() writes there
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        self.run = f"{datetime.now(UTC):%Y%m%dt%H%M%S}_{os.getpid()}"
        self.database = f"sp_reports_demo_{self.run}"
        self.redis_db = redis_db
        self.workers = workers
        self.lake_root = f"s3://{BUCKET}/{self.run}/lake"
        self.processes: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, tuple[list[str], dict]] = {}
        self.started: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.stopped: dict[str, float] = {}
        self.peak_group_rss: Counter[str] = Counter()  # sum over the group's members, sampled together
        self.peak_members: Counter[str] = Counter()
        self.peak_process_hwm: Counter[str] = Counter()  # the largest member's VmHWM
        self.one_shot: dict[str, tuple[float, int]] = {}  # `airflow db migrate`: seconds, peak RSS
        self._sample_seconds = sample_seconds
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None
        self.env: dict[str, str] = {}
        self.moto_url = self.emulator_url = self.api = ""
        self.queue_url = self.queue_arn = ""

    # --- start -----------------------------------------------------------------------------------------

    def start(self, *, parse_queue: str | None = PARSE_QUEUE) -> None:
        ports = {name: demo.free_port() for name in ("moto", "emulator", "api", "trigger_logs", *self.workers)}
        self.moto_url = f"http://127.0.0.1:{ports['moto']}"
        self.api = f"http://127.0.0.1:{ports['api']}/api/v2"
        emulator_url = f"http://127.0.0.1:{ports['emulator']}"
        database_url = f"{POSTGRES}/{self.database}"
        pythonpath = os.pathsep.join(p for p in (str(ROOT / "plugins"), str(ROOT / "scripts"),
                                                 os.environ.get("PYTHONPATH", "")) if p)
        # Nothing of the caller's Airflow or sp-reports configuration (the test suite's UNIT_TEST_MODE, say).
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SP_REPORTS_"))}
        self.env = {
            **inherited,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": pythonpath,
            "AIRFLOW_HOME": str(self.home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "64",  # tasks queued on a busy queue must not starve another queue
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database_url}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(ports["api"]),
            "AIRFLOW__API__WORKERS": "1",
            # Signs the api-server's requests for task logs from the workers' log servers.
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{ports['api']}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "demo_hostname.hostname",
            # A task whose worker died stops heartbeating; the scheduler fails it (and its retry runs) after this
            # long instead of the default 5 minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["trigger_logs"]),
            **demo.airflow_demo_env(),
            "SP_REPORTS_LAKE": self.lake_root,
            "SP_REPORTS_AWS_CONN_ID": "aws_default",
            **demo.sp_reports_env(emulator_url, self.moto_url, demo.demo_registry()),
        }
        if parse_queue:
            self.env["SP_REPORTS_PARSE_QUEUE"] = parse_queue
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

        self._psql(f'CREATE DATABASE "{self.database}"')
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", str(self.redis_db), "flushdb"], check=True,
                       capture_output=True)
        say(f"PostgreSQL database {self.database} (metadata and Celery results); Redis db {self.redis_db} "
            f"(broker, flushed)")

        say(f"starting moto_server (S3 and SQS) on {self.moto_url}")
        self._start("moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(ports["moto"])])
        wait_until("moto_server", lambda: http.get(self.moto_url).status_code < 500, 30, self._alive())
        self._ready("moto")
        self._aws("s3").create_bucket(Bucket=BUCKET)
        self.queue_url, self.queue_arn = demo.create_queue(self.moto_url)
        self.env["SP_REPORTS_NOTIFICATIONS_QUEUE_URL"] = self.queue_url

        processes = list(self.processes.values())
        self.emulator_url = demo.start_emulator(ports["emulator"], self.moto_url, self.env, processes, self.lake_root)
        self.processes["emulator"] = processes[-1]
        self.started["emulator"] = self.started["moto"]
        self._ready("emulator")

        say("airflow db migrate")
        began = time.monotonic()
        migrate = self._start("db-migrate", [str(BIN / "airflow"), "db", "migrate"])
        peak = 0
        while migrate.poll() is None:
            peak = max(peak, self._group_rss(migrate)[0])
            time.sleep(0.2)
        self.one_shot["db migrate"] = (time.monotonic() - began, peak)
        del self.processes["db-migrate"]
        if migrate.returncode:
            raise RuntimeError(f"airflow db migrate failed; see {self.home}/db-migrate.log")

        say(f"starting api-server (http://127.0.0.1:{ports['api']}: REST and Execution API), scheduler, "
            f"dag-processor, triggerer and {len(self.workers)} Celery workers")
        self._start("api-server", [str(BIN / "airflow"), "api-server"])
        self._start("scheduler", [str(BIN / "airflow"), "scheduler"])
        self._start("dag-processor", [str(BIN / "airflow"), "dag-processor"])
        self._start("triggerer", [str(BIN / "airflow"), "triggerer"])
        for name, queues in self.workers.items():
            env = {**self.env, "SP_REPORTS_DEMO_WORKER": name,
                   "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports[name])}
            self._start(name, [str(BIN / "airflow"), "celery", "worker", "--celery-hostname", f"{name}@%h",
                               "--queues", ",".join(queues), "--concurrency", str(CONCURRENCY.get(name, 2))], env)
        wait_until("the api-server", lambda: http.get(f"{self.api}/monitor/health").is_success,
                   demo.STARTUP_TIMEOUT, self._alive())
        self._ready("api-server")
        for name in self.workers:
            log = self.home / f"{name}.log"
            wait_until(f"Celery {name}", lambda log=log: " ready." in log.read_text(errors="replace"),
                       demo.STARTUP_TIMEOUT, self._alive())
            self._ready(name)
            say(f"{name} ready, serving {', '.join(self.workers[name])}")

    def wait_for_dags(self, dag_ids) -> None:
        wait_until("the DAGs", lambda: all(http.get(f"{self.api}/dags/{d}").is_success for d in dag_ids),
                   demo.STARTUP_TIMEOUT, self._alive())
        for name in ("scheduler", "dag-processor", "triggerer"):
            self._ready(name)

    def lake(self):
        """The S3 lake as this process reads it (moto's endpoint, its dummy credentials)."""
        from sp_reports.lake import Lake

        return Lake(self.lake_root, storage_options={
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.moto_url, "AWS_ALLOW_HTTP": "true"})

    # --- stop ------------------------------------------------------------------------------------------

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            demo.stop(self.processes[name])
            self.stopped[name] = time.monotonic()
        self._sampling.set()
        if self._sampler:
            self._sampler.join(timeout=5)
        self._psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        say(f"stopped {len(self.processes)} processes; dropped database {self.database}")

    # --- measuring -------------------------------------------------------------------------------------

    def measurements(self) -> list[tuple[str, float, float | None, int, int, int]]:
        """(process, wall seconds, seconds to ready, peak processes, peak group RSS, largest member VmHWM)."""
        out = []
        for name in self.processes:
            wall = self.stopped.get(name, time.monotonic()) - self.started[name]
            ready = self.ready.get(name)
            out.append((name, wall, ready - self.started[name] if ready else None, self.peak_members[name],
                        self.peak_group_rss[name], self.peak_process_hwm[name]))
        return out

    def print_measurements(self) -> None:
        mib = 1024 * 1024
        header = ("process", "wall s", "ready after s", "processes", "peak RSS (group) MiB", "peak RSS (one) MiB")
        lines = [header] + [
            (name, f"{wall:.0f}", f"{ready:.1f}" if ready is not None else "-", str(members),
             f"{group / mib:.0f}", f"{one / mib:.0f}")
            for name, wall, ready, members, group, one in self.measurements()
        ]
        for name, (seconds, peak) in self.one_shot.items():
            lines.append((name, f"{seconds:.0f}", "-", "1+", f"{peak / mib:.0f}", "-"))
        print("\nProcesses: wall time, and peak memory of the process group (all its members' RSS sampled every "
              f"{self._sample_seconds}s, summed: workers include the tasks they fork) and of its largest member "
              "(VmHWM)")
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        for n, line in enumerate(lines):
            print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
            if n == 0:
                print("  ".join("-" * width for width in widths))

    def _sample(self) -> None:
        while not self._sampling.wait(self._sample_seconds):
            groups = self._groups()
            for name, process in list(self.processes.items()):
                if name not in self.stopped:
                    rss, members, hwm = groups.get(process.pid, (0, 0, 0))
                    self.peak_group_rss[name] = max(self.peak_group_rss[name], rss)
                    self.peak_members[name] = max(self.peak_members[name], members)
                    self.peak_process_hwm[name] = max(self.peak_process_hwm[name], hwm)

    def _group_rss(self, process: subprocess.Popen) -> tuple[int, int, int]:
        return self._groups().get(process.pid, (0, 0, 0))

    @staticmethod
    def _groups() -> dict[int, tuple[int, int, int]]:
        """{process group id: (summed RSS, members, largest VmHWM)}. Each started process leads a group of
        its own (start_new_session), which holds everything it forked: api-server workers, the Celery pool,
        task supervisors and tasks."""
        groups: dict[int, tuple[int, int, int]] = {}
        for pid in psutil.pids():
            try:
                group = os.getpgid(pid)
                rss = hwm = 0
                with open(f"/proc/{pid}/status") as status:
                    for line in status:
                        if line.startswith("VmRSS:"):
                            rss = int(line.split()[1]) * 1024
                        elif line.startswith("VmHWM:"):
                            hwm = int(line.split()[1]) * 1024
            except OSError:
                continue
            total, members, largest = groups.get(group, (0, 0, 0))
            groups[group] = (total + rss, members + 1, max(largest, hwm))
        return groups

    # --- helpers ---------------------------------------------------------------------------------------

    def _start(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        self.commands[name] = (args, env or self.env)
        self.processes[name] = demo.start(name, args, env or self.env)
        self.started.setdefault(name, time.monotonic())
        return self.processes[name]

    def kill(self, name: str) -> None:
        """SIGKILL the process's whole group (a worker's forked tasks included): a host lost, nothing cleaned up."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def restart(self, name: str) -> None:
        """Start a killed process again, as it was started (its log is appended to)."""
        args, env = self.commands[name]
        with open(self.home / f"{name}.log", "a") as log:  # the child keeps its own copy of the descriptor
            self.processes[name] = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                                    start_new_session=True)

    def _ready(self, name: str) -> None:
        self.ready.setdefault(name, time.monotonic())

    def _alive(self) -> list[subprocess.Popen]:
        return list(self.processes.values())

    def _aws(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.moto_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    @staticmethod
    def _psql(sql: str) -> None:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                        "-q", "-c", sql], check=True, capture_output=True)


# --- faults of a fleet -------------------------------------------------------------------------------------

ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
# No natural keys: each report replaces its own rows, so a report landed twice would show twice its rows.
SALES = "GET_SALES_AND_TRAFFIC_REPORT"
FAULT_MARKETPLACES = [demo.US, demo.DE, demo.JP]


def fleet_faults(topology: Topology) -> list[str]:
    """The faults a fleet has, on this topology: (1) the triggerer killed (SIGKILL) while three reports wait
    deferred, then started again: the waits resume, every report lands, one createReport each, none cancelled;
    (2) each worker killed (SIGKILL of its whole process tree) while it parses or lands a report, then started
    again: the scheduler fails the task whose worker vanished, its retry lands the report exactly once."""
    api, emulator = topology.api, topology.emulator_url
    problems: list[str] = []
    days = (6, 3)

    # (1) The triggerer. Reports take 40 s (emulated 20 min) here, so the waits are deferred when it dies.
    before = emulator_calls(emulator)
    configure_emulator(emulator, processing_seconds=40 * demo.SPEED)
    run = trigger(api, ORDERS, FAULT_MARKETPLACES, days)
    def all_deferred() -> bool:
        note_shared_buckets(topology.redis_db)
        return states_of(api, ORDERS, run, "report.request_report").count("deferred") == len(FAULT_MARKETPLACES)

    wait_until("three deferred waits", all_deferred, demo.RUN_TIMEOUT, topology.processes.values())
    topology.kill("triggerer")
    say(f"killed the triggerer (SIGKILL) while {len(FAULT_MARKETPLACES)} reports waited deferred; starting another")
    configure_emulator(emulator, processing_seconds=4 * demo.SPEED)
    time.sleep(3)
    topology.restart("triggerer")
    state = wait_run(api, ORDERS, run, topology)
    calls = {op: n - before.get(op, 0) for op, n in emulator_calls(emulator).items()}
    say(f"after the triggerer's restart: run {state}, {calls.get('createReport', 0)} createReport, "
        f"{calls.get('cancelReport', 0)} cancelReport")
    if state != "success" or calls.get("createReport", 0) != len(FAULT_MARKETPLACES) or calls.get("cancelReport"):
        problems.append(f"triggerer restart: run {state}, {calls.get('createReport', 0)} createReport for "
                        f"{len(FAULT_MARKETPLACES)} reports, {calls.get('cancelReport', 0)} cancelled")

    # (2) The workers. Big documents, so that parsing and landing take long enough to be caught at it.
    configure_emulator(emulator, rows_per_report=60_000)
    http.patch(f"{api}/dags/{SALES}", json={"is_paused": False}).raise_for_status()
    run = trigger(api, SALES, FAULT_MARKETPLACES, days)
    killed: dict[str, str] = {}

    def kill_a_busy_worker() -> bool:
        note_shared_buckets(topology.redis_db)
        for ti in task_instances(api, SALES, run):
            worker = ti.get("hostname")
            if ti["state"] == "running" and ti["task_id"] in ("report.parse_document", "report.land") \
                    and worker in topology.workers and worker not in killed:
                topology.kill(worker)
                killed[worker] = f"{ti['task_id']}[{ti['map_index']}]"
                say(f"killed {worker} (SIGKILL of its process tree) while it ran {killed[worker]}; starting it again")
                topology.restart(worker)
        state = http.get(f"{api}/dags/{SALES}/dagRuns/{run}").json()["state"]
        return state in ("success", "failed")

    wait_until(f"{SALES} with its workers killed", kill_a_busy_worker, demo.RUN_TIMEOUT, topology.processes.values())
    configure_emulator(emulator, rows_per_report=50)
    state = http.get(f"{api}/dags/{SALES}/dagRuns/{run}").json()["state"]
    # Every table the report landed in (the JSON report's main table and its per-ASIN table) holds its rows once.
    manifests = [m for m in (land_result(api, SALES, run, i) for i in range(len(FAULT_MARKETPLACES))) if m]
    lake = topology.lake()
    for manifest in manifests:
        for table in manifest["tables"].values():
            found = rows_by_report(lake, table["name"]).get((manifest["selling_partner_id"], manifest["report_id"]), 0)
            say(f"  {manifest['selling_partner_id']} report {manifest['report_id']}: {table['name']} "
                f"{table['rows']} rows landed, {found} in the lake")
            if found != table["rows"]:
                problems.append(f"worker kill: report {manifest['report_id']} has {found} rows in {table['name']}, "
                                f"not {table['rows']}")
    retried = [ti for ti in task_instances(api, SALES, run) if ti.get("try_number", 1) > 1]
    say(f"after killing {', '.join(f'{w} ({t})' for w, t in killed.items()) or 'no worker'}: run {state}, "
        f"{len(manifests)} reports landed, {len(retried)} task(s) retried")
    if not killed:
        problems.append("worker kill: no worker was caught parsing or landing")
    if state != "success" or len(manifests) != len(FAULT_MARKETPLACES):
        problems.append(f"worker kill: run {state} with {len(manifests)} of {len(FAULT_MARKETPLACES)} reports landed")
    return problems


SHARED_BUCKETS: set[str] = set()  # quota buckets seen in Redis during the fault runs


def note_shared_buckets(redis_db: int) -> None:
    """Record the quota buckets in Redis now (client/shared_quota.py keys: sp-reports:quota:<operation>:<hash>)."""
    found = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", str(redis_db), "--scan", "--pattern",
                            "sp-reports:quota:*"], check=True, capture_output=True, text=True).stdout
    SHARED_BUCKETS.update(found.split())


def trigger(api: str, dag_id: str, marketplaces: list[str], days: tuple[int, int]) -> str:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    conf = {"marketplace_ids": marketplaces, "data_start": (today - timedelta(days=days[0])).isoformat(),
            "data_end": (today - timedelta(days=days[1])).isoformat()}
    response = http.post(f"{api}/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
    response.raise_for_status()
    run = response.json()["dag_run_id"]
    say(f"triggered {dag_id} for {', '.join(marketplaces)} ({run})")
    return run


def wait_run(api: str, dag_id: str, run: str, topology: Topology) -> str:
    state: dict[str, str] = {}

    def finished() -> bool:
        state["value"] = http.get(f"{api}/dags/{dag_id}/dagRuns/{run}").json()["state"]
        return state["value"] in ("success", "failed")

    wait_until(dag_id, finished, demo.RUN_TIMEOUT, topology.processes.values())
    return state["value"]


def states_of(api: str, dag_id: str, run: str, task_id: str) -> list[str]:
    return [ti["state"] for ti in task_instances(api, dag_id, run) if ti["task_id"] == task_id]


def emulator_calls(emulator: str) -> dict[str, int]:
    return http.get(f"{emulator}/_emulator/stats").json()["calls"]


def configure_emulator(emulator: str, **changes) -> None:
    http.post(f"{emulator}/_emulator/config", json=changes).raise_for_status()


# --- what ran where --------------------------------------------------------------------------------------

def task_instances(api: str, dag_id: str, run_id: str = "~") -> list[dict]:
    response = http.get(f"{api}/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
    response.raise_for_status()
    return response.json()["task_instances"]


def print_workers(instances: list[dict]) -> None:
    by_worker: dict[str, Counter[str]] = defaultdict(Counter)
    for ti in instances:
        if ti.get("hostname"):
            by_worker[ti["hostname"]][ti["task_id"].rsplit(".", 1)[-1]] += 1
    print("\nTasks per worker (the task instances' hostname):")
    for worker, tasks in sorted(by_worker.items()):
        print(f"  {worker:<10} {sum(tasks.values()):>3} tasks: " + ", ".join(f"{t} {n}" for t, n in sorted(tasks.items())))


def split_reports(runs: dict[str, str], rows: list[dict], api: str) -> list[dict]:
    """Per requested report (a map index of the report group): the worker of its fetch, parse and land."""
    out = []
    rows_by_dag: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        rows_by_dag[row["report_type"]].append(row)
    for dag_id, run_id in runs.items():
        hosts: dict[int, dict[str, str]] = defaultdict(dict)
        for ti in task_instances(api, dag_id, run_id):
            step = ti["task_id"].rsplit(".", 1)[-1]
            if step in ("fetch_document", "parse_document", "land"):
                hosts[ti["map_index"]][step] = f"{ti.get('hostname') or '-'} ({ti['state']}, queue {ti.get('queue')})"
        for index, row in enumerate(rows_by_dag[dag_id]):
            out.append({"row": row, **hosts.get(index, {})})
    print("\nEach requested report's landing tasks, by worker:")
    for report in out:
        row = report["row"]
        print(f"  {row['report_type'][:40]:<40} {','.join(row['marketplace_ids']):<14} {row['report_id']:<14} "
              f"fetch {report.get('fetch_document', '-')}; parse {report.get('parse_document', '-')}; "
              f"land {report.get('land', '-')}; rows {row['rows']}")
    return out


def crossed_workers(reports: list[dict]) -> list[dict]:
    """The reports that landed although their fetch, parse and land did not all run on one worker."""
    out = []
    for report in reports:
        steps = [report.get(step, "") for step in ("fetch_document", "parse_document", "land")]
        hosts = {step.split(" ", 1)[0] for step in steps}
        if all("(success" in step for step in steps) and len(hosts) > 1 and report["row"]["rows"]:
            out.append(report)
    return out


def land_result(api: str, dag_id: str, run: str, map_index: int) -> dict | None:
    """The manifest a mapped land task returned (None if it did not land)."""
    response = http.get(f"{api}/dags/{dag_id}/dagRuns/{run}/taskInstances/report.land/xcomEntries/return_value",
                        params={"map_index": map_index})
    return response.json()["value"] if response.is_success else None


def rows_by_report(lake, table_name: str) -> Counter[tuple[str, str]]:
    """Rows of a table per (seller, reportId), read from S3 with deltalake."""
    from sp_reports.columns import SELLER_COLUMN
    from sp_reports.lake import read_table

    table = read_table(lake, table_name, columns=[SELLER_COLUMN, "report_id"])
    return Counter(zip(table.column(SELLER_COLUMN).to_pylist(), table.column("report_id").to_pylist(), strict=True))


def read_back(lake, root: str, report_types) -> dict[str, Counter[str]]:
    """Rows per seller of each report type's table, read from S3 with deltalake."""
    from sp_reports.columns import SELLER_COLUMN
    from sp_reports.lake import read_table, table_name_for

    counts = {}
    for report_type in sorted(report_types):
        name = table_name_for(report_type)
        table = read_table(lake, name, columns=[SELLER_COLUMN])
        counts[name] = Counter(table.column(SELLER_COLUMN).to_pylist())
    print(f"\nThe lake read back from {root} (deltalake, rows per seller):")
    for name, sellers in counts.items():
        print(f"  {name:<52} {sum(sellers.values()):>6}  " + ", ".join(f"{s} {n}" for s, n in sorted(sellers.items())))
    return counts


def main() -> int:
    began = time.monotonic()
    topology = Topology(HOME, redis_db=5, workers=DEMO_WORKERS)
    problems: list[str] = []
    rows: list[dict] = []
    runs: dict[str, str] = {}
    states: dict[str, str] = {}
    generated: dict = {"states": {}, "entries": {}, "notification_runs": 0}
    stats: dict = {}
    instances: list[dict] = []
    reports: list[dict] = []
    phases: dict[str, float] = {}
    try:
        topology.start()
        topology.wait_for_dags((*demo.DEMO_RUNS, *demo.GENERATED_DAGS))
        phases["start-up"] = time.monotonic() - began
        api = topology.api
        demo.unpause_demo_dags(api)
        mark = time.monotonic()
        runs, states, rows = demo.requested_reports(api, list(topology.processes.values()))
        phases["requested reports"] = time.monotonic() - mark
        created = http.get(f"{topology.emulator_url}/_emulator/stats").json()["calls"].get("createReport", 0)
        reports = split_reports(runs, rows, api)

        mark = time.monotonic()
        problems += fleet_faults(topology)
        phases["faults"] = time.monotonic() - mark
        # Seen while the fault runs' waits and fetches went on (a bucket expires once it is full again).
        say(f"SP-API quota buckets the processes shared in Redis db {topology.redis_db}: {len(SHARED_BUCKETS)} "
            f"({', '.join(sorted({key.rsplit(':', 2)[-2] for key in SHARED_BUCKETS})) or 'none'})")
        if not SHARED_BUCKETS:
            problems.append("no shared quota bucket in Redis: each process kept its own")

        mark = time.monotonic()
        generated = demo.amazon_generated_reports(api, topology.env, topology.emulator_url, topology.queue_arn,
                                                  list(topology.processes.values()), topology.lake())
        phases["reports Amazon created"] = time.monotonic() - mark
        stats = http.get(f"{topology.emulator_url}/_emulator/stats").json()
        for dag_id in (*demo.DEMO_RUNS, *demo.GENERATED_DAGS):
            instances += task_instances(api, dag_id)
        print_workers(instances)
        report_types = {r["report_type"] for r in rows} | {e["report_type"] for e in generated["entries"].values()}
        counts = read_back(topology.lake(), topology.lake_root, report_types)

        demo.print_table(rows)
        demo.print_emulator_stats(stats)
        throttled = {op: codes["429"] for op, codes in stats.get("by_operation_status", {}).items() if "429" in codes}
        print(f"  429 responses: {sum(throttled.values())}"
              + (" (" + ", ".join(f"{op} {n}" for op, n in sorted(throttled.items())) + ")" if throttled else ""))
        problems += demo.demo_problems(states, rows, created, generated, topology.home / "airflow" / "logs")
        if throttled:  # every process takes its tokens from the shared buckets in the broker's Redis
            problems.append(f"the emulator answered {sum(throttled.values())} requests with 429")
        crossed = crossed_workers(reports)
        if not crossed:
            problems.append("no report's fetch, parse and land ran on more than one worker and landed")
        else:
            say(f"{len(crossed)} of {len(reports)} requested reports were fetched, parsed and landed across workers")
        workers_used = {ti["hostname"] for ti in instances if ti.get("hostname")}
        if not set(DEMO_WORKERS) <= workers_used:
            problems.append(f"tasks ran on {sorted(workers_used)}, not on every worker {sorted(DEMO_WORKERS)}")
        for row in rows:
            table = counts.get(row["report_type"].lower(), Counter())
            if row["rows"] and not table.get(row["selling_partner_id"]):
                problems.append(f"no rows of seller {row['selling_partner_id']} in {row['report_type'].lower()}")
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001  (stop everything, then report it)
        problems.append(f"{type(error).__name__}: {error}")
    finally:
        topology.stop()
    total = time.monotonic() - began
    topology.print_measurements()
    print("\nPhases: " + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in phases.items())
          + f"; total {total:.0f}s")
    for problem in problems:
        say(f"FAILED: {problem}")
    if problems:
        return 1
    amazon = sum(1 for e in generated["entries"].values() if e["via"] != "request")
    say(f"OK in {total:.0f}s: {len(rows)} requested reports (one createReport each) and {amazon} reports Amazon "
        f"created, landed in {topology.lake_root} by {len(DEMO_WORKERS)} Celery workers; logs in {HOME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
