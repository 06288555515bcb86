"""The ``sp-reports`` command: ``emulator`` runs the local SP-API emulator; ``land`` replays a raw
document into the lake exactly as the DAG would, and prints the landing's manifest as JSON; ``lake
migrate`` brings a lake of the single-seller layout to the seller-keyed one."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sp-reports", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from sp_reports.emulator import cli as emulator_cli

    emulator_cli.add_arguments(sub.add_parser("emulator", help="run the local SP-API emulator"))
    add_land_arguments(sub.add_parser("land", help="land a raw report document (gzip or not) into the lake"))
    lake_commands = sub.add_parser("lake", help="lake administration").add_subparsers(
        dest="lake_command", required=True
    )
    add_migrate_arguments(
        lake_commands.add_parser(
            "migrate",
            help="add selling_partner_id to a lake written before reports were keyed by seller (idempotent)",
        )
    )

    args = parser.parse_args(argv)
    if args.command == "emulator":
        return emulator_cli.run(args)
    if args.command == "lake":
        return migrate(args)
    return land(args)


def add_land_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the document as Amazon served it (gzip or plain)")
    parser.add_argument("--report-type", required=True, help="a report type from the registry")
    parser.add_argument("--marketplace-id", required=True, help="the marketplace the document is for")
    parser.add_argument(
        "--selling-partner-id",
        required=True,
        help="the seller the report is of (e.g. A3EMULATORSELLER): a reportId is unique only per seller",
    )
    parser.add_argument(
        "--content-type",
        default=None,
        help='the Content-Type Amazon sent, e.g. "text/plain;charset=Cp1252" (charset matters)',
    )
    _add_lake_argument(parser)
    parser.add_argument(
        "--report-id",
        default=None,
        help="the report's id (default: derived from the file's sha256, so a replay is idempotent)",
    )
    parser.add_argument(
        "--created-time",
        default=None,
        help="the report's createdTime (ISO 8601; default now); the latest report wins merges",
    )
    parser.add_argument(
        "--registry",
        default=None,
        help="the report-type registry (default $SP_REPORTS_REGISTRY, else the packaged one)",
    )


def _add_lake_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lake",
        default=None,
        help="lake root: a folder or s3://bucket/prefix (default $SP_REPORTS_LAKE, else $AIRFLOW_HOME/lake); "
        "S3 credentials come from the usual AWS_* environment variables",
    )


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--selling-partner-id",
        required=True,
        help="the seller every report already in the lake is of (Amazon's seller id, e.g. A3EMULATORSELLER)",
    )
    _add_lake_argument(parser)


def migrate(args: argparse.Namespace) -> int:
    from sp_reports.lake import Lake
    from sp_reports.lake.migrate import migrate_lake
    from sp_reports.settings import SettingsError, settings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        lake_root = args.lake or settings().lake
    except SettingsError as exc:
        return _fail(str(exc), "lake migrate")
    try:
        report = migrate_lake(Lake(lake_root, storage_options=_aws_options_from_env()), args.selling_partner_id)
    except (ValueError, OSError) as exc:
        return _fail(str(exc), "lake migrate")
    json.dump(dataclasses.asdict(report), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def land(args: argparse.Namespace) -> int:
    from sp_reports.columns import selling_partner_id
    from sp_reports.lake import Lake
    from sp_reports.lake.legacy import LegacyLakeError
    from sp_reports.parsing import DocumentParseError
    from sp_reports.payloads import FinishedReport
    from sp_reports.pipeline import AccountingError, land_raw_document, store_raw_document
    from sp_reports.registry import RegistryError, load_registry
    from sp_reports.settings import SettingsError, settings

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        registry = load_registry(args.registry)
        lake_root = args.lake or settings().lake
    except (RegistryError, SettingsError) as exc:
        return _fail(str(exc))
    report = registry.get(args.report_type)
    if report is None:
        return _fail(f"unknown report type {args.report_type!r}; the registry has: {', '.join(sorted(registry))}")
    if not args.file.is_file():
        return _fail(f"no such file: {args.file}")
    try:
        seller = selling_partner_id(args.selling_partner_id)
    except ValueError as exc:
        return _fail(str(exc))

    lake = Lake(lake_root, storage_options=_aws_options_from_env())
    sha256 = _sha256(args.file)
    report_id = args.report_id or f"replay-{sha256[:16]}"
    finished: FinishedReport = {
        "selling_partner_id": seller,
        "selling_partner_conn_id": "",  # a replay: no connection fetched it
        "report_id": report_id,
        "report_type": report.report_type,
        "processing_status": "DONE",
        "report_document_id": f"replay-{sha256[:16]}",
        "marketplace_ids": [args.marketplace_id],
        "data_start_time": None,
        "data_end_time": None,
        "created_time": args.created_time or datetime.now(UTC).isoformat(timespec="seconds"),
        "processing_end_time": None,
        "report_schedule_id": None,
    }
    try:
        with args.file.open("rb") as source:
            fetched = store_raw_document(lake, finished, source, content_type=args.content_type)
        manifest = land_raw_document(lake, fetched, report)
    except (DocumentParseError, AccountingError, LegacyLakeError, OSError) as exc:
        return _fail(f"{args.file}: {exc}")
    json.dump(manifest, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _aws_options_from_env() -> dict[str, str]:
    names = (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ALLOW_HTTP",
    )
    options = {name: os.environ[name] for name in names if os.environ.get(name)}
    if options.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        options.setdefault("AWS_ALLOW_HTTP", "true")
    return options


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fail(message: str, command: str = "land") -> int:
    print(f"sp-reports {command}: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
