#!/usr/bin/env bash
# A real Alertmanager (Debian package prometheus-alertmanager) on loopback for tests.
#   deploy/alertmanager/local.sh install|start|stop|status
# Settings: CROWDWATCH_AM_PORT (9093), CROWDWATCH_AM_DIR (/tmp/crowdwatch-alertmanager-$PORT).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PORT="${CROWDWATCH_AM_PORT:-9093}"
DIR="${CROWDWATCH_AM_DIR:-/tmp/crowdwatch-alertmanager-$PORT}"
PIDFILE="$DIR/alertmanager.pid"
# shellcheck source=../lib/service.sh
. "$HERE/../lib/service.sh"

install() {
  command -v prometheus-alertmanager >/dev/null || apt_install prometheus-alertmanager
  stop_system_service prometheus-alertmanager
}

start() {
  install
  stop >/dev/null 2>&1 || true
  mkdir -p "$DIR/data"
  cat > "$DIR/alertmanager.yml" <<YAML
route:
  receiver: blackhole
  group_by: [site, zone, rule]
  group_wait: 1s
receivers:
  - name: blackhole
YAML
  amtool check-config "$DIR/alertmanager.yml" >/dev/null
  prometheus-alertmanager --config.file="$DIR/alertmanager.yml" --storage.path="$DIR/data" \
    --web.listen-address="127.0.0.1:$PORT" --cluster.listen-address="" \
    --log.level=warn > "$DIR/alertmanager.log" 2>&1 &
  echo $! > "$PIDFILE"
  wait_ready alertmanager "$PIDFILE" "$DIR/alertmanager.log" \
    curl -sf "http://127.0.0.1:$PORT/-/ready"
  echo "alertmanager ready on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
}

stop() { stop_pid "alertmanager on :$PORT" "$PIDFILE"; }

status() { pid_status "alertmanager on 127.0.0.1:$PORT" "$PIDFILE"; }

service_main "$@"
