#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft combined mode) for nudge's tests.
#
#   deploy/kafka/kafka.sh start|stop|restart|status
#
# start    idempotent: a no-op when a broker already answers on 127.0.0.1:9092;
#          otherwise fetches the broker jars from Maven Central (once, with
#          deploy/kafka/pom.xml), formats the storage (once) and starts the broker
#          in the background, then waits until it answers.
# stop     stops the broker this script started (pid file); a no-op when not running.
# restart  stop, then start; the data (log.dirs) is kept.
# status   exit 0 when the broker answers on 127.0.0.1:9092, 1 otherwise.
#
# Environment:
#   NUDGE_STATE_DIR      state root (default $HOME/.cache/nudge); Kafka uses $NUDGE_STATE_DIR/kafka
#   KAFKA_LIBS_DIR       where the jars go (default $NUDGE_STATE_DIR/kafka/libs); refetched
#                        whenever deploy/kafka/pom.xml changes
#   KAFKA_HEAP_OPTS      JVM heap (default "-Xms256m -Xmx1g")
#   KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (default 90)
#   KAFKA_STOP_TIMEOUT   seconds to wait for a clean shutdown before SIGKILL (default 60)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$REPO_ROOT/deploy/kafka/pom.xml"

STATE_ROOT="${NUDGE_STATE_DIR:-${HOME:-/root}/.cache/nudge}"
KAFKA_STATE="$STATE_ROOT/kafka"
LIBS_DIR="${KAFKA_LIBS_DIR:-$KAFKA_STATE/libs}"
DATA_DIR="$KAFKA_STATE/data"
LOG_DIR="$KAFKA_STATE/logs"
CONF_DIR="$KAFKA_STATE/config"
PID_FILE="$KAFKA_STATE/kafka.pid"
SERVER_PROPS="$CONF_DIR/server.properties"
LOG4J_CONF="$CONF_DIR/log4j2.xml"

HOST=127.0.0.1
PORT=9092
CONTROLLER_PORT=9093
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"

