#!/usr/bin/env bash
# A real Mosquitto broker (Debian package) on loopback for tests and demos.
#   deploy/mosquitto/local.sh install|start|stop|status
# Settings: CROWDWATCH_MQTT_PORT (1883), CROWDWATCH_MQTT_DIR (/tmp/crowdwatch-mosquitto-$PORT),
# CROWDWATCH_MQTT_USER + CROWDWATCH_MQTT_PASSWORD: require that login (else anonymous on
# loopback only).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PORT="${CROWDWATCH_MQTT_PORT:-1883}"
DIR="${CROWDWATCH_MQTT_DIR:-/tmp/crowdwatch-mosquitto-$PORT}"
PIDFILE="$DIR/mosquitto.pid"
# shellcheck source=../lib/service.sh
. "$HERE/../lib/service.sh"

install() {
  command -v mosquitto >/dev/null && command -v mosquitto_passwd >/dev/null \
    || apt_install mosquitto mosquitto-clients
  stop_system_service mosquitto
}

start() {
  install
  stop >/dev/null 2>&1 || true
  mkdir -p "$DIR"
  {
    echo "listener $PORT 127.0.0.1"
    # Keep the caller's user: started as root, mosquitto would otherwise switch to its own
    # user, which cannot read a password file in a private temp folder.
    echo "user $(id -un)"
    echo "persistence false"
    # Queue limits a site would use: per client, QoS 1 messages waiting beyond its receive
    # maximum; a burst past them is dropped by the broker and shows in crowdwatch's
    # crowdwatch_mqtt_broker_dropped_messages (from \$SYS, published every 10 s).
    echo "max_queued_messages ${CROWDWATCH_MQTT_MAX_QUEUED:-10000}"
    echo "max_inflight_messages 100"
    echo "sys_interval 10"
    echo "log_dest stderr"
    echo "log_type error"
    echo "log_type warning"
    if [ -n "${CROWDWATCH_MQTT_USER:-}" ]; then
      echo "allow_anonymous false"
      echo "password_file $DIR/passwords"
    else
      echo "allow_anonymous true"
    fi
  } > "$DIR/mosquitto.conf"
  if [ -n "${CROWDWATCH_MQTT_USER:-}" ]; then
    : > "$DIR/passwords"
    chmod 600 "$DIR/passwords"
    mosquitto_passwd -b "$DIR/passwords" "$CROWDWATCH_MQTT_USER" "${CROWDWATCH_MQTT_PASSWORD:?set CROWDWATCH_MQTT_PASSWORD}"
  fi
  mosquitto -c "$DIR/mosquitto.conf" > "$DIR/mosquitto.log" 2>&1 &
  echo $! > "$PIDFILE"
  wait_ready mosquitto "$PIDFILE" "$DIR/mosquitto.log" port_open "$PORT"
  echo "mosquitto ready on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
}

stop() { stop_pid "mosquitto on :$PORT" "$PIDFILE"; }

status() { pid_status "mosquitto on 127.0.0.1:$PORT" "$PIDFILE" port_open "$PORT"; }

service_main "$@"
