#!/usr/bin/env bash
# A real Prometheus (Debian package) on loopback for tests and demos.
#   deploy/prometheus/local.sh install|start|stop|status
# Settings (environment): CROWDWATCH_PROM_PORT (9090), CROWDWATCH_PROM_TARGETS
# (comma-separated host:port to scrape, default 127.0.0.1:9108), CROWDWATCH_PROM_SITE
# (site label, default demo-school), CROWDWATCH_PROM_SCRAPE (1s), CROWDWATCH_PROM_DIR
# (state folder, default /tmp/crowdwatch-prometheus-$PORT).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PORT="${CROWDWATCH_PROM_PORT:-9090}"
TARGETS="${CROWDWATCH_PROM_TARGETS:-127.0.0.1:9108}"
SITE="${CROWDWATCH_PROM_SITE:-demo-school}"
SCRAPE="${CROWDWATCH_PROM_SCRAPE:-1s}"
DIR="${CROWDWATCH_PROM_DIR:-/tmp/crowdwatch-prometheus-$PORT}"
PIDFILE="$DIR/prometheus.pid"
# shellcheck source=../lib/service.sh
. "$HERE/../lib/service.sh"

install() {
  if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    apt_install prometheus
  fi
  stop_system_service prometheus
  pkill -f '^/usr/bin/prometheus$' 2>/dev/null || true
}

write_config() {
  mkdir -p "$DIR/data"
  local targets
  targets="$(echo "$TARGETS" | sed 's/[^,][^,]*/"&"/g')"
  cat > "$DIR/prometheus.yml" <<YAML
global:
  scrape_interval: $SCRAPE
  evaluation_interval: $SCRAPE
rule_files:
  - $HERE/rules/*.yml
scrape_configs:
  - job_name: crowdwatch
    static_configs:
      - targets: [$targets]
        labels: {site: "$SITE"}
YAML
}

start() {
  install
  stop >/dev/null 2>&1 || true
  write_config
  prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
    --web.listen-address="127.0.0.1:$PORT" --storage.tsdb.retention.time=1h \
    --log.level=warn > "$DIR/prometheus.log" 2>&1 &
  echo $! > "$PIDFILE"
  wait_ready prometheus "$PIDFILE" "$DIR/prometheus.log" \
    curl -sf "http://127.0.0.1:$PORT/-/ready"
  echo "prometheus ready on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), scraping $TARGETS)"
}

stop() { stop_pid "prometheus on :$PORT" "$PIDFILE"; }

status() { pid_status "prometheus on 127.0.0.1:$PORT" "$PIDFILE"; }

service_main "$@"
