"""The console's cost: 50 zones updating every second, the live page open in a browser.

Measured side by side in one run, the bench process pinned to one core:
- baseline: the LiveView fed 50 zone updates a second (what the pipeline does anyway);
- console: the same, plus the console server pushing to a headless Chromium (Debian's)
  showing the live page.
Prints one JSON object: the server's extra CPU as % of one core (console minus baseline,
from this process's CPU time) and the browser's CPU as % of one core (its whole process
tree, from /proc), over the same wall time. Goal (#12): the live page under 5 % of one
core with 50 zones updating every second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import threading
import time
from pathlib import Path

from benchutil import pin_one_core

from crowdwatch.config import ConsoleConfig, CrowdwatchConfig
from crowdwatch.console.live import LiveView
from crowdwatch.console.server import ConsoleServer
from crowdwatch.progress import Progress
from crowdwatch.streams.rules.registry import rule_series

TICKS = os.sysconf("SC_CLK_TCK")


def site(zones: int) -> CrowdwatchConfig:
    cameras = [{"id": f"cam-{i}", "url": "sim://steady",
                "zones": [{"id": f"zone-{i}", "polygon": [[0, 0], [10, 0], [10, 10]]}]}
               for i in range(zones)]
    rules = [{"kind": "count", "zone": f"zone-{i}", "warn": 40, "critical": 60}
             for i in range(zones)]
    return CrowdwatchConfig.model_validate({"site": {"name": "bench"}, "cameras": cameras,
                                            "rules": rules})


def feed(live: LiveView, zones: int, stop: threading.Event) -> None:
    """Every zone gets a new count once a second (a wave, so levels change too)."""
    n = 0
    while not stop.wait(1.0):
        now = time.time()
        for i in range(zones):
            live.zone_value(f"zone-{i}", now, 35 + 30 * math.sin(n / 10 + i), None)
        live.expected({f"zone-{i}": {"usual": 30.0, "forecast": 33.0} for i in range(zones)})
        n += 1


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        stats[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def phase(live: LiveView, zones: int, seconds: float, bar: Progress, done: float) -> float:
    """Process CPU seconds spent while the feeder runs ``seconds``."""
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(live, zones, stop), daemon=True)
    cpu = time.process_time()
    feeder.start()
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        time.sleep(1.0)
        bar.update(round(done + time.monotonic() - started))
    stop.set()
    feeder.join()
    return time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zones", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    pin_one_core()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    config = site(args.zones)
    live = LiveView(config, rule_series(config), 1800.0)
    bar = Progress(round(2 * args.seconds), "bench_console")
    baseline = phase(live, args.zones, args.seconds, bar, 0)
    server = ConsoleServer(ConsoleConfig(port=0), live, env={})
    server.start()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1920,1080", "--disable-gpu"):
        options.add_argument(arg)
    service = Service(shutil.which("chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.get(server.url)
        time.sleep(3.0)  # first paint, the stream open
        browser_root = service.process.pid
        browser_before = tree_cpu(browser_root)
        wall = time.monotonic()
        console = phase(live, args.zones, args.seconds, bar, args.seconds)
        wall = time.monotonic() - wall
        browser = tree_cpu(browser_root) - browser_before
        tiles = driver.execute_script("return document.querySelectorAll('article.zone').length")
        connected = driver.execute_script("return document.body.dataset.connected")
    finally:
        driver.quit()
        server.stop()
        bar.close()
    print(json.dumps({
        "zones": args.zones, "seconds": round(wall, 1), "tiles_shown": tiles,
        "page_connected": connected,
        "baseline_cpu_pct_of_core": round(100 * baseline / args.seconds, 2),
        "with_console_cpu_pct_of_core": round(100 * console / wall, 2),
        "console_server_cpu_pct_of_core": round(100 * (console - baseline) / wall, 2),
        "browser_cpu_pct_of_core": round(100 * browser / wall, 2),
        "goal_pct_of_core": 5.0,
    }, indent=2))


if __name__ == "__main__":
    main()
