"""Turn untrusted sensor messages (MQTT payloads, HTTP bodies) into SensorEvents.

Accepted forms, one reading per object:
``{"sensor_id": "door-3", "value": 12, "ts": "2026-11-25T08:00:00Z", "kind": "counter"}``
(``ts`` optional: receive time; ``sensor_id`` optional when the MQTT topic names the
sensor), the wire form ``{"v": 1, "type": "sensor", ...}``, a JSON list of those
(HTTP batches), or a bare number on a topic that names the sensor. Every rejection
raises :class:`EventError` with a short reason that becomes a metric label.
"""

from __future__ import annotations

import math
import time
from typing import Any

from crowdwatch.config import SensorsConfig
from crowdwatch.events import EventError, SensorEvent, load_json, parse_ts

_FIELDS = {"sensor_id", "ts", "value", "kind", "v", "type", "zone_id"}
MAX_READING = 1e9  # no counter or occupancy reads a billion; larger is a broken sender


class SensorMessageParser:
    def __init__(self, config: SensorsConfig) -> None:
        self.config = config
        self.devices = {d.id: d for d in config.devices}

    def decode(self, raw: bytes) -> Any:
        """JSON (object, list or number) from bytes; a reason-coded error otherwise."""
        return load_json(raw)

    def reading(self, item: Any, topic_sensor: str | None = None,
                now: float | None = None) -> SensorEvent:
        """Validate one decoded reading; the device table supplies zone, kind and scale."""
        now = time.time() if now is None else now
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = {"value": item}
        if not isinstance(item, dict):
            raise EventError("not_an_object", f"expected a JSON object or number, got "
                             f"{type(item).__name__}")
        unknown = set(item) - _FIELDS
        if unknown:
            raise EventError("bad_fields", f"unknown field(s) {sorted(unknown)}")
        if "v" in item and item["v"] != 1:
            raise EventError("bad_version", f"v={item['v']!r}, this build reads v=1")
        if "type" in item and item["type"] != "sensor":
            raise EventError("unexpected_type", f"type={item['type']!r} where 'sensor' belongs")
        sensor_id = item.get("sensor_id", topic_sensor)
        if not isinstance(sensor_id, str) or not sensor_id:
            raise EventError("bad_field", "sensor_id: missing (in the body or the topic)")
        if topic_sensor is not None and sensor_id != topic_sensor:
            raise EventError("bad_field", f"sensor_id {sensor_id!r} differs from the topic's "
                             f"{topic_sensor!r}")
        value = item.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise EventError("bad_field", f"value: expected a finite number, got {value!r}")
        if abs(value) > MAX_READING:
            raise EventError("bad_field", f"value: {value:g} is beyond ±{MAX_READING:g}")
        ts = parse_ts(item["ts"], "ts") if item.get("ts") is not None else now
        if ts - now > self.config.max_future:
            raise EventError("future_ts", f"ts is {ts - now:.0f}s ahead of this clock "
                             f"(sensors.max_future {self.config.max_future:g}s)")
        if now - ts > self.config.max_past:
            raise EventError("stale_ts", f"ts is {now - ts:.0f}s old (sensors.max_past "
                             f"{self.config.max_past:g}s)")
        # A clock a little ahead is tolerated but never trusted ahead of ours: a reading
        # stamped in the future would make every true reading after it look late.
        ts = min(ts, now)
        device = self.devices.get(sensor_id)
        if device is None and not self.config.accept_unknown:
            raise EventError("unknown_sensor", f"sensor {sensor_id!r} is not in sensors.devices")
        kind = item.get("kind", device.kind if device else "counter")
        if device is not None and kind != device.kind:
            raise EventError("bad_field", f"kind {kind!r} but sensor {sensor_id!r} is "
                             f"configured as {device.kind!r}")
        if kind in ("counter", "occupancy") and value < 0:
            raise EventError("bad_field", f"value: negative {kind} reading {value}")
        scale = device.scale if device else 1.0
        zone = device.zone if device else None
        return SensorEvent(sensor_id, ts, str(kind), float(value) * scale, zone)
