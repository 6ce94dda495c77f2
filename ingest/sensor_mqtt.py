"""MQTT sensor ingest: subscribe, validate each message, hand good readings on.

paho-mqtt's network loop runs on a thread of ours and reconnects with backoff by
itself; a malformed message goes to the dead-letter sink and never stops the loop, and
should the loop die anyway, the listener supervisor starts it again. The broker's own
count of messages it dropped (``$SYS/broker/publish/messages/dropped``, e.g. queues
overflowing in a burst) is exported, so a gap between what sensors sent and what
arrived shows.
The client subscribes again on every (re)connect, so a broker restart loses only what
was published while it was down (QoS 1 with a persistent session keeps even that
when the broker persists sessions).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from crowdwatch.config import MqttSensorConfig
from crowdwatch.errors import ConfigError
from crowdwatch.events import EventError, SensorEvent
from crowdwatch.ingest.sensor_messages import SensorMessageParser
from crowdwatch.metrics import Metrics

log = logging.getLogger("crowdwatch.sensors.mqtt")
BROKER_DROPPED = "$SYS/broker/publish/messages/dropped"

Reject = Callable[[str, str, str, bytes | str | None], None]


def topic_sensor(pattern: str, topic: str) -> str | None:
    """The topic level matching the pattern's first ``+`` (the sensor id), if any."""
    levels = topic.split("/")
    for i, part in enumerate(pattern.split("/")):
        if part == "+":
            return levels[i] if i < len(levels) else None
        if part == "#":
            return None
    return None


class MqttSensorListener:
    def __init__(self, cfg: MqttSensorConfig, parser: SensorMessageParser,
                 emit: Callable[[SensorEvent], None], reject: Reject, site: str,
                 max_bytes: int = 65536, metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.parser = parser
        self.emit = emit
        self.reject = reject
        self.max_bytes = max_bytes
        self.connected = False
        self.received = 0
        self.name = "mqtt"
        self.metrics = metrics
        self._thread: threading.Thread | None = None
        client_id = cfg.client_id or f"crowdwatch-{site}-{os.getpid()}"
        # MQTT 5: a receive maximum bounds what the broker pushes at us at once, and the
        # session (subscription and queued QoS 1 readings) outlives a reconnect.
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self._connect_properties = Properties(PacketTypes.CONNECT)
        self._connect_properties.ReceiveMaximum = cfg.receive_maximum
        self._connect_properties.SessionExpiryInterval = int(cfg.session_expiry)
        user = os.environ.get(cfg.username_env) if cfg.username_env else None
        password = os.environ.get(cfg.password_env) if cfg.password_env else None
        if cfg.username_env and not user:
            raise ConfigError(f"sensors.mqtt: environment variable {cfg.username_env} is not set")
        if user:
            self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(max(1, int(cfg.reconnect.initial)),
                                        max(1, int(cfg.reconnect.max)))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    @property
    def where(self) -> str:
        return f"mqtt://{self.cfg.host}:{self.cfg.port}"

    def start(self) -> None:
        # connect_async: a broker that is down at start-up is retried by the loop.
        self.client.connect_async(self.cfg.host, self.cfg.port, int(self.cfg.keepalive),
                                  clean_start=False, properties=self._connect_properties)
        self._thread = threading.Thread(target=self._loop, name="sensor-mqtt", daemon=True)
        self._thread.start()
        log.info("subscribing to %s on %s", self.cfg.topic, self.where)

    def _loop(self) -> None:
        try:
            self.client.loop_forever(retry_first_connection=True)
        except Exception:
            log.exception("the MQTT network loop for %s died; the supervisor restarts it",
                          self.where)
        finally:
            self.connected = False

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def up(self) -> bool:
        return self.alive() and self.connected

    def stop(self) -> None:
        self.client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker %s refused the connection: %s; check sensors.mqtt "
                      "credentials", self.where, reason_code, extra={"broker": self.where})
            return
        self.connected = True
        client.subscribe(self.cfg.topic, qos=self.cfg.qos)
        if self.metrics is not None:
            client.subscribe(BROKER_DROPPED, qos=0)
        log.info("connected to MQTT broker %s", self.where, extra={"broker": self.where})

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False
        log.warning("MQTT broker %s disconnected (%s); reconnecting with backoff", self.where,
                    reason_code, extra={"broker": self.where})

    def _on_message(self, client, userdata, message) -> None:
        """Runs on paho's network thread: nothing may escape it, or MQTT ingest stops for
        good while the process lives on."""
        source = f"mqtt:{message.topic}"
        payload = message.payload
        if message.topic == BROKER_DROPPED:
            self._broker_stat(payload)
            return
        try:
            try:
                if len(payload) > self.max_bytes:
                    raise EventError("oversized", f"{len(payload)} bytes > {self.max_bytes}")
                event = self.parser.reading(self.parser.decode(payload),
                                            topic_sensor(self.cfg.topic, message.topic),
                                            time.time())
            except EventError as exc:
                self.reject(source, exc.reason, exc.detail, payload)
                return
            except Exception as exc:  # a parser bug must not kill the listener
                log.exception("unexpected error on a message from %s", source)
                self.reject(source, "internal_error", f"{type(exc).__name__}: {exc}", payload)
                return
            self.received += 1
            self.emit(event)
        except Exception:
            log.exception("could not hand on or dead-letter a message from %s; MQTT ingest "
                          "goes on", source)

    def _broker_stat(self, payload: bytes) -> None:
        """The broker's count of messages it dropped since it started (Mosquitto $SYS)."""
        try:
            dropped = int(payload.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return
        if self.metrics is not None:
            self.metrics.mqtt_broker_dropped.set(dropped)
