"""Many waits in one triggerer: N report triggers in one event loop against the emulator at Amazon's quotas.

    .venv/bin/python benchmarks/bench_triggers.py [--waits 1000] [--mode poll,notification]
                                                  [--processing-seconds 60] [--update-doc]

What a triggerer does with deferred report tasks, in one process: each trigger is rebuilt from its JSON
kwargs and run as an asyncio task until its first event. The emulator runs in its own process with its
quotas on (getReport: 2 per second, burst 15); the reports are created beforehand with quotas off
(createReport allows one a minute). Modes:

* poll: ``ReportProcessingTrigger`` (poll_interval 30 s, the operator's default);
* notification: ``ReportNotificationTrigger`` on an SQS queue of a moto_server the emulator publishes
  REPORT_PROCESSING_FINISHED to (fallback poll 900 s, the default).

Measured: the longest stall of the event loop (a 10 ms heartbeat task's lateness), the process's RSS
before the waits and at its peak (sampled every 0.2 s, and VmHWM), events per trigger (exactly one
each, read to the generator's end), the emulator's 429 answers, and the detection latency: from the
report's processingEndTime (DONE at the emulator) to its event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- triggers:begin -->", "<!-- triggers:end -->"
REPORT_TYPE = "GET_MERCHANT_LISTINGS_ALL_DATA"
US = "ATVPDKIKX0DER"
# The emulator's built-in application and seller.
CREDENTIALS = {"client_id": "emulator-client-id", "client_secret": "emulator-client-secret",
               "refresh_token": "Atzr|emulator-refresh-token"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.1)


def rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def emulator_call(base: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method="POST" if body is not None else "GET",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


async def create_reports(base: str, count: int) -> list[str]:
    """Plain HTTP calls, not the client: its bucket keeps to createReport's quota (one a minute), and the
    emulator's rate header would restore it however the client were scaled."""
    import httpx

    emulator_call(base, "/_emulator/config", {"enforce_quotas": False})
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        token = (await http.post("/auth/o2/token", data={"grant_type": "refresh_token", **CREDENTIALS})).json()
        headers = {"x-amz-access-token": token["access_token"]}
        report_ids = []
        for _ in range(count):
            response = await http.post("/reports/2021-06-30/reports", headers=headers,
                                       json={"reportType": REPORT_TYPE, "marketplaceIds": [US]})
            response.raise_for_status()
            report_ids.append(response.json()["reportId"])
    emulator_call(base, "/_emulator/config", {"enforce_quotas": True})
    return report_ids


async def run_waits(triggers: list) -> dict:
    """Every trigger to its end, with the heartbeat and RSS sampling; the numbers of one mode."""
    stalls: list[float] = []
    peak = [rss_mib()]
    done = asyncio.Event()

    async def heartbeat() -> None:
        # Lateness, and how much of it this process spent on the CPU: on 2 cores shared with the emulator and
        # moto_server, a late tick with little CPU time is the OS running them, not a trigger blocking the loop.
        while not done.is_set():
            before, cpu = time.monotonic(), time.process_time()
            await asyncio.sleep(0.01)
            stalls.append((time.monotonic() - before - 0.01, before - started, time.process_time() - cpu))

    async def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib())
            await asyncio.sleep(0.2)

    async def one(trigger) -> list[tuple[float, dict]]:
        return [(time.time(), event.payload) async for event in trigger.run()]

    gc_pauses: list[tuple[float, float, int]] = []  # (seconds, at, generation): the collector stops the loop too
    gc_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.monotonic()
        else:
            gc_pauses.append((time.monotonic() - gc_started[0], gc_started[0] - started, info["generation"]))

    started = time.monotonic()
    gc.callbacks.append(on_gc)
    beat, sampler = asyncio.create_task(heartbeat()), asyncio.create_task(sample())
    tasks = []
    for trigger in triggers:
        # As Airflow's TriggerRunner.create_triggers starts them: one task each, yielding in between.
        tasks.append(asyncio.create_task(one(trigger)))
        await asyncio.sleep(0)
    results = await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    done.set()
    await asyncio.gather(beat, sampler)
    gc.callbacks.remove(on_gc)
    return {"results": results, "stalls": stalls, "gc_pauses": gc_pauses, "peak_rss": max(peak[0], rss_mib()),
            "elapsed": elapsed}


