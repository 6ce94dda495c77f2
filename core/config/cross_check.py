"""Checks that span several sections: ids unique across the site, references resolve,
ports distinct. One place, so each section's model stays about itself."""

from __future__ import annotations

from crowdwatch.config.fields import Loc
from crowdwatch.config.model import CrowdwatchConfig
from crowdwatch.config.site import ZoneConfig


def cross_check(config: CrowdwatchConfig) -> list[tuple[tuple, str]]:
    """Checks that span several sections: ids unique, references resolve."""
    found: list[tuple[tuple, str]] = []
    seen_cams: set[str] = set()
    seen_zones: set[str] = set()
    seen_lines: set[str] = set()
    for ci, cam in enumerate(config.cameras):
        if cam.id in seen_cams:
            found.append((("cameras", ci, "id"), f"duplicate camera id {cam.id!r}"))
        seen_cams.add(cam.id)
        needs_size = cam.detector.needs_person_size(cam)
        for zi, zone in enumerate(cam.zones):
            if needs_size and zone.height_ref is None and zone.ground is None:
                found.append((("cameras", ci, "zones", zi), f"zone {zone.id!r} gives no person "
                              f"size: the {cam.detector.kind} detector needs height_ref "
                              "(standing people's foot and head pixels) or ground"))
            if zone.id in seen_zones:
                found.append((("cameras", ci, "zones", zi, "id"), f"duplicate zone id {zone.id!r}"))
            seen_zones.add(zone.id)
            found += _line_problems(("cameras", ci, "zones", zi), zone, seen_lines)
    for zi, szone in enumerate(config.sensors.zones):
        if szone.id in seen_zones:
            found.append((("sensors", "zones", zi, "id"), f"duplicate zone id {szone.id!r}"))
        seen_zones.add(szone.id)
    sensor_ids: set[str] = set()
    for di, dev in enumerate(config.sensors.devices):
        if dev.id in sensor_ids:
            found.append((("sensors", "devices", di, "id"), f"duplicate sensor id {dev.id!r}"))
        sensor_ids.add(dev.id)
        if dev.zone is not None and dev.zone not in seen_zones:
            found.append((("sensors", "devices", di, "zone"), f"no zone with id {dev.zone!r}"))
    for di, dev in enumerate(config.sensors.devices):
        if dev.id in seen_cams:
            found.append((("sensors", "devices", di, "id"),
                          f"sensor id {dev.id!r} is also a camera's id: alerts, logs and "
                          "dashboards would not say which one is silent; rename one"))
    sensor_http = config.sensors.http
    if sensor_http is not None and sensor_http.port and sensor_http.port == config.metrics.port:
        found.append((("sensors", "http", "port"), f"port {sensor_http.port} is also "
                      "metrics.port: each endpoint needs its own port"))
    ports = {"metrics.port": config.metrics.port,
             "sensors.http.port": sensor_http.port if sensor_http is not None else 0}
    for name, port in ports.items():
        if config.console.port and config.console.port == port:
            found.append((("console", "port"), f"port {port} is also {name}: each endpoint "
                          "needs its own port"))
    rule_ids: dict[str, int] = {}
    for ri, rule in enumerate(config.rules):
        rid = rule.rule_id()
        if rid in rule_ids:
            found.append((("rules", ri, "id") if rule.id else ("rules", ri),
                          f"rule id {rid!r} is also rules[{rule_ids[rid]}]'s (same kind, "
                          "target and levels): give one of them its own `id`"))
        rule_ids.setdefault(rid, ri)
    found += [(("rules", ri, *loc), msg) for ri, rule in enumerate(config.rules)
              for loc, msg in rule.problems(config)]
    return found


def _line_problems(at: Loc, zone: ZoneConfig, seen: set[str]) -> list[tuple[tuple, str]]:
    """A zone's lines need its ground plane (metres) and site-unique ids."""
    found: list[tuple[tuple, str]] = []
    for li, line in enumerate(zone.lines):
        if zone.ground is None:
            found.append(((*at, "lines", li), f"line {line.id!r} needs zone {zone.id!r} to "
                          "have `ground` (a line's flow is per metre)"))
        if line.id in seen:
            found.append(((*at, "lines", li, "id"), f"duplicate line id {line.id!r}"))
        seen.add(line.id)
    return found

