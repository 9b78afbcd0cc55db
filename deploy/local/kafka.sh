#!/usr/bin/env bash
# Run a real single-node Apache Kafka (KRaft) broker on loopback for local
# development and the test suite. Jars come from Maven (`mvn`).
# Usage: deploy/local/kafka.sh fetch|start|stop|status|sasl|logs [-f]|reset
set -euo pipefail

VERSION="${CARE_KAFKA_VERSION:-4.1.1}"
LOG4J_VERSION="${CARE_KAFKA_LOG4J_VERSION:-2.24.3}" # what kafka-server 4.1.1 depends on
SLF4J_VERSION=2.0.17
PORT="${CARE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${CARE_KAFKA_CONTROLLER_PORT:-9093}"
# A second listener with TLS and SASL (SCRAM-SHA-256/512, PLAIN), as managed
# Kafka services offer it; 0 turns it off. `kafka.sh sasl` prints how to connect.
SASL_PORT="${CARE_KAFKA_SASL_PORT:-9094}"
SASL_USER="${CARE_KAFKA_SASL_USER:-care}"
SASL_PASSWORD="${CARE_KAFKA_SASL_PASSWORD:-care-local-secret}"
# 1: an authorizer (KRaft's StandardAuthorizer) that denies what no ACL
# allows; the PLAINTEXT listener's anonymous user stays a super user, so
# tools and tests administer through it and SASL users get only their ACLs.
AUTHORIZER="${CARE_KAFKA_AUTHORIZER:-0}"
HEAP="${CARE_KAFKA_HEAP:-512m}"
START_TIMEOUT="${CARE_KAFKA_START_TIMEOUT:-90}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${CARE_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/care/kafka-$VERSION}"
DATA="${CARE_KAFKA_DATA:-$REPO/.cache/kafka}"
[[ "$DATA" == /* ]] || DATA="$PWD/$DATA" # absolute: it is matched in /proc/PID/cmdline
[[ "$CACHE" == /* ]] || CACHE="$PWD/$CACHE"
TLS="$DATA/tls"
PIDFILE="$DATA/broker.pid"
LOG="$DATA/broker.log"

say() { echo "kafka.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

need_tools() {
  local hint="install with: apt-get install openjdk-17-jre-headless maven (or any JDK >= 17 and Maven 3)"
  command -v java >/dev/null || die "java not found; $hint"
  command -v mvn >/dev/null || die "mvn not found; $hint"
  local v major
  v="$(java -version 2>&1 | sed -n 's/.* version "\([0-9][0-9._]*\)".*/\1/p' | head -n1)"
  major="${v%%.*}"; [[ "$major" == 1 ]] && major="$(echo "$v" | cut -d. -f2)" # 1.8 -> 8
  [[ "$major" =~ ^[0-9]+$ && "$major" -ge 17 ]] || die "Java >= 17 required, found '${v:-unknown}'; $hint"
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# Prints the pid of *our* broker if it is alive. Checking the command line
# guards against a stale pid file whose pid was reused by another process.
running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  local cmd; cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *"kafka.Kafka $DATA/server.properties"* ]] || return 1
  echo "$pid"
}

# Port of the running broker (from the config it was started with).
running_port() { sed -n 's#^listeners=PLAINTEXT://127.0.0.1:\([0-9]*\),.*#\1#p' "$DATA/server.properties"; }

fetch() {
  [[ -f "$CACHE/.fetched" ]] && return 0 # marker written last: a half fetch is redone
  need_tools
  local t0=$SECONDS
  mkdir -p "$CACHE"; rm -rf "$CACHE/libs"
  # Kafka 4.1's poms bring slf4j-api 1.7.36 and no slf4j binding (the tarball has one).
  # slf4j 2.x is API-compatible with 1.7 callers, so pin slf4j-api 2 and use
  # log4j's slf4j2 binding: this pair keeps working if a newer Kafka moves to 2.x.
  cat >"$CACHE/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>care.local</groupId><artifactId>kafka-broker-libs</artifactId>
  <version>$VERSION</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>$SLF4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>3.8.1</version>
  </plugin></plugins></build>
</project>
EOF
  # stdout -> stderr: `start` prints only the bootstrap address on stdout.
  (cd "$CACHE" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
    -DoutputDirectory="$CACHE/libs" -DincludeScope=runtime >&2) || die "maven could not fetch kafka $VERSION (see output above)"
  ls "$CACHE"/libs/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka jar in $CACHE/libs"
  echo "$VERSION" >"$CACHE/.fetched"
  say "fetched kafka $VERSION in $((SECONDS - t0))s ($CACHE)"
}

