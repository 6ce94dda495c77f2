#!/usr/bin/env bash
# A real Alertmanager (Debian package prometheus-alertmanager) on loopback for tests.
#   deploy/alertmanager/local.sh install|start|stop|status
# Settings: CROWDWATCH_AM_PORT (9093), CROWDWATCH_AM_DIR (/tmp/crowdwatch-alertmanager-$PORT).
set -euo pipefail
PORT="${CROWDWATCH_AM_PORT:-9093}"
DIR="${CROWDWATCH_AM_DIR:-/tmp/crowdwatch-alertmanager-$PORT}"
PIDFILE="$DIR/alertmanager.pid"

install() {
  if ! command -v prometheus-alertmanager >/dev/null; then
    echo "installing Debian package prometheus-alertmanager" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null
  fi
  (command -v systemctl >/dev/null && systemctl stop prometheus-alertmanager 2>/dev/null) || true
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
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$PORT/-/ready" >/dev/null; then
      echo "alertmanager ready on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"; return 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { cat "$DIR/alertmanager.log" >&2; return 1; }
    sleep 0.2
  done
  echo "alertmanager not ready after 20s; log: $DIR/alertmanager.log" >&2; return 1
}

stop() {
  if [ -f "$PIDFILE" ]; then
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    rm -f "$PIDFILE"
    echo "alertmanager on :$PORT stopped"
  fi
}

status() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "running (pid $(cat "$PIDFILE"), 127.0.0.1:$PORT)"
  else
    echo "stopped"; return 3
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
