"""A fleet of quota worker processes (tests/client/quota_worker.py) for the quota store tests, and the emulator
documents they fetch."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

import sp_reports
from sp_reports.client import AsyncSellingPartnerClient, Credentials

WORKER = Path(__file__).resolve().parent / "client" / "quota_worker.py"


def start_fleet(jobs: list[dict]) -> list[subprocess.Popen]:
    """One worker process per job, each set up and waiting for its go line."""
    env = {**os.environ, "PYTHONPATH": str(Path(sp_reports.__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, str(WORKER), json.dumps(job)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env) for job in jobs]  # fmt: skip
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
    except BaseException:
        stop(procs)
        raise
    return procs


def finish_fleet(procs: list[subprocess.Popen], lines: list[str] | None = None) -> list:
    """Send each process its go line (``lines``, else ``go``) at once; return each one's result."""
    try:
        for proc, line in zip(procs, lines or ["go"] * len(procs), strict=True):
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, out
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        stop(procs)


def run_fleet(jobs: list[dict]) -> list:
    """Start one worker process per job, let them all go at once, return each one's result."""
    return finish_fleet(start_fleet(jobs))


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def seed_documents(emu, count: int, speed: float) -> list[str]:
    """``count`` DONE reports made the way Amazon makes them (no quota spent); their document ids."""
    emu.reset(config=True)
    with httpx.Client(base_url=emu.base_url, timeout=10) as http:
        for _ in range(count):
            http.post("/_emulator/reports", json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA",
                                                 "marketplaceIds": ["ATVPDKIKX0DER"]}).raise_for_status()  # fmt: skip

    async def done() -> list[str]:
        async with AsyncSellingPartnerClient(Credentials(**emu.credentials), endpoint=emu.base_url,
                                             lwa_endpoint=emu.lwa_url, scale_quotas=speed) as client:  # fmt: skip
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                page = await client.get_reports(report_types=["GET_MERCHANT_LISTINGS_ALL_DATA"],
                                                processing_statuses=["DONE"], page_size=100)  # fmt: skip
                if len(page["reports"]) == count:
                    return [r["reportDocumentId"] for r in page["reports"]]
                await asyncio.sleep(0.05)
        raise AssertionError("the seeded reports did not finish")

    return asyncio.run(done())


def emulator_job(emu, speed: float, **job) -> dict:
    """A worker job that talks to ``emu`` with quotas scaled by ``speed``."""
    return {"speed": speed, "credentials": dict(emu.credentials), "endpoint": emu.base_url,
            "lwa_endpoint": emu.lwa_url, **job}  # fmt: skip