# A self-signed CA and a broker certificate for 127.0.0.1/localhost, made
# once per data dir with openssl; the broker reads them as a PKCS12 keystore.
make_tls() {
  [[ -f "$TLS/broker.p12" ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (needed for the SASL_SSL listener; set CARE_KAFKA_SASL_PORT=0 to skip it)"
  mkdir -p "$TLS"
  (
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=care local CA" -keyout ca.key -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile san.ext -out broker.pem
    openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker -passout pass:care-local -out broker.p12
  ) >"$DATA/tls.log" 2>&1 || { cat "$DATA/tls.log" >&2; die "making the TLS certificates failed"; }
}

write_config() {
  mkdir -p "$DATA"
  local listeners="PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
  local advertised="PLAINTEXT://127.0.0.1:$PORT" map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ "$SASL_PORT" != 0 ]]; then
    make_tls
    listeners+=",SASL_SSL://127.0.0.1:$SASL_PORT"; advertised+=",SASL_SSL://127.0.0.1:$SASL_PORT"; map+=",SASL_SSL:SASL_SSL"
  fi
  cat >"$DATA/server.properties" <<EOF
# Generated by deploy/local/kafka.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$map
log.dirs=$DATA/kraft
# One node: internal topics default to RF 3 / min ISR 2 and would never be
# created (init_transactions would retry COORDINATOR_NOT_AVAILABLE forever).
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Look for transactions past their timeout every second, not every 10 s:
# the fault tests hold one open past a 3 s timeout.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
num.partitions=1
auto.create.topics.enable=true
EOF
  [[ "$AUTHORIZER" == 1 ]] && cat >>"$DATA/server.properties" <<EOF
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS
EOF
  [[ "$SASL_PORT" == 0 ]] || cat >>"$DATA/server.properties" <<EOF
# SASL_SSL: SCRAM users live in the cluster metadata (added at format time,
# or by ensure_scram_user for a data dir formatted before); PLAIN's user is here.
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/broker.p12
ssl.keystore.password=care-local
EOF
  # Properties format: a YAML config would need jackson-dataformat-yaml wiring.
  cat >"$DATA/log4j2.properties" <<'EOF'
name = care-kafka
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
EOF
}

format_storage() {
  [[ -f "$DATA/kraft/meta.properties" ]] && return 0
  local t0=$SECONDS id
  # A cluster id is 16 random bytes in URL-safe base64 without padding; this
  # avoids a JVM start for `StorageTool random-uuid`. One in 64 starts with
  # '-', which StorageTool would read as an option: draw again.
  id=-
  while [[ "$id" == -* ]]; do
    id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  local scram=()
  [[ "$SASL_PORT" == 0 ]] || scram=(--add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]" --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]")
  java -cp "$CACHE/libs/*" kafka.tools.StorageTool format --cluster-id "$id" \
    --config "$DATA/server.properties" "${scram[@]}" >"$DATA/format.log" 2>&1 \
    || { cat "$DATA/format.log" >&2; die "storage format failed"; }
  [[ "$SASL_PORT" == 0 ]] || echo "$SASL_USER" >"$DATA/.scram-user"
  say "formatted $DATA/kraft in $((SECONDS - t0))s"
}