def summarize(mode: str, waits: int, base: str, before_rss: float, run: dict, stats_before: dict) -> dict:
    stats = emulator_call(base, "/_emulator/stats")
    events = [events for events in run["results"]]
    latencies = []
    for received in events:
        if len(received) == 1 and received[0][1].get("status") == "terminal":
            report = received[0][1]["report"]
            end = datetime.fromisoformat(report["processingEndTime"].replace("Z", "+00:00")).timestamp()
            latencies.append(received[0][0] - end)
    by_status = stats["by_operation_status"]
    before_status = stats_before.get("by_operation_status", {})

    def count(op: str, status: str) -> int:
        return by_status.get(op, {}).get(status, 0) - before_status.get(op, {}).get(status, 0)

    latencies.sort()
    return {
        "mode": mode,
        "waits": waits,
        "one_terminal_event_each": sum(1 for e in events if len(e) == 1 and e[0][1]["status"] == "terminal"),
        "other_event_counts": sorted({len(e) for e in events} - {1}),
        "max_stall_s": max(run["stalls"])[0] if run["stalls"] else 0.0,
        "max_stall_at_s": max(run["stalls"])[1] if run["stalls"] else 0.0,
        "max_stall_cpu_s": max(run["stalls"])[2] if run["stalls"] else 0.0,
        "stalls_over_50ms": sum(1 for stall, _, _ in run["stalls"] if stall > 0.05),
        "longest_gc_pause": max(run["gc_pauses"], default=(0.0, 0.0, 0)),
        "rss_before_mib": before_rss,
        "rss_peak_mib": run["peak_rss"],
        "vmhwm_mib": rss_mib("VmHWM"),
        "per_wait_mib": (run["peak_rss"] - before_rss) / waits,
        "get_report_calls": sum(by_status.get("getReport", {}).values())
        - sum(before_status.get("getReport", {}).values()),
        "responses_429": sum(count(op, "429") for op in by_status),
        "latency_median_s": statistics.median(latencies) if latencies else None,
        "latency_p95_s": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
        "latency_max_s": latencies[-1] if latencies else None,
        "elapsed_s": run["elapsed"],
    }


