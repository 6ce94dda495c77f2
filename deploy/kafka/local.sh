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
# shellcheck source=../lib/service.sh
. "$HERE/../lib/service.sh"

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
  wait_ready kafka "$PIDFILE" "$DIR/stdout.log" port_open "$PORT"
  echo "kafka ready on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), data $DIR)"
}

stop() { stop_pid "kafka on :$PORT" "$PIDFILE"; }

status() { pid_status "kafka on 127.0.0.1:$PORT" "$PIDFILE" port_open "$PORT"; }

clean() { stop; rm -rf "$DIR"; }

COMMANDS="resolve start stop status clean" service_main "$@"