start() {
  local pid
  if pid="$(running_pid)"; then
    [[ "$(running_port)" == "$PORT" ]] || say "warning: broker already running on port $(running_port), not $PORT"
    echo "127.0.0.1:$(running_port)"; return 0
  fi
  fetch; need_tools
  for p in "$PORT" "$CONTROLLER_PORT"; do
    port_open "$p" && die "port $p is already in use by something that is not this broker ($DATA); stop it or set CARE_KAFKA_PORT / CARE_KAFKA_CONTROLLER_PORT"
  done
  write_config; format_storage
  [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.prev" # readiness greps a fresh log
  local t0=$SECONDS
  # 9>&-: do not leak the start lock into the broker (it would hold it forever).
  nohup java -Xms256m "-Xmx$HEAP" -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$DATA/log4j2.properties" \
    -cp "$CACHE/libs/*" kafka.Kafka "$DATA/server.properties" >"$LOG" 2>&1 9>&- </dev/null &
  pid=$!; echo "$pid" >"$PIDFILE"
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "broker exited during startup; last log lines:"; tail -n 40 "$LOG" >&2; rm -f "$PIDFILE"; exit 1
    fi
    if port_open "$PORT" && grep -q "Kafka Server started" "$LOG"; then break; fi
    if (( SECONDS - t0 >= START_TIMEOUT )); then
      say "broker not ready after ${START_TIMEOUT}s; last log lines:"; tail -n 40 "$LOG" >&2
      stop >/dev/null 2>&1 || true; exit 1
    fi
    sleep 0.5
  done
  ensure_scram_user
  say "started kafka $VERSION in $((SECONDS - t0))s (pid $pid, log $LOG)"
  echo "127.0.0.1:$PORT"
}

# A data dir formatted before the SASL listener existed has no SCRAM user:
# add it through the running broker, once.
ensure_scram_user() {
  [[ "$SASL_PORT" == 0 || "$(cat "$DATA/.scram-user" 2>/dev/null)" == "$SASL_USER" ]] && return 0
  local mech
  for mech in SCRAM-SHA-256 SCRAM-SHA-512; do
    java -cp "$CACHE/libs/*" kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$PORT" --alter \
      --add-config "$mech=[password=$SASL_PASSWORD]" --entity-type users --entity-name "$SASL_USER" >>"$DATA/scram.log" 2>&1 \
      || { cat "$DATA/scram.log" >&2; die "adding SCRAM user $SASL_USER failed"; }
  done
  echo "$SASL_USER" >"$DATA/.scram-user"
}

# How a client reaches the SASL_SSL listener, as librdkafka options.
sasl_info() {
  [[ "$SASL_PORT" != 0 ]] || die "the SASL_SSL listener is off (CARE_KAFKA_SASL_PORT=0)"
  echo "bootstrap.servers=127.0.0.1:$SASL_PORT"
  echo "security.protocol=SASL_SSL"
  echo "sasl.mechanism=SCRAM-SHA-256"
  echo "sasl.username=$SASL_USER"
  echo "sasl.password=$SASL_PASSWORD"
  echo "ssl.ca.location=$TLS/ca.pem"
}

stop() {
  local pid i
  pid="$(running_pid)" || { rm -f "$PIDFILE"; say "not running"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do # graceful shutdown: up to ~20s
    kill -0 "$pid" 2>/dev/null || break; sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then say "no exit after 20s, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  rm -f "$PIDFILE"; say "stopped (pid $pid)"
}

status() {
  local pid
  pid="$(running_pid)" || { echo "not running"; return 1; }
  echo "running on 127.0.0.1:$(running_port) (pid $pid)"
}

lock() { # serialise start/stop/reset on one data dir (e.g. parallel test runs)
  mkdir -p "$DATA"; exec 9>"$DATA/.lock"; flock 9
}

case "${1:-}" in
  fetch) fetch ;;
  start) lock; start ;;
  stop) lock; stop ;;
  status) status ;;
  sasl) sasl_info ;;
  logs) [[ -f "$LOG" ]] || die "no log at $LOG"; if [[ "${2:-}" == -f ]]; then tail -n 100 -F "$LOG"; else tail -n 100 "$LOG"; fi ;;
  reset)
    lock; stop
    [[ -n "$DATA" && "$DATA" != / && "$DATA" != "$HOME" ]] || die "refusing to delete '$DATA'"
    # Keep .lock (we hold it); remove everything else.
    find "$DATA" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +; say "deleted $DATA" ;;
  *) echo "usage: $0 fetch|start|stop|status|sasl|logs [-f]|reset" >&2
     echo "env: CARE_KAFKA_VERSION CARE_KAFKA_PORT CARE_KAFKA_CONTROLLER_PORT CARE_KAFKA_SASL_PORT CARE_KAFKA_SASL_USER CARE_KAFKA_SASL_PASSWORD CARE_KAFKA_AUTHORIZER CARE_KAFKA_HEAP CARE_KAFKA_START_TIMEOUT CARE_KAFKA_CACHE CARE_KAFKA_DATA" >&2
     exit 2 ;;
esac
