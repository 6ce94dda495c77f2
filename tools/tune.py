"""Threshold tuning: replay one feed per parameter value and score the alerts against truth.

Truth comes from the feed itself: a *peak* is a stretch where a zone's value stays at
or above the level for at least ``min_peak`` seconds (stretches closer than ``merge``
are one peak). An alert of the tuned rule catches a peak if it is active at some time between
``lookahead`` before the peak starts and the peak's end; its *lead* is how long before
the start it fired (negative: late; capped at ``lookahead``). A firing that catches no
peak is a false alert. Rates are per
zone-day (a sensor-day for sensor zones): days with data, summed over zones.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.errors import UsageError
from crowdwatch.events import Alert, AlertState
from crowdwatch.streams.rules.registry import kinds, specs
from crowdwatch.tools.replay import replay, zone_series_recorder


@dataclass(frozen=True)
class Sweep:
    param: str
    values: list[float]

    @classmethod
    def parse(cls, text: str) -> Sweep:
        """PARAM=START:STOP:STEP (STOP included) or PARAM=V1,V2,..."""
        name, sep, spec = text.partition("=")
        if not sep or not name:
            raise UsageError(f"--sweep {text!r}: expected PARAM=START:STOP:STEP")
        try:
            if ":" in spec:
                start, stop, step = (float(x) for x in spec.split(":"))
                if step <= 0 or stop < start:
                    raise ValueError
                count = round((stop - start) / step) + 1
                values = [round(start + i * step, 10) for i in range(count)]
            else:
                values = [float(x) for x in spec.split(",")]
        except ValueError:
            raise UsageError(f"--sweep {text!r}: START:STOP:STEP must be numbers with "
                             "STEP > 0 and STOP >= START") from None
        return cls(name.replace("-", "_"), values)


def select_rules(config: CrowdwatchConfig, spec: str) -> list[int]:
    """Rule indexes for KIND, KIND:ZONE or #INDEX."""
    if spec.startswith("#"):
        index = int(spec[1:])
        if not 0 <= index < len(config.rules):
            raise UsageError(f"--rule {spec}: the config has {len(config.rules)} rule(s)")
        return [index]
    kind, _, zone = spec.partition(":")
    found = [i for i, r in enumerate(config.rules)
             if r.kind == kind and (not zone or getattr(r, "zone", None) == zone)]
    if not found:
        raise UsageError(f"--rule {spec}: no {kind} rule{' on ' + zone if zone else ''} "
                         "in the config")
    tunable = [name for name, model in kinds().items() if model.watches_zone_values]
    if kind not in tunable:
        raise UsageError(f"--rule {spec}: tune scores {', '.join(sorted(tunable))} rules")
    return found


def with_param(config: CrowdwatchConfig, indexes: list[int], param: str,
               value: float) -> CrowdwatchConfig:
    """A validated copy of the config with ``param`` set on the chosen rules."""
    data = config.model_dump(by_alias=True)
    for i in indexes:
        rule = data["rules"][i]
        key = "for" if param == "for_" else param
        if key not in rule:
            fields = sorted(k for k in rule if k not in ("kind", "zone", "source"))
            raise UsageError(f"--sweep: {rule['kind']} rules have no {param!r}; "
                             f"tunable: {', '.join(fields)}")
        rule[key] = value
    return CrowdwatchConfig.model_validate(data)


@dataclass
class Peak:
    zone: str
    start: float
    end: float
    max_value: float


def find_peaks(series: list[tuple[float, float]], zone: str, level: float, min_peak: float,
               merge: float) -> list[Peak]:
    """Stretches at or above ``level``: consecutive samples and stretches closer than
    ``merge`` are one peak; kept when it lasts ``min_peak`` seconds (first to last sample
    at or above, so a single sample lasts 0)."""
    runs: list[Peak] = []
    dipped = True
    for ts, value in series:
        if value < level:
            dipped = True
            continue
        if runs and (not dipped or ts - runs[-1].end <= merge):
            runs[-1].end, runs[-1].max_value = ts, max(runs[-1].max_value, value)
        else:
            runs.append(Peak(zone, ts, ts, value))
        dipped = False
    return [r for r in runs if r.end - r.start >= min_peak]


@dataclass
class Score:
    value: float
    alerts: int
    alerts_per_day: float
    false_alerts: int
    false_per_day: float
    peaks: int
    caught: int
    missed: int
    caught_ratio: float
    median_lead_s: float | None
    leads: dict[tuple[str, float], float]

    def public(self) -> dict:
        out = dict(vars(self))
        out.pop("leads")
        return out


