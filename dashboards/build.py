"""Grafana dashboards as code (grafana-foundation-sdk), built from the crowdwatch config.

Three dashboards: an operators' overview, a zone detail and an operations view. Queries
filter on ``site``, which Prometheus attaches as a target label (see
deploy/prometheus/prometheus.yml), and on the ``zone`` and ``camera`` variables.
Threshold colours come from the config's rules; the configured levels are also
exported as ``crowdwatch_rule_threshold`` so every zone's lines follow its own rule.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import (
    bargauge,
    geomap,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphTresholdsStyleMode

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.dashboards.common import (
    CAMERA,
    DATASOURCE_UID,
    SITE,
    ZONE,
    alert_annotation,
    camera_var,
    dashboard,
    grafana_annotation,
    levels,
    query,
    series_panel,
    site_var,
    thresholds,
    two_steps,
    zone_var,
)
from crowdwatch.dashboards.operations import operations
from crowdwatch.streams.alerting.plugin import uses_trait
from crowdwatch.streams.rules.kinds.sensor_silent import SensorSilentRuleConfig
from crowdwatch.streams.rules.registry import learns_over_weeks


def overview(config: CrowdwatchConfig) -> Dashboard:
    density = levels(config, "density")
    count = levels(config, "count")
    d = dashboard("overview", "crowdwatch: overview",
                  "Operators' view: zones against their thresholds, alerts, camera health.",
                  config, [site_var(), zone_var(), camera_var()]).annotation(alert_annotation())
    d = d.with_panel(
        bargauge.Panel().title("Zones by density (persons/m²)").height(9).span(12)
        .description("Latest density per zone, highest first; colours at the configured levels.")
        .with_target(query(f"sort_desc(max by (zone) (crowdwatch_zone_density_ppm2{{{SITE}, "
                           f"{ZONE}}}))", "{{zone}}", instant=True))
        .unit("none").decimals(2).min(0).thresholds(thresholds(density)))
    d = d.with_panel(
        bargauge.Panel().title("Zones by people count").height(9).span(12)
        .with_target(query(f"sort_desc(max by (zone) (crowdwatch_zone_people{{{SITE}, {ZONE}}}))",
                           "{{zone}}", instant=True))
        .unit("none").decimals(0).min(0).thresholds(thresholds(count)))
    d = d.with_panel(
        stat.Panel().title("Alerts firing now").height(5).span(6)
        .with_target(query(f"sum(crowdwatch_alert_active{{{SITE}}})", instant=True))
        .thresholds(two_steps("green", 1, "red")))
    d = d.with_panel(
        stat.Panel().title("Cameras up").height(5).span(6)
        .with_target(query(f"sum(crowdwatch_camera_up{{{SITE}, {CAMERA}}})", instant=True)))
    d = d.with_panel(
        stat.Panel().title("Cameras down").height(5).span(6)
        .with_target(query(f"count(crowdwatch_camera_up{{{SITE}, {CAMERA}}} == 0) or vector(0)",
                           instant=True))
        .thresholds(two_steps("green", 1, "red")))
    d = d.with_panel(
        stat.Panel().title("Pipeline last event (s ago)").height(5).span(6)
        .with_target(query(f"time() - max(crowdwatch_last_event_timestamp_seconds{{{SITE}}})",
                           instant=True))
        .unit("s").thresholds(two_steps("green", 30, "red")))
    d = d.with_panel(
        table.Panel().title("Alert states (1 = firing)").height(8).span(12)
        .with_target(query(f"max by (rule, zone, severity) (crowdwatch_alert_active{{{SITE}, "
                           f"{ZONE}}})", instant=True)))
    d = d.with_panel(
        statetimeline.Panel().title("Camera health (1 = up)").height(8).span(12)
        .with_target(query(f"crowdwatch_camera_up{{{SITE}, {CAMERA}}}", "{{camera}}"))
        .thresholds(two_steps("red", 1, "green")))
    d = d.with_panel(
        stat.Panel().title("Zones withheld (camera offline or untrustworthy)").height(5).span(6)
        .description("Their counts are blank and their alerts cannot clear until the camera "
                     "is back (inhibition).")
        .with_target(query(f"sum(crowdwatch_zone_inhibited{{{SITE}, {ZONE}}}) or vector(0)",
                           instant=True))
        .thresholds(two_steps("green", 1, "orange")))
    if config.sensors.devices:
        d = sensor_panels(config, d)
    if any(z.lat is not None and z.lon is not None for c in config.cameras for z in c.zones):
        d = d.with_panel(
            geomap.Panel().title("Zones on the map (density)").height(10).span(24)
            .with_target(query(
                f"max by (zone, lat, lon) (crowdwatch_zone_density_ppm2{{{SITE}, {ZONE}}} "
                f"* on (site, zone) group_left (lat, lon) crowdwatch_zone_info{{lat!=\"\"}})",
                instant=True))
            .thresholds(thresholds(density)))
    return d


def sensor_panels(config: CrowdwatchConfig, d: Dashboard) -> Dashboard:
    """Sensor readings and how long each sensor has been silent (sites with sensors)."""
    silent_after = min((r.after for r in config.rules if isinstance(r, SensorSilentRuleConfig)),
                       default=900.0)
    d = d.with_panel(series_panel(
        "Sensor readings", 12,
        query(f"crowdwatch_sensor_value{{{SITE}}}", "{{sensor}} ({{zone}})")))
    return d.with_panel(
        bargauge.Panel().title("Seconds since each sensor's last reading").height(8).span(12)
        .with_target(query(f"sort_desc(time() - max by (sensor) "
                           f"(crowdwatch_sensor_last_reading_timestamp_seconds{{{SITE}}}))",
                           "{{sensor}}", instant=True))
        .unit("s").min(0).thresholds(two_steps("green", silent_after, "red")))


def zone_detail(config: CrowdwatchConfig) -> Dashboard:
    density = levels(config, "density")
    dashed = GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED)
    d = dashboard("zone", "crowdwatch: zone detail",
                  "One zone: count, density, short-term forecast, levels, alerts.",
                  config, [site_var(), zone_var(multi=False)]).annotation(alert_annotation())
    if uses_trait(config.alerts, "annotates_grafana"):
        d = d.annotation(grafana_annotation())
    people = (timeseries.Panel().title("People in zone").height(9).span(24)
              .with_target(query(f"crowdwatch_zone_people{{{SITE}, {ZONE}}}", "{{zone}}"))
              .unit("none").min(0))
    if levels(config, "count") is not None:  # level lines only where the config has such rules
        people = people.with_target(query(
            f"crowdwatch_rule_threshold{{{SITE}, {ZONE}, rule=\"count\"}}",
            "count {{severity}} level", ref="B"))
    d = d.with_panel(people)
    dens = (timeseries.Panel().title("Density, forecast and levels (persons/m²)").height(10)
            .span(24).description("Forecast: linear trend of the last 2 minutes, 60 s ahead.")
            .with_target(query(f"crowdwatch_zone_density_ppm2{{{SITE}, {ZONE}}}", "{{zone}}"))
            .with_target(query(f"predict_linear(crowdwatch_zone_density_ppm2{{{SITE}, {ZONE}}}"
                               "[2m], 60)", "forecast +60s", ref="B"))
            .unit("none").min(0).thresholds(thresholds(density)).thresholds_style(dashed))
    if density is not None:
        dens = dens.with_target(query(
            f"crowdwatch_rule_threshold{{{SITE}, {ZONE}, rule=\"density\"}}",
            "{{severity}} level", ref="C"))
    d = d.with_panel(dens)
    if learns_over_weeks(config):  # a rule that knows the usual: show it
        d = d.with_panel(usual_panel())
    if config.lines():
        d = dynamics_panels(d)
    d = d.with_panel(
        table.Panel().title("Alerts on this zone (1 = firing)").height(7).span(24)
        .with_target(query(f"max by (rule, severity) (crowdwatch_alert_active{{{SITE}, {ZONE}}})",
                           instant=True)))
    return d


def dynamics_panels(d: Dashboard) -> Dashboard:
    """Speed, flow, crossings and levels of service (sites with counting lines)."""
    d = d.with_panel(series_panel(
        "People crossing the zone's lines (per minute, each way)", 12,
        query(f"60 * rate(crowdwatch_line_crossings_total{{{SITE}, {ZONE}}}[1m])",
              "{{line}} {{direction}}")))
    d = d.with_panel(series_panel(
        "Flow per metre of line (persons/m/min; Fruin E|F at 82)", 12,
        query(f"crowdwatch_line_flow_ppmm{{{SITE}, {ZONE}, direction=\"both\"}}",
              "{{line}}")))
    d = d.with_panel(series_panel(
        "Walking speed (m/s)", 12,
        query(f"crowdwatch_zone_speed_mps{{{SITE}, {ZONE}}}", "{{zone}}"), unit="velocityms"))
    return d.with_panel(series_panel(
        "Level of service (1 = A ... 6 = F)", 12,
        query(f"crowdwatch_zone_level_of_service{{{SITE}, {ZONE}}}", "{{zone}} by density"),
        query(f"crowdwatch_line_level_of_service{{{SITE}, {ZONE}}}", "{{line}} by flow",
              ref="B")))


def usual_panel() -> timeseries.Panel:
    """Now against the zone's usual for this hour of this weekday, the band the unusual
    rule tolerates, and the seasonal forecast (from the rules' time-of-week models)."""
    expected = "crowdwatch_zone_expected{{{site}, {zone}, what=\"{what}\"}}"

    def model(what: str, legend: str, ref: str) -> prometheus.Dataquery:
        return query(expected.format(site=SITE, zone=ZONE, what=what), legend, ref=ref)

    return (timeseries.Panel().title("Now vs usual for this hour, and the seasonal forecast")
            .height(9).span(24).unit("none").min(0)
            .description("Usual: median of this hour on this weekday over past weeks. Band: "
                         "what the unusual rule tolerates. Forecast: the seasonal rule's "
                         "value at its horizon. Empty while the models learn.")
            .with_target(query(f"crowdwatch_zone_people{{{SITE}, {ZONE}}}", "now"))
            .with_target(model("usual", "usual for this hour", "B"))
            .with_target(model("usual_low", "usual band (low)", "C"))
            .with_target(model("usual_high", "usual band (high)", "D"))
            .with_target(model("forecast", "seasonal forecast", "E")))


BUILDERS = {"overview": overview, "zone": zone_detail, "operations": operations}


def build_all(config: CrowdwatchConfig) -> dict[str, dict]:
    """Dashboard JSON models by name."""
    encoder = JSONEncoder(sort_keys=True)
    return {name: json.loads(encoder.encode(fn(config).build())) for name, fn in BUILDERS.items()}


def panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, rows included."""
    out = []
    for panel in dashboard.get("panels", []):
        for sub in [panel, *panel.get("panels", [])]:
            for target in sub.get("targets", []) or []:
                if target.get("expr"):
                    out.append((sub.get("title", ""), target["expr"]))
    return out


def write_provisioning(out: Path, prometheus_url: str, dashboards_path: str) -> list[Path]:
    """Grafana provisioning: the Prometheus datasource and a file dashboard provider."""
    ds_dir = out / "provisioning" / "datasources"
    db_dir = out / "provisioning" / "dashboards"
    ds_dir.mkdir(parents=True, exist_ok=True)
    db_dir.mkdir(parents=True, exist_ok=True)
    datasource = (
        "apiVersion: 1\n"
        "datasources:\n"
        "  - name: crowdwatch Prometheus\n"
        "    type: prometheus\n"
        f"    uid: {DATASOURCE_UID}\n"
        "    access: proxy\n"
        f"    url: {prometheus_url}\n"
        "    isDefault: true\n"
        "    jsonData: {timeInterval: 15s}\n"
    )
    provider = (
        "apiVersion: 1\n"
        "providers:\n"
        "  - name: crowdwatch\n"
        "    folder: crowdwatch\n"
        "    type: file\n"
        "    disableDeletion: true\n"
        "    allowUiUpdates: false\n"
        "    updateIntervalSeconds: 30\n"
        f"    options: {{path: {dashboards_path}}}\n"
    )
    paths = [ds_dir / "crowdwatch.yaml", db_dir / "crowdwatch.yaml"]
    paths[0].write_text(datasource, encoding="utf-8")
    paths[1].write_text(provider, encoding="utf-8")
    return paths


def write_dashboards(config: CrowdwatchConfig, out: Path, prometheus_url: str,
                     dashboards_path: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "dashboards").mkdir(exist_ok=True)
    written = []
    for name, model in build_all(config).items():
        path = out / "dashboards" / f"{name}.json"
        path.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written + write_provisioning(out, prometheus_url, dashboards_path)
