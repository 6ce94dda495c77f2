"""The built-in demo: one simulated school-gate camera, one calibrated zone, one rule.

Thresholds are scaled to the simulated scene (its peak is about 1 person/m²), not to
real safety levels; a real site sets Fruin-style levels (2–4 persons/m²) in its config.
"""

from __future__ import annotations

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.ingest.sim import SimParams, gate_zone_config

DEMO_URL = "sim://school-gate?people=80&period=45&seed=7"
DEMO_ZONE = "gate-pavement"


def demo_config_dict(metrics_port: int = 9108, console_port: int = 0) -> dict:
    """The demo site; tests get no console unless they ask (``crowdwatch run`` asks)."""
    zone = gate_zone_config(SimParams.from_url(DEMO_URL))
    return {
        "site": {"name": "demo-school", "timezone": "UTC"},
        "cameras": [{
            "id": "school-gate-sim",
            "url": DEMO_URL,
            "sample_hz": 2,
            "detector": {"kind": "background"},
            # Blank the building facade (windows could show people indoors).
            "privacy_masks": [[[0, 0], [1280, 0], [1280, 150], [0, 150]]],
            # A made-up position, so map panels have something to show.
            "zones": [{"id": DEMO_ZONE, "lat": 51.5072, "lon": -0.1276, **zone}],
        }],
        "rules": [
            {"kind": "density", "zone": DEMO_ZONE, "warn": 0.45, "critical": 0.7, "for": "3s",
             "clear_below": 0.25, "clear_for": "4s", "window": "3s", "statistic": "median"},
            {"kind": "camera_offline", "after": "30s"},
        ],
        "metrics": {"port": metrics_port},
        "console": {"port": console_port},
    }


def demo_config(metrics_port: int = 9108, console_port: int = 8080) -> CrowdwatchConfig:
    return CrowdwatchConfig.model_validate(demo_config_dict(metrics_port, console_port))