def zone_days(series: dict[str, list[tuple[float, float]]]) -> float:
    """Days with data, summed over zones (sensor-days)."""
    return float(sum(len({int(ts // 86400) for ts, _ in points})
                     for points in series.values()))


def alert_intervals(alerts: list[Alert]) -> list[tuple[str, float, float]]:
    """(zone, start, end) per firing; still firing at the end of the feed: end = inf."""
    open_: dict[str, Alert] = {}
    out: list[tuple[str, float, float]] = []
    for alert in alerts:
        if alert.state == AlertState.FIRING:
            open_[alert.fingerprint] = alert
        elif alert.fingerprint in open_:
            fired = open_.pop(alert.fingerprint)
            out.append((fired.zone_id, fired.starts_at, alert.ends_at or alert.starts_at))
    out += [(a.zone_id, a.starts_at, float("inf")) for a in open_.values()]
    return sorted(out, key=lambda x: x[1])


def score(alerts: list[Alert], peaks: list[Peak], days: float, lookahead: float,
          value: float) -> Score:
    """A warning catches a peak when it is active somewhere in [start - lookahead, end];
    its lead is start minus when it fired, capped at ``lookahead`` (a warning left on
    for hours is not hours of notice). A warning that catches nothing is false."""
    by_zone: dict[str, list[Peak]] = {}
    for peak in peaks:
        by_zone.setdefault(peak.zone, []).append(peak)
    leads: dict[tuple[str, float], float] = {}
    intervals = alert_intervals(alerts)
    false = 0
    for zone, fired, ended in intervals:
        hits = [p for p in by_zone.get(zone, ()) if fired <= p.end and ended >= p.start
                - lookahead]
        if not hits:
            false += 1
        for hit in hits:
            lead = min(hit.start - fired, lookahead) if fired <= hit.start else hit.start - fired
            key = (hit.zone, hit.start)
            leads[key] = max(leads.get(key, -float("inf")), lead)
    caught = len(leads)
    per_day = 1.0 / days if days else 0.0
    return Score(value, len(intervals), round(len(intervals) * per_day, 4), false,
                 round(false * per_day, 4), len(peaks), caught, len(peaks) - caught,
                 round(caught / len(peaks), 4) if peaks else 0.0,
                 statistics.median(leads.values()) if leads else None, leads)


def truth_level(config: CrowdwatchConfig, indexes: list[int], level: float | None) -> float:
    if level is not None:
        return level
    rule = specs(config)[indexes[0]]
    found = rule.level()
    if found is None:
        raise UsageError(f"{rule.kind} rules have no level; give --level for the truth")
    return found


def tune(config: CrowdwatchConfig, load_events: Callable[[], Any], rule_spec: str,
         sweep: Sweep, level: float | None = None, min_peak: float = 0.0,
         merge: float = 3600.0, lookahead: float | None = None,
         progress: Callable[[int, int], None] | None = None) -> dict:
    """Replay once per sweep value; return the report (truth, per-value scores)."""
    indexes = select_rules(config, rule_spec)
    chosen = [specs(config)[i] for i in indexes]
    zones = {str(getattr(r, "zone", "")) for r in chosen}
    rule = chosen[0]
    truth = truth_level(config, indexes, level)
    events = list(load_events())
    series, recorder = zone_series_recorder(zones, rule.reads() or "count")
    replay(config, events, on_event=recorder)
    peaks = [p for zone in sorted(series)
             for p in find_peaks(series[zone], zone, truth, min_peak, merge)]
    days = zone_days(series)
    scores = []
    for n, value in enumerate(sweep.values):
        swept = with_param(config, indexes, sweep.param, value)
        fingerprints = _fingerprints_of(swept, indexes)
        result = replay(swept, events)
        raised = [a for a in result.alerts if a.fingerprint in fingerprints]
        ahead = lookahead if lookahead is not None else specs(swept)[indexes[0]].lookahead()
        scores.append(score(raised, peaks, days, ahead, value))
        if progress is not None:
            progress(n + 1, len(sweep.values))
    return {"rule": rule_spec, "param": sweep.param, "truth_level": truth,
            "min_peak_s": min_peak, "merge_s": merge,
            "lookahead_s": "horizon" if lookahead is None else lookahead,
            "zones": sorted(zones), "zone_days": days, "peaks": len(peaks),
            "events": len(events), "results": [s.public() for s in scores]}


def _fingerprints_of(config: CrowdwatchConfig, indexes: list[int]) -> set[str]:
    """Fingerprints the chosen rules can raise (warning and critical levels included)."""
    chosen = [specs(config)[i] for i in indexes]
    return {fp for spec in chosen for rule in spec.build(config) for fp in rule.fingerprints()}


def plot_tuning(report: dict, path: str) -> None:
    """False alerts per day and peaks caught against the swept value, lead on a twin axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["results"]
    xs = [r["value"] for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    top.plot(xs, [r["false_per_day"] for r in rows], "o-", color="tab:red",
             label="false alerts / zone-day")
    top.plot(xs, [r["alerts_per_day"] for r in rows], "s--", color="tab:gray",
             label="all alerts / zone-day")
    top.set_ylabel("per zone-day")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    twin = top.twinx()
    twin.plot(xs, [r["caught_ratio"] for r in rows], "^-", color="tab:green",
              label="peaks caught (share)")
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("peaks caught")
    twin.legend(loc="upper right")
    leads = [(r["value"], r["median_lead_s"] / 60) for r in rows
             if r["median_lead_s"] is not None]
    if leads:
        bottom.plot(*zip(*leads, strict=True), "o-", color="tab:blue")
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set_ylabel("median lead (min)")
    bottom.set_xlabel(f"{report['rule']} {report['param']}")
    bottom.grid(alpha=0.3)
    fig.suptitle(f"Tuning {report['rule']}: {report['peaks']} peaks at level "
                 f"{report['truth_level']:g} over {report['zone_days']:.0f} zone-days")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
