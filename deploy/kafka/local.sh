#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft: one combined broker+controller) on 127.0.0.1,
# from Maven Central jars and the machine's Java, for tests and demos. No Docker.
#   deploy/kafka/local.sh start|stop|status|resolve
# Settings (environment): CROWDWATCH_KAFKA_PORT (9092), CROWDWATCH_KAFKA_CONTROLLER_PORT
# (port + 1), CROWDWATCH_KAFKA_DIR (state, default /tmp/crowdwatch-kafka-$PORT),
# CROWDWATCH_KAFKA_CACHE (jars, default ~/.cache/crowdwatch/kafka-4.4.0, outside the repo),
# CROWDWATCH_KAFKA_HEAP (512m).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PORT="${CROWDWATCH_KAFKA_PORT:-9092}"
CPORT="${CROWDWATCH_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
DIR="${CROWDWATCH_KAFKA_DIR:-/tmp/crowdwatch-kafka-$PORT}"
CACHE="${CROWDWATCH_KAFKA_CACHE:-$HOME/.cache/crowdwatch/kafka-4.4.0}"
HEAP="${CROWDWATCH_KAFKA_HEAP:-512m}"
PIDFILE="$DIR/kafka.pid"

resolve() {
  if [ -f "$CACHE/.resolved" ]; then return 0; fi
  mkdir -p "$CACHE"
  cp "$HERE/pom.xml" "$CACHE/pom.xml"
  echo "resolving Apache Kafka jars from Maven Central into $CACHE" >&2
  (cd "$CACHE" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$CACHE/libs" \
      -DincludeScope=runtime)
  touch "$CACHE/.resolved"
}

java_kafka() { java -Xmx"$HEAP" -Xms128m -cp "$CACHE/libs/*" \
  -Dlog4j2.configurationFile="$DIR/log4j2.properties" "$@"; }

write_config() {
  mkdir -p "$DIR/data"
  cat > "$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
log.dirs=$DIR/data
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=24
PROPS
  cat > "$DIR/log4j2.properties" <<PROPS
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$DIR/kafka.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
PROPS
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  resolve
  if status >/dev/null 2>&1; then echo "kafka already running on 127.0.0.1:$PORT"; return 0; fi
  write_config
  if [ ! -f "$DIR/data/meta.properties" ]; then
    local id; id="$(java_kafka kafka.tools.StorageTool random-uuid | tail -1)"
    java_kafka kafka.tools.StorageTool format --standalone -t "$id" \
      -c "$DIR/server.properties" >/dev/null
  fi
  nohup java -Xmx"$HEAP" -Xms128m -cp "$CACHE/libs/*" \
    -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
    kafka.Kafka "$DIR/server.properties" > "$DIR/stdout.log" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 150); do
    if port_open "$PORT"; then
      echo "kafka ready on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), data $DIR)"
      return 0
    fi
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      echo "kafka exited; see $DIR/stdout.log and $DIR/kafka.log" >&2
      tail -20 "$DIR/stdout.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  echo "kafka not ready after 30s; see $DIR/kafka.log" >&2
  return 1
}

stop() {
  if [ -f "$PIDFILE" ]; then
    local pid; pid="$(cat "$PIDFILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    echo "kafka on :$PORT stopped"
  fi
}

status() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && port_open "$PORT"; then
    echo "running (pid $(cat "$PIDFILE"), 127.0.0.1:$PORT)"
  else
    echo "stopped"; return 3
  fi
}

case "${1:-}" in
  resolve) resolve ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  clean) stop; rm -rf "$DIR" ;;
  *) echo "usage: $0 resolve|start|stop|status|clean" >&2; exit 2 ;;
esac
