"""Start the sensor listeners a config asks for (MQTT, HTTP), feeding one ``emit``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import SensorEvent
from crowdwatch.ingest.sensor_http import HttpSensorEndpoint
from crowdwatch.ingest.sensor_messages import SensorMessageParser
from crowdwatch.ingest.sensor_mqtt import MqttSensorListener, Reject
from crowdwatch.metrics import Metrics
from crowdwatch.util.backoff import Backoff

log = logging.getLogger("crowdwatch.sensors")


def sensor_listeners(config: CrowdwatchConfig, emit: Callable[[SensorEvent], None],
                     reject: Reject, max_bytes: int = 65536,
                     metrics: Metrics | None = None) -> list:
    """Listeners built (not started); each has start(), stop(), alive() and up()."""
    parser = SensorMessageParser(config.sensors)
    listeners: list = []
    if config.sensors.mqtt is not None:
        listeners.append(MqttSensorListener(config.sensors.mqtt, parser, emit, reject,
                                            config.site.name, max_bytes, metrics))
    if config.sensors.http is not None:
        listeners.append(HttpSensorEndpoint(config.sensors.http, parser, emit, reject))
    return listeners


class ListenerSupervisor:
    """Starts a listener again, with backoff, if it dies (a bug, a lost socket), and shows
    each one's state in ``crowdwatch_listener_up``; call :meth:`check` now and then."""

    def __init__(self, listeners: list, metrics: Metrics) -> None:
        self.listeners = listeners
        self.metrics = metrics
        self._backoff = {id(x): Backoff(1.0, 30.0) for x in listeners}
        self._next_try: dict[int, float] = {}

    def check(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for listener in self.listeners:
            self.metrics.listener_up.labels(listener=listener.name).set(
                1 if listener.up() else 0)
            if listener.alive():
                continue
            due = self._next_try.get(id(listener))
            if due is None:
                self._next_try[id(listener)] = now + self._backoff[id(listener)].next_delay()
                log.error("sensor listener %s stopped; restarting it", listener.name,
                          extra={"listener": listener.name})
                continue
            if now < due:
                continue
            try:
                listener.start()
                self.metrics.listener_restarts.labels(listener=listener.name).inc()
                self._next_try.pop(id(listener), None)
                log.warning("sensor listener %s started again", listener.name,
                            extra={"listener": listener.name})
            except Exception as exc:
                delay = self._backoff[id(listener)].next_delay()
                self._next_try[id(listener)] = now + delay
                log.error("restarting sensor listener %s failed (%s); next try in %.0fs",
                          listener.name, exc, delay, extra={"listener": listener.name})
