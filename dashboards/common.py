"""What every crowdwatch dashboard shares: the datasource, the site/zone/camera
variables, threshold colours from the config's levels, and panel and query helpers."""


from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import (
    prometheus,
    timeseries,
)
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    AnnotationTarget,
    Dashboard,
    DashboardLink,
    QueryVariable,
    ThresholdsConfig,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.streams.rules.registry import rule_series

DATASOURCE_UID = "crowdwatch-prometheus"
DS = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
SITE = 'site=~"$site"'
ZONE = 'zone=~"$zone"'
CAMERA = 'camera=~"$camera"'
UIDS = {"overview": "crowdwatch-overview", "zone": "crowdwatch-zone",
        "operations": "crowdwatch-operations"}


@dataclass(frozen=True)
class Levels:
    warn: float
    critical: float | None


def levels(config: CrowdwatchConfig, kind: str) -> Levels | None:
    """The tightest configured levels of one rule kind (colours for multi-zone panels)."""
    levels = [(s.severity, level) for s in rule_series(config)
              if s.rule == kind and (level := s.threshold) is not None]
    warn = [level for severity, level in levels if severity == "warning"]
    if not warn:
        return None
    crit = [level for severity, level in levels if severity == "critical"]
    return Levels(min(warn), min(crit) if crit else None)


def two_steps(below: str, at: float, above: str) -> ThresholdsConfig:
    """One colour under ``at``, another from it up (stat panels: fine / look here)."""
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=None, color=below), Threshold(value=at, color=above)])


def thresholds(lv: Levels | None) -> ThresholdsConfig:
    steps = [Threshold(value=None, color="green")]
    if lv is not None:
        steps.append(Threshold(value=lv.warn, color="orange"))
        if lv.critical is not None:
            steps.append(Threshold(value=lv.critical, color="red"))
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def query(expr: str, legend: str = "", instant: bool = False, ref: str = "A"
          ) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        q = q.legend_format(legend)
    return q.instant() if instant else q.range()


def variable(name: str, label: str, expr: str, multi: bool = True) -> QueryVariable:
    v = (QueryVariable(name).label(label).query(expr).datasource(DS)
         .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC))
    if multi:
        v = v.multi(True).include_all(True).all_value(".*")
    return v


def site_var() -> QueryVariable:
    return variable("site", "Site", "label_values(crowdwatch_build_info, site)")


def zone_var(multi: bool = True) -> QueryVariable:
    return variable("zone", "Zone", f"label_values(crowdwatch_zone_people{{{SITE}}}, zone)", multi)


def camera_var() -> QueryVariable:
    return variable("camera", "Camera", f"label_values(crowdwatch_camera_up{{{SITE}}}, camera)")


def links() -> list[Any]:
    return [DashboardLink("crowdwatch").type(DashboardLinkType.DASHBOARDS).tags(["crowdwatch"])
            .as_dropdown(True).include_vars(True).keep_time(True)]


def alert_annotation() -> AnnotationQuery:
    """Alert start and end, from the 0/1 alert gauge's changes."""
    return (AnnotationQuery().name("crowdwatch alerts").datasource(DS).enable(True)
            .icon_color("red")
            .expr(f"changes(crowdwatch_alert_active{{{SITE}, {ZONE}}}[1m]) > 0"))


def grafana_annotation() -> AnnotationQuery:
    """Alert regions written by the Grafana annotation sink (tags crowdwatch + zone)."""
    target = AnnotationTarget().tags(["crowdwatch", "zone:$zone"]).match_any(False).limit(500)
    target._internal.type_val = "tags"  # the builder has no setter for the query type
    return (AnnotationQuery().name("crowdwatch alert regions").enable(True).icon_color("orange")
            .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --")).target(target))


def dashboard(key: str, title: str, description: str, config: CrowdwatchConfig,
              variables: list[QueryVariable]) -> Dashboard:
    """What every crowdwatch dashboard shares: uid, tag, refresh, time, links, variables."""
    d = (Dashboard(title).uid(UIDS[key]).tags(["crowdwatch"]).description(description)
         .refresh("10s").time("now-1h", "now").timezone(config.site.timezone).links(links()))
    for v in variables:
        d = d.with_variable(v)
    return d


def series_panel(title: str, span: int, *targets: prometheus.Dataquery,
                 unit: str = "none") -> timeseries.Panel:
    """A time series of non-negative quantities (rates, counts, lag)."""
    panel = timeseries.Panel().title(title).height(8).span(span).unit(unit).min(0)
    for target in targets:
        panel = panel.with_target(target)
    return panel