async def bench_mode(mode: str, waits: int, base: str, queue_url: str | None) -> dict:
    from support_rebuild import rebuilt  # noqa: E402 - tiny helper below, kept out of the timed part

    from sp_reports.triggers.notifications import ReportNotificationTrigger
    from sp_reports.triggers.reports import ReportProcessingTrigger

    report_ids = await create_reports(base, waits)
    stats_before = emulator_call(base, "/_emulator/stats")
    deadline = time.time() + 6 * 3600
    if mode == "poll":
        triggers = [rebuilt(ReportProcessingTrigger(rid, poll_interval=30.0, deadline=deadline)) for rid in report_ids]
    else:
        triggers = [rebuilt(ReportNotificationTrigger(rid, queue_url=queue_url, fallback_poll_interval=900.0,
                                                      deadline=deadline)) for rid in report_ids]
    before = rss_mib()
    run = await run_waits(triggers)
    return summarize(mode, waits, base, before, run, stats_before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--mode", default="poll,notification")
    parser.add_argument("--processing-seconds", type=float, default=60.0)
    parser.add_argument("--update-doc", action="store_true")
    args = parser.parse_args()
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]

    workdir = Path(tempfile.mkdtemp(prefix="sp-reports-bench-triggers-"))
    os.environ.setdefault("AIRFLOW_HOME", str(workdir / "airflow"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    (workdir / "support_rebuild.py").write_text(
        "import json\nfrom airflow.sdk.module_loading import import_string\n\n"
        "def rebuilt(trigger):\n    path, kwargs = trigger.serialize()\n"
        "    return import_string(path)(**json.loads(json.dumps(kwargs)))\n"
    )
    sys.path.insert(0, str(workdir))
    procs: list[subprocess.Popen] = []
    started = time.monotonic()
    cleanup = contextlib.ExitStack()
    try:
        moto_url = None
        if "notification" in modes:
            moto = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server"
            moto_port = free_port()
            moto_url = f"http://127.0.0.1:{moto_port}"
            procs.append(subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(moto_port)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_until_up(moto_url, procs[-1], "moto_server")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "sp_reports.cli", "emulator", "--port", str(port),
                   "--processing-seconds", str(args.processing_seconds), "--rows-per-report", "1"]
        if moto_url:
            command += ["--sqs-endpoint", moto_url]
        procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env={**os.environ, "AWS_ACCESS_KEY_ID": "testing",
                                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}))
        wait_until_up(base + "/_emulator/stats", procs[-1], "the emulator")
        os.environ["AIRFLOW_CONN_SELLING_PARTNER_DEFAULT"] = json.dumps({
            "conn_type": "selling_partner", "login": CREDENTIALS["client_id"], "password": CREDENTIALS["client_secret"],
            "extra": {"refresh_token": CREDENTIALS["refresh_token"], "endpoint": base,
                      "lwa_endpoint": base + "/auth/o2/token"}})

        import logging

        import structlog

        from sp_reports.triggers import notifications, reports  # noqa: F401 - imported before the baseline

        # A triggerer writes each trigger's lines to its log file; here they would only be console noise.
        logging.disable(logging.INFO)
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

        results = []
        for mode in modes:
            queue_url = None
            if mode == "notification":
                from sp_reports.client import SellingPartnerClient, ensure_report_notifications
                from sp_reports.emulator.testing import sqs_queue

                os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({
                    "conn_type": "aws", "login": "testing", "password": "testing",
                    "extra": {"endpoint_url": moto_url, "region_name": "us-east-1"}})
                queue = cleanup.enter_context(sqs_queue(moto_url))
                queue_url = queue.url
                with SellingPartnerClient(__import__("sp_reports.client", fromlist=["Credentials"]).Credentials(
                        **CREDENTIALS), endpoint=base, lwa_endpoint=base + "/auth/o2/token") as client:
                    ensure_report_notifications(client, queue.arn)
            print(f"[{mode}] {args.waits} waits ...", flush=True)
            result = asyncio.run(bench_mode(mode, args.waits, base, queue_url))
            print(json.dumps(result, indent=2), flush=True)
            results.append(result)
    finally:
        cleanup.close()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    ok = all(r["one_terminal_event_each"] == r["waits"] and not r["other_event_counts"] for r in results)
    if args.update_doc:
        update_doc(results, args, time.monotonic() - started)
    return 0 if ok else 1


def update_doc(results: list[dict], args, seconds: float) -> None:
    import deltalake  # noqa: F401 - only for its version line, as in bench_landing

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    lines = [
        BEGIN,
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `make bench` (`benchmarks/bench_triggers.py "
        f"--waits {args.waits} --mode {args.mode} --processing-seconds {args.processing_seconds:g}`), "
        f"{seconds / 60:.1f} min in all. Machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}.",
        "",
        "| mode | waits | one terminal event each | longest loop stall (at, CPU of ours) | longest GC pause (at) | RSS before | RSS peak | per wait | "
        "getReport calls | 429s | detection latency median / p95 / max | wall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lat = " / ".join(f"{r[k]:.0f} s" if r[k] is not None else "-"
                         for k in ("latency_median_s", "latency_p95_s", "latency_max_s"))
        lines.append(f"| {r['mode']} | {r['waits']} | {r['one_terminal_event_each']} | {r['max_stall_s'] * 1000:.0f} ms ({r['max_stall_at_s']:.0f} s, {r['max_stall_cpu_s'] * 1000:.0f} ms CPU) | "
                     f"{r['longest_gc_pause'][0] * 1000:.0f} ms ({r['longest_gc_pause'][1]:.0f} s) | "
                     f"{r['rss_before_mib']:.0f} MiB | {r['rss_peak_mib']:.0f} MiB | {r['per_wait_mib'] * 1024:.0f} KiB | "
                     f"{r['get_report_calls']} | {r['responses_429']} | {lat} | {r['elapsed_s']:.0f} s |")
    lines.append(END)
    text = DOC.read_text()
    block = "\n".join(lines)
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text += "\n" + block + "\n"
    DOC.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
