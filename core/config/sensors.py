"""Sensors: devices, the zones only they watch, and their MQTT and HTTP inputs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt

from crowdwatch.config.cameras import ReconnectConfig
from crowdwatch.config.fields import Identifier, Seconds, Strict


class SensorDevice(Strict):
    """One sensor: which zone its readings belong to and how to read them."""

    id: Identifier = Field(description="Sensor id, as sent in messages and MQTT topics.")
    name: str | None = Field(None, description="Name in a recorded feed when it is not a "
                             "valid id (e.g. a CSV column such as '45 Queen Street').")
    zone: str | None = Field(None, description="Zone id the readings describe.")
    kind: Literal["counter", "occupancy", "gate"] = Field(
        "counter", description="counter: people per interval; occupancy: people present now; "
        "gate: passages.")
    scale: float = Field(1.0, gt=0, description="Readings are multiplied by this (e.g. a "
                         "counter that covers half the pavement: 2).")


class SensorZone(Strict):
    """A zone that only sensors watch (no camera)."""

    id: Identifier
    area_m2: float | None = Field(None, gt=0, description="Walkable area; enables density.")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class MqttSensorConfig(Strict):
    host: str = Field("127.0.0.1", description="Broker host.")
    port: StrictInt = Field(1883, ge=1, le=65535)
    topic: str = Field("crowdwatch/sensors/+", description="Subscription; a `+` level names "
                       "the sensor when the payload does not.")
    qos: int = Field(1, ge=0, le=2, description="1: the broker keeps unacknowledged "
                     "readings for us across a reconnect.")
    receive_maximum: int = Field(100, ge=1, le=65535, description="QoS 1 readings the broker "
                                 "may have in flight to us at once (MQTT 5); the rest wait in "
                                 "its queue, and what overflows that is dropped and counted.")
    session_expiry: Seconds = Field(3600.0, ge=0, description="How long the broker keeps our "
                                    "subscription and queued readings while we are away.")
    client_id: str | None = Field(None, description="Default: crowdwatch-<site>-<pid>.")
    username_env: str | None = Field(None, description="Environment variable with the user.")
    password_env: str | None = Field(None, description="Environment variable with the password.")
    keepalive: Seconds = Field(30.0, ge=5)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)


class HttpSensorConfig(Strict):
    host: str = Field("127.0.0.1", description="Bind address.")
    port: StrictInt = Field(9110, ge=0, le=65535, description="0 picks a free port.")
    path: str = Field("/v1/sensors", pattern=r"^/[A-Za-z0-9/_.-]*$")
    token_env: str = Field("CROWDWATCH_SENSOR_TOKEN", description="Environment variable with "
                           "the bearer token clients must send (requests without it get 401).")
    max_body_bytes: int = Field(65536, ge=256, description="Larger bodies get 413.")
    max_items: int = Field(1000, ge=1, description="Readings per request, at most.")
    request_timeout: Seconds = Field(10.0, gt=0, description="A client must send a whole "
                                     "request (headers and body) within this, or is cut off.")
    idle_timeout: Seconds = Field(5.0, gt=0, description="A kept-alive connection idle this "
                                  "long is closed.")
    max_connections: int = Field(512, ge=1, le=10000, description="Connections served at "
                                 "once (each costs a socket, not a thread); beyond it requests "
                                 "get 503.")
    workers: int = Field(4, ge=1, le=64, description="Threads that validate and hand on "
                         "readings (bounded: a flood queues, it never spawns threads).")


class SensorsConfig(Strict):
    devices: list[SensorDevice] = Field(default_factory=list)
    zones: list[SensorZone] = Field(default_factory=list)
    mqtt: MqttSensorConfig | None = None
    http: HttpSensorConfig | None = None
    accept_unknown: bool = Field(False, description="Take readings from sensors not listed in "
                                 "devices (zone-less); default: dead-letter them.")
    max_future: Seconds = Field(300.0, ge=0, description="Readings stamped further ahead than "
                                "this (a wrong clock) are dead-lettered; within it they count "
                                "as received now.")
    max_past: Seconds = Field(3600.0, gt=0, description="Readings stamped further back than "
                              "this (a sender replaying old data, a wrong clock) are "
                              "dead-lettered.")
    combine_within: Seconds = Field(
        300.0, gt=0, description="A zone's value is the sum of its sensors' latest readings "
        "taken within this span of the newest one.")
