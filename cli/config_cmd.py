"""`config check`: validate a site file and say what it holds."""

from __future__ import annotations

import argparse
from typing import Any

from crowdwatch.config import load_config


def cmd_config_check(args: argparse.Namespace) -> int:
    from crowdwatch.ingest.source_checks import source_problems

    # a ConfigFileError lists every problem with its line, exit 2
    config = load_config(args.file, checks=[source_problems])
    zones = sum(len(c.zones) for c in config.cameras)
    print(f"{args.file}: OK ({len(config.cameras)} camera(s), {zones} zone(s), "
          f"{len(config.rules)} rule(s))")
    return 0


def register(sub: Any) -> None:
    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a config file (exit 2 on problems)")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)
