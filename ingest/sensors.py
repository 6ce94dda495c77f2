"""Start the sensor listeners a config asks for (MQTT, HTTP), feeding one ``emit``."""

from __future__ import annotations

from collections.abc import Callable

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import SensorEvent
from crowdwatch.ingest.sensor_http import HttpSensorEndpoint
from crowdwatch.ingest.sensor_messages import SensorMessageParser
from crowdwatch.ingest.sensor_mqtt import MqttSensorListener, Reject


def sensor_listeners(config: CrowdwatchConfig, emit: Callable[[SensorEvent], None],
                     reject: Reject, max_bytes: int = 65536) -> list:
    """Listeners built (not started); each has start() and stop()."""
    parser = SensorMessageParser(config.sensors)
    listeners: list = []
    if config.sensors.mqtt is not None:
        listeners.append(MqttSensorListener(config.sensors.mqtt, parser, emit, reject,
                                            config.site.name, max_bytes))
    if config.sensors.http is not None:
        listeners.append(HttpSensorEndpoint(config.sensors.http, parser, emit, reject))
    return listeners
