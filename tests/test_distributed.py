"""One report DAG end to end on the production topology: CeleryExecutor, PostgreSQL (metadata DB and Celery
results), Redis (broker), the lake in S3 (moto_server), each Airflow component its own process
(scripts/demo_distributed.py's Topology, with one Celery worker serving both the default and the parse queue).

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and Redis on 127.0.0.1:6379 (db 6, flushed);
skipped when either is not there. About two minutes on two cores.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "GET_MERCHANT_LISTINGS_ALL_DATA"

pytestmark = [pytest.mark.distributed, pytest.mark.airflow, pytest.mark.s3]


def _reachable(args: list[str]) -> bool:
    if not shutil.which(args[0]):
        return False
    try:
        return subprocess.run(args, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="module")
def distributed():
    if not _reachable(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", "select 1"]):
        pytest.skip("no PostgreSQL at 127.0.0.1:5432 (user postgres)")
    if not _reachable(["redis-cli", "-h", "127.0.0.1", "ping"]):
        pytest.skip("no Redis at 127.0.0.1:6379")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import demo
        import demo_distributed
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return demo, demo_distributed


def test_a_report_dag_lands_in_s3_on_celery_postgres_and_redis(distributed, tmp_path):
    demo, dd = distributed
    began = time.monotonic()
    topology = dd.Topology(tmp_path / "distributed", redis_db=6, workers={"worker1": ["default", dd.PARSE_QUEUE]})
    try:
        topology.start()
        topology.wait_for_dags([DAG_ID])
        demo.http.patch(f"{topology.api}/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
        runs, states, rows = demo.requested_reports(
            topology.api, list(topology.processes.values()), {DAG_ID: [demo.US, demo.JP]})
        instances = dd.task_instances(topology.api, DAG_ID, runs[DAG_ID])
        stats = demo.http.get(f"{topology.emulator_url}/_emulator/stats").json()
        counts = dd.read_back(topology.lake(), topology.lake_root, [DAG_ID])
    finally:
        topology.stop()
        topology.print_measurements()
        print(f"test_distributed: {time.monotonic() - began:.0f}s")

    assert states == {DAG_ID: "success"}, f"see {topology.home}/*.log"
    # Two reports (US through the NA account, JP through the FE one), one createReport each.
    assert len(rows) == 2 and stats["calls"]["createReport"] == 2
    assert {ti["hostname"] for ti in instances if ti["hostname"]} == {"worker1"}
    # SP_REPORTS_PARSE_QUEUE reached the DAG processor: parse_document alone went to the parse queue.
    queues = {ti["task_id"].rsplit(".", 1)[-1]: ti["queue"] for ti in instances}
    assert queues.pop("parse_document") == dd.PARSE_QUEUE
    assert set(queues.values()) == {"default"}
    # The rows are in the S3 lake, under the seller both accounts belong to.
    landed = sum(row["rows"] for row in rows)
    assert landed > 0
    assert counts[DAG_ID.lower()] == {demo.GLOBAL_SELLER: landed}
