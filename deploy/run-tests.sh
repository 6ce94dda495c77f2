#!/usr/bin/env bash
# The whole test suite from a fresh checkout: install test extras into .venv, start the
# services the tests need on loopback, run lint, the type checker and the tests, stop the
# services.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test,plot,kafka]"

# Debian packages the tests drive (each test starts and stops its own instance through
# the project's script, on loopback and free ports).
bash deploy/prometheus/local.sh install
bash tests/support/rtsp/install.sh
bash tests/support/chromium/install.sh
bash deploy/alertmanager/local.sh install
bash deploy/mosquitto/local.sh install
bash deploy/kafka/local.sh resolve    # Kafka jars from Maven Central, cached outside the repo

SERVICES=()          # long-lived services for the whole run: scripts with start|stop
stop_services() {
  for svc in "${SERVICES[@]:-}"; do
    [ -n "$svc" ] && bash "$svc" stop || true
  done
}
trap stop_services EXIT
for svc in "${SERVICES[@]:-}"; do
  [ -n "$svc" ] && bash "$svc" start
done

lint=0
.venv/bin/ruff check . || lint=$?
MYPY=.venv/bin/mypy bash tests/support/typecheck.sh || lint=$?
.venv/bin/python -m pytest "$@"
exit "$lint"
