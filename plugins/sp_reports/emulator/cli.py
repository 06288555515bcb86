"""`sp-reports emulator`: serve the SP-API emulator with uvicorn."""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys

from .config import EmulatorConfig

log = logging.getLogger("sp_reports.emulator")

# CLI flag -> EmulatorConfig field, for the knobs that are plain numbers.
NUMERIC_FLAGS = {
    "speed": float,
    "processing_seconds": float,
    "rows_per_report": int,
    "seed": int,
    "rate_429": float,
    "rate_5xx": float,
    "fatal_rate": float,
    "cancel_rate": float,
    "truncate_rate": float,
    "slow_rate": float,
    "token_ttl_seconds": float,
    "url_ttl_seconds": float,
    "notification_duplicate_rate": float,
    "notification_drop_rate": float,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind; 0 picks a free one (default 8000)")
    for name, kind in NUMERIC_FLAGS.items():
        default = getattr(EmulatorConfig, name)
        parser.add_argument(
            "--" + name.replace("_", "-"), dest=name, type=kind, default=default, help=f"default {default}"
        )
    parser.add_argument("--no-quotas", action="store_true", help="do not enforce the usage-plan quotas")
    parser.add_argument("--no-gzip", action="store_true", help="serve documents uncompressed")
    parser.add_argument(
        "--outcome",
        action="append",
        default=[],
        metavar="REPORT_TYPE=STATUS",
        help="force the final status (DONE, FATAL or CANCELLED) of a report type; repeatable",
    )
    parser.add_argument(
        "--sqs-endpoint", dest="sqs_endpoint_url", metavar="URL",
        help="SQS endpoint notifications are sent to, e.g. a moto_server URL (default: AWS's SQS)",
    )  # fmt: skip
    parser.add_argument(
        "--settlement-period", dest="settlement_period_seconds", type=float, metavar="SECONDS",
        help="create a settlement report per settlement marketplace every SECONDS (scaled by --speed; default off)",
    )  # fmt: skip
    parser.add_argument(
        "--settlement-marketplaces", metavar="IDS",
        help="comma-separated marketplace ids of the settlements (default ATVPDKIKX0DER)",
    )  # fmt: skip
    parser.add_argument(
        "--config-json",
        help='further EmulatorConfig fields as a JSON object, e.g. {"sellers": [{"seller_id": "A1SELLER", '
        '"region": "NA", "refresh_token": "Atzr|...", "marketplace_ids": ["ATVPDKIKX0DER"]}]}',
    )


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    values = {name: getattr(args, name) for name in NUMERIC_FLAGS}
    outcomes = {}
    for item in args.outcome:
        report_type, _, status = item.partition("=")
        outcomes[report_type] = status
    values.update(outcomes=outcomes, enforce_quotas=not args.no_quotas, gzip_documents=not args.no_gzip)
    values.update(sqs_endpoint_url=args.sqs_endpoint_url, settlement_period_seconds=args.settlement_period_seconds)
    if args.settlement_marketplaces:
        values["settlement_marketplace_ids"] = [m.strip() for m in args.settlement_marketplaces.split(",") if m.strip()]
    return EmulatorConfig().updated({**values, **json.loads(args.config_json or "{}")})


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    try:
        config = build_config(args)
    except ValueError as error:
        print(f"sp-reports emulator: invalid configuration: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as error:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, error)
        sock.close()
        return 1
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    log.info(
        "SP-API emulator listening on %s (LWA %s/auth/o2/token, speed %g, seed %d)", url, url, config.speed, config.seed
    )
    if config.sellers:
        log.info(
            "regional endpoints %s/na, %s/eu, %s/fe; sellers: %s", url, url, url,
            ", ".join(f"{a.seller_id} ({a.region}: {','.join(a.marketplace_ids)})" for a in config.authorisations()),
        )  # fmt: skip
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    # lifespan is off, so the ticker (schedules, settlements, notifications) is started here.
    app.state.emulator.start_ticker()
    try:
        server.run(sockets=[sock])
    finally:
        app.state.emulator.stop_ticker()
    return 0
