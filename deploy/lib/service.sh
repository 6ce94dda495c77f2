# Shared by deploy/*/local.sh: wait for a service we started, stop it by its PID file.

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_ready NAME PIDFILE LOG CHECK...: poll CHECK (a command) for up to 30 s.
wait_ready() {
  local name=$1 pidfile=$2 log=$3
  shift 3
  for _ in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "$name exited during start; the end of $log:" >&2
      tail -30 "$log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  echo "$name not ready after 30s; see $log" >&2
  return 1
}

# stop_pid NAME PIDFILE: TERM, wait up to 10 s, then KILL.
stop_pid() {
  local name=$1 pidfile=$2 pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "$name stopped"
}

# pid_status NAME PIDFILE [CHECK...]: exit 3 unless running (and CHECK passes).
pid_status() {
  local name=$1 pidfile=$2
  shift 2
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && { [ $# -eq 0 ] || "$@"; }; then
    echo "$name running (pid $(cat "$pidfile"))"
  else
    echo "$name stopped"
    return 3
  fi
}

# apt_install PACKAGE...: install Debian packages quietly (root, no prompts).
apt_install() {
  echo "installing Debian package(s): $*" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# stop_system_service NAME: a package may start its own daemon on the default port; the
# project's scripts run their own instances on ports they choose.
stop_system_service() {
  (command -v systemctl >/dev/null && systemctl stop "$1" 2>/dev/null) || true
}

# service_main COMMAND...: run one of the script's commands (functions named alike);
# the allowed ones are listed in $COMMANDS (default: install start stop status).
service_main() {
  local allowed="${COMMANDS:-install start stop status}"
  if [ -n "${1:-}" ] && [[ " $allowed " == *" $1 "* ]]; then
    "$1"
  else
    echo "usage: $0 ${allowed// /|}" >&2
    exit 2
  fi
}
