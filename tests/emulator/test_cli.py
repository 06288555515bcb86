"""`sp-reports emulator` command."""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time

import httpx

from sp_reports.emulator import cli


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_map_to_config():
    args = _parse(
        "--port", "0", "--speed", "50", "--processing-seconds", "1.5", "--rows-per-report", "7", "--seed", "3",
        "--rate-429", "0.1", "--rate-5xx", "0.05", "--fatal-rate", "0.2", "--cancel-rate", "0.1",
        "--truncate-rate", "0.01", "--outcome", "GET_MERCHANT_LISTINGS_ALL_DATA=FATAL", "--no-quotas",
        "--config-json", '{"url_ttl_seconds": 60}',
    )  # fmt: skip
    config = cli.build_config(args)
    assert (config.speed, config.processing_seconds, config.rows_per_report, config.seed) == (50.0, 1.5, 7, 3)
    assert (config.rate_429, config.rate_5xx, config.fatal_rate, config.cancel_rate) == (0.1, 0.05, 0.2, 0.1)
    assert config.truncate_rate == 0.01 and config.url_ttl_seconds == 60.0
    assert config.outcomes == {"GET_MERCHANT_LISTINGS_ALL_DATA": "FATAL"}
    assert config.enforce_quotas is False
    defaults = cli.build_config(_parse())
    assert defaults.speed == 1.0 and defaults.enforce_quotas is True


def test_invalid_config_exits_with_2(capsys):
    assert cli.run(_parse("--fatal-rate", "2")) == 2
    assert "fatal_rate must be between 0 and 1" in capsys.readouterr().err


def test_command_serves_and_logs_its_url():
    process = subprocess.Popen(
        [sys.executable, "-m", "sp_reports.cli", "emulator", "--port", "0", "--speed", "50", "--seed", "9"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        url = match.group(1)
        deadline = time.monotonic() + 5
        while True:
            try:
                config = httpx.get(url + "/_emulator/config").json()
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert (config["speed"], config["seed"]) == (50.0, 9)
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status reports it.
        assert process.wait(timeout=5) in (0, -signal.SIGTERM)
        assert "Traceback" not in process.stderr.read()
        process.stderr.close()