log() { printf '[kafka.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

kafka_version() {
  # The single source of truth is <kafka.version> in the pom.
  sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1
}

# ---------------------------------------------------------------- probes

tcp_open() {
  # bash-only probe: does anything accept a TCP connection on HOST:PORT?
  (exec 3<>"/dev/tcp/$HOST/$PORT") >/dev/null 2>&1
}

# A real Kafka protocol check with the Python standard library only:
# ApiVersions v0, then Metadata v4 when the broker supports it, and requires
# at least one registered broker in the answer.
PY_PROBE='
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
def call(sock, key, ver, cid, body=b""):
    client = b"nudge-probe"
    hdr = struct.pack(">hhih", key, ver, cid, len(client)) + client
    msg = hdr + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    def read(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf
    (size,) = struct.unpack(">i", read(4))
    data = read(size)
    (rcid,) = struct.unpack(">i", data[:4])
    if rcid != cid:
        raise ValueError("correlation id mismatch")
    return data[4:]
try:
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(5)
    r = call(s, 18, 0, 1)
    err, n = struct.unpack(">hi", r[:6])
    if err != 0:
        sys.exit(2)
    versions = {}
    off = 6
    for _ in range(n):
        k, lo, hi = struct.unpack(">hhh", r[off:off + 6]); off += 6
        versions[k] = (lo, hi)
    lo, hi = versions.get(3, (0, -1))
    if lo <= 4 <= hi:
        r = call(s, 3, 4, 2, struct.pack(">ib", 0, 0))  # no topics, no auto-create
        (nbrokers,) = struct.unpack(">i", r[4:8])
        if nbrokers < 1:
            sys.exit(3)
    s.close()
except Exception:
    sys.exit(1)
'

broker_answers() {
  tcp_open || return 1
  if command -v python3 >/dev/null 2>&1; then
    python3 -c "$PY_PROBE" "$HOST" "$PORT" >/dev/null 2>&1
  else
    return 0
  fi
}

our_pid() {
  # Prints the pid from the pid file when that process is alive and is our broker.
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka.Kafka' || return 1
  fi
  echo "$pid"
}

# ---------------------------------------------------------------- setup

ensure_tools() {
  local missing=()
  command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  if ((${#missing[@]})); then
    [[ "$(id -u)" == 0 ]] || die "missing ${missing[*]}; install them (apt-get install ${missing[*]})"
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_libs() {
  local ver
  ver="$(kafka_version)"
  [[ -n "$ver" ]] || die "cannot read <kafka.version> from $POM"
  # The marker holds the pom's checksum: any change to the pom refetches.
  local sum
  sum="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [[ -f "$LIBS_DIR/kafka_2.13-$ver.jar" && "$(cat "$LIBS_DIR/.pom.sha256" 2>/dev/null)" == "$sum" ]]; then
    return 0
  fi
  log "fetching Apache Kafka $ver jars from Maven Central into $LIBS_DIR"
  local tmp="$LIBS_DIR.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  mkdir -p "$LOG_DIR"
  local t0=$SECONDS
  if ! mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$LOG_DIR/mvn.log" 2>&1; then
    tail -n 40 "$LOG_DIR/mvn.log" >&2
    rm -rf "$tmp"
    die "mvn could not fetch the Kafka jars (full output in $LOG_DIR/mvn.log)"
  fi
  log "fetched $(find "$tmp" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s"
  echo "$sum" >"$tmp/.pom.sha256"
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
}

write_config() {
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOG_DIR"
  cat >"$SERVER_PROPS" <<EOF
# Generated by deploy/kafka/kafka.sh -- single-node KRaft broker+controller for tests.
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$DATA_DIR
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=3
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
log.segment.bytes=268435456
EOF
  cat >"$LOG4J_CONF" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by deploy/kafka/kafka.sh -->
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="server" fileName="$LOG_DIR/server.log"
                 filePattern="$LOG_DIR/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="server"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.controller" level="INFO"/>
    <Logger name="kafka.log.LogCleaner" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
  </Loggers>
</Configuration>
EOF
}

java_cmd() {
  # Sets JAVA to the JVM command prefix (heap, GC, logging, classpath).
  # shellcheck disable=SC2206 # HEAP_OPTS is meant to be word-split
  JAVA=(java $HEAP_OPTS
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$LOG4J_CONF" "-Dkafka.logs.dir=$LOG_DIR"
    -cp "$LIBS_DIR/*")
}

format_storage() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    return 0
  fi
  java_cmd
  local cluster_id
  cluster_id="$("${JAVA[@]}" kafka.tools.StorageTool random-uuid 2>>"$LOG_DIR/storage-tool.log" | tail -n1)"
  [[ -n "$cluster_id" ]] || die "StorageTool random-uuid failed (see $LOG_DIR/storage-tool.log)"
  log "formatting $DATA_DIR (cluster id $cluster_id)"
  "${JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$SERVER_PROPS" --ignore-formatted \
    >>"$LOG_DIR/storage-tool.log" 2>&1 || {
      tail -n 30 "$LOG_DIR/storage-tool.log" >&2
      die "StorageTool format failed"
    }
}

# ---------------------------------------------------------------- commands

cmd_status() {
  if broker_answers; then
    log "broker answers on $HOST:$PORT"
    return 0
  fi
  log "no broker on $HOST:$PORT"
  return 1
}

cmd_start() {
  if broker_answers; then
    log "broker already answers on $HOST:$PORT; nothing to do"
    return 0
  fi
  local pid
  if pid="$(our_pid)"; then
    log "broker process $pid is running but not answering yet; waiting for it"
  else
    if tcp_open; then
      die "something else listens on $HOST:$PORT but does not answer as a Kafka broker"
    fi
    ensure_tools
    ensure_libs
    write_config
    format_storage
    java_cmd
    log "starting Kafka $(kafka_version) (state in $KAFKA_STATE)"
    cd "$KAFKA_STATE"
    # setsid: the broker must outlive the shell (and make's process group) that started it.
    setsid nohup "${JAVA[@]}" kafka.Kafka "$SERVER_PROPS" >>"$LOG_DIR/kafka.out" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
  fi
  local t0=$SECONDS
  while ((SECONDS - t0 < START_TIMEOUT)); do
    if broker_answers; then
      log "broker answers on $HOST:$PORT (pid $pid, ready after $((SECONDS - t0))s; log $LOG_DIR/server.log)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker process $pid exited during startup"
      break
    fi
    sleep 0.5
  done
  log "broker did not answer within ${START_TIMEOUT}s; last lines of its logs:"
  tail -n 40 "$LOG_DIR/server.log" >&2 2>/dev/null || true
  tail -n 20 "$LOG_DIR/kafka.out" >&2 2>/dev/null || true
  return 1
}

cmd_stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PID_FILE"
    if tcp_open; then
      log "a broker on $HOST:$PORT was not started by this script (no live pid file); leaving it alone"
    else
      log "not running"
    fi
    return 0
  fi
  log "stopping broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS - t0 >= STOP_TIMEOUT)); then
      log "broker did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.5
  done
  rm -f "$PID_FILE"
  # The listener may linger a moment after the process is gone.
  t0=$SECONDS
  while tcp_open && ((SECONDS - t0 < 10)); do sleep 0.2; done
  log "stopped"
}

with_lock() {
  # Serialise concurrent start/stop calls (e.g. parallel test workers).
  exec 9>"$KAFKA_STATE/.kafka.sh.lock"
  flock -w 300 9 || die "could not take $KAFKA_STATE/.kafka.sh.lock within 300s"
}

main() {
  mkdir -p "$KAFKA_STATE"
  case "${1:-}" in start | stop | restart) with_lock ;; esac
  case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
  esac
}

main "$@"
