"""`config check`: validate a site file and say what it holds; `config schema`: the JSON
Schema editors check site files against."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
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


def cmd_config_schema(args: argparse.Namespace) -> int:
    from crowdwatch.config.reference import reference_markdown
    from crowdwatch.config.schema import site_schema

    text = (reference_markdown() if args.markdown else
            json.dumps(site_schema(), indent=2, ensure_ascii=False) + "\n")
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        what = "configuration reference" if args.markdown else "site-file schema"
        print(f"wrote the {what} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: Any) -> None:
    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a config file (exit 2 on problems)")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)
    schema = config_sub.add_parser(
        "schema", help="print the JSON Schema of site files (every rule and detector kind "
        "registered, plug-ins included) for editors to complete and check them")
    schema.add_argument("-o", "--output", help="write it to this file instead of stdout")
    schema.add_argument("--markdown", action="store_true", help="the same as a Markdown "
                        "reference page (docs/config-reference.md) instead of JSON")
    schema.set_defaults(func=cmd_config_schema)
