"""`dashboards build|push`: Grafana dashboards as code."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from crowdwatch.cli.common import load_site
from crowdwatch.errors import UsageError


def cmd_dashboards_build(args: argparse.Namespace) -> int:
    from crowdwatch.dashboards.build import write_dashboards

    config = load_site(args.config)
    written = write_dashboards(config, Path(args.out), args.prometheus_url, args.dashboards_path)
    for path in written:
        print(path)
    return 0


def cmd_dashboards_push(args: argparse.Namespace) -> int:
    from crowdwatch.dashboards.build import write_dashboards
    from crowdwatch.dashboards.push import push_dashboards

    token = os.environ.get(args.token_env)
    if not token:
        raise UsageError(f"set {args.token_env} to a Grafana service-account token")
    if args.dir:
        paths = sorted(Path(args.dir, "dashboards").glob("*.json"))
        if not paths:
            raise UsageError(f"no dashboards under {args.dir}/dashboards; run "
                             "`crowdwatch dashboards build` first")
    else:
        tmp = Path(tempfile.mkdtemp(prefix="crowdwatch-dashboards-"))
        written = write_dashboards(load_site(args.config), tmp, "http://prometheus:9090",
                                   "/var/lib/grafana/dashboards/crowdwatch")
        paths = [p for p in written if p.suffix == ".json"]
    try:
        results = push_dashboards(args.url, token, paths, args.folder)
    except Exception as exc:
        print(f"crowdwatch: pushing to {args.url} failed: {exc}", file=sys.stderr)
        return 1
    for path, result in zip(paths, results, strict=True):
        print(f"{path.name}: {result.get('status', 'ok')} {result.get('url', '')}")
    return 0


def register(sub: Any) -> None:
    dash = sub.add_parser("dashboards", help="Grafana dashboards as code")
    dash_sub = dash.add_subparsers(dest="dashboards_command", required=True)
    build = dash_sub.add_parser("build", help="write dashboard JSON and Grafana provisioning")
    build.add_argument("--config", help="crowdwatch config (thresholds); default: the demo")
    build.add_argument("--out", required=True, help="output folder")
    build.add_argument("--prometheus-url", default="http://prometheus:9090",
                       help="URL Grafana uses to reach Prometheus")
    build.add_argument("--dashboards-path", default="/var/lib/grafana/dashboards/crowdwatch",
                       help="where Grafana finds the JSON files (provider path)")
    build.set_defaults(func=cmd_dashboards_build)
    push = dash_sub.add_parser("push", help="create or update the dashboards on a Grafana")
    push.add_argument("--url", required=True, help="Grafana base URL")
    push.add_argument("--dir", help="folder written by `dashboards build` (else build now)")
    push.add_argument("--config", help="crowdwatch config when building now")
    push.add_argument("--folder", default="crowdwatch", help="Grafana folder title")
    push.add_argument("--token-env", default="CROWDWATCH_GRAFANA_TOKEN",
                      help="environment variable holding the token")
    push.set_defaults(func=cmd_dashboards_push)
