"""The ``sp-reports`` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sp-reports", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from sp_reports.emulator import cli as emulator_cli

    emulator_cli.add_arguments(sub.add_parser("emulator", help="run the local SP-API emulator"))

    args = parser.parse_args(argv)
    if args.command == "emulator":
        return emulator_cli.run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
