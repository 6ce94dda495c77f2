"""Entry point: parse, set up logging, dispatch; map domain errors to exit status 2.

Only :class:`~crowdwatch.errors.CrowdwatchError` (a config, source, model or usage
problem the user can fix) becomes a one-line message and exit 2. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from crowdwatch.cli import config_cmd, counting, dashboards_cmd, offline, run
from crowdwatch.config import ConfigFileError
from crowdwatch.errors import CrowdwatchError
from crowdwatch.logs import setup_logging

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch",
        description="Crowd-safety monitor: counts and densities per zone, alerts, metrics. "
        "Counts crowds; never identifies people.",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument("--log-format", default="logfmt", choices=["logfmt", "json"])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (run, offline, config_cmd, counting, dashboards_cmd):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        return int(args.func(args))
    except CrowdwatchError as exc:
        print(exc if isinstance(exc, ConfigFileError) else f"crowdwatch: {exc}",
              file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
