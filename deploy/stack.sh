#!/usr/bin/env bash
# Local stack for development, tests and CI, without Docker:
#   PostgreSQL 15 :25432, Redis :26379, Kafka 4.1 (KRaft) :29092,
#   S3 (SeaweedFS, SigV4-checked) :28333 — all on 127.0.0.1.
# Usage: deploy/stack.sh up|down|status|env|apt PKG...
# Everything the servers write (data, logs, pids, generated config) lives in
# $STACK_DIR (default <repo>/.stack); only the built SeaweedFS binary is cached
# per machine so that a fresh clone does not rebuild it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${STACK_DIR:-$ROOT/.stack}
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
RUN=$STACK_DIR/run LOGS=$STACK_DIR/logs CONF=$STACK_DIR/conf

PG_BIN=/usr/lib/postgresql/15/bin
# All ports sit below Linux's ephemeral range (32768-60999): a port in it can
# be taken at random by an outgoing connection and a server then fails to
# bind. STACK_PORT_OFFSET shifts every port, so a second stack (own
# STACK_DIR) can run beside the first, e.g. for fault tests that restart
# servers.
OFF=${STACK_PORT_OFFSET:-0}
PG_PORT=$((25432 + OFF)) REDIS_PORT=$((26379 + OFF)) KAFKA_PORT=$((29092 + OFF))
KAFKA_CTRL_PORT=$((29093 + OFF)) S3_PORT=$((28333 + OFF))
# SeaweedFS internals (master/volume/filer + gRPC), kept next to S3 so nothing
# collides with default ports of other software.
SW_MASTER=$((28340 + OFF)) SW_VOLUME=$((28342 + OFF)) SW_FILER=$((28344 + OFF))
S3_BUCKET=transit-backups S3_ACCESS_KEY=transit-access S3_SECRET_KEY=transit-secret-key S3_REGION=us-east-1

KAFKA_DEPS=$ROOT/deploy/kafka/target/dependency
SEAWEED_MOD=github.com/seaweedfs/seaweedfs
SEAWEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6
if [ -w /var/cache ] || [ -w /var/cache/transit-graph ]; then
  TOOL_CACHE=${TOOL_CACHE:-/var/cache/transit-graph}
else
  TOOL_CACHE=${TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/transit-graph}
fi
WEED=$TOOL_CACHE/bin/weed-$SEAWEED_VERSION

APT_PKGS=(postgresql redis-server redis-tools kcat jq curl ca-certificates
  librdkafka-dev libpq-dev libhiredis-dev libcjson-dev libcurl4-openssl-dev libssl-dev
  libcivetweb-dev pkg-config cmake gcc zlib1g-dev libunistring-dev
  faketime)  # libfaketime: the tests that move a service's clock

log()  { echo "stack: $*" >&2; }
die()  { echo "stack: ERROR: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

# --- generic process helpers ---------------------------------------------------

# Alive = exists and is not a zombie (an orphan may linger unreaped for a moment).
alive() { [ -n "${1:-}" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
pid_of() { if [ -s "$1" ]; then head -n1 "$1"; fi; }
# running PIDFILE PATTERN — print the pid if it is alive AND its command line
# matches (pid files survive a reboot; a reused pid must not count, or be killed).
running() {
  local pid; pid=$(pid_of "$1")
  alive "$pid" && [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$2"* ]] && echo "$pid"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for NAME TIMEOUT LOGFILE CMD... — poll CMD until it succeeds, else show the log.
wait_for() {
  local name=$1 timeout=$2 logfile=$3; shift 3
  local i
  for ((i = 0; i < timeout; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "stack: ERROR: $name did not answer within ${timeout}s; last lines of $logfile:" >&2
  tail -n 40 "$logfile" >&2 2>/dev/null || true
  exit 1
}

# Start a foreground server detached from this shell, recording its pid itself
# (setsid+exec keeps the pid exact and survives the caller's terminal/CI step).
# Servers must never inherit fd 9 (the stack lock), or the lock outlives `up`.
spawn() {
  local pidfile=$1 logfile=$2; shift 2
  # shellcheck disable=SC2016  # $$/$0/$@ belong to the inner shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  local i; for ((i = 0; i < 50; i++)); do [ -s "$pidfile" ] && return 0; sleep 0.1; done
}

# stop_pid NAME PIDFILE PATTERN — TERM, wait up to 60 s, then KILL.
stop_pid() {
  local name=$1 pidfile=$2 pid i
  if pid=$(running "$pidfile" "$3"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then log "$name did not exit on TERM, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
    log "$name stopped"
  fi
  rm -f "$pidfile"
}

# --- installation ------------------------------------------------------------

# apt_install PKG... — installs those of the packages that are missing
# (needs root then); sets APT_INSTALLED=1 when it installed any.
APT_INSTALLED=0
apt_install() {
  local missing=() p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  is_root || die "missing packages (${missing[*]}); run as root or apt-get install them"
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  APT_INSTALLED=1
}

install_packages() {
  local extra=()
  command -v java >/dev/null || extra+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || extra+=(maven)
  apt_install "${APT_PKGS[@]}" "${extra[@]}"
  [ "$APT_INSTALLED" = 1 ] || return 0
  # The package starts a system-wide cluster/daemon on default ports; we run our own.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now redis-server postgresql >/dev/null 2>&1 || true
  fi
}

kafka_jars() {
  # Re-copy when the pom changes; wipe first so stale jars (e.g. old slf4j) don't linger.
  local stamp=$KAFKA_DEPS/.stamp
  if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/deploy/kafka/pom.xml" ]; then return 0; fi
  log "fetching Kafka jars with Maven"
  rm -rf "$KAFKA_DEPS"
  mvn -q -B -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies >"$LOGS/mvn.log" 2>&1 ||
    { tail -n 30 "$LOGS/mvn.log" >&2; die "mvn dependency:copy-dependencies failed"; }
  touch "$stamp"
}

seaweed_binary() {
  [ -x "$WEED" ] && return 0
  command -v go >/dev/null || die "Go (>= 1.26) is needed to build SeaweedFS"
  # `go install` refuses modules with replace directives, so build inside a
  # writable copy of the downloaded module instead.
  log "building SeaweedFS $SEAWEED_VERSION (one-off, cached in $TOOL_CACHE; takes minutes)"
  local dir tmp
  dir=$(go mod download -json "$SEAWEED_MOD@$SEAWEED_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [ -d "$dir" ] || die "go mod download of $SEAWEED_MOD failed"
  mkdir -p "$TOOL_CACHE/bin"
  tmp=$(mktemp -d "$TOOL_CACHE/build.XXXXXX")
  cp -r "$dir/." "$tmp/" && chmod -R u+w "$tmp"
  (cd "$tmp" && GOFLAGS="-mod=mod -buildvcs=false" go build -ldflags=-s -o "$WEED.tmp.$$" ./weed) >"$LOGS/weed-build.log" 2>&1 ||
    { tail -n 30 "$LOGS/weed-build.log" >&2; rm -rf "$tmp"; die "SeaweedFS build failed"; }
  mv "$WEED.tmp.$$" "$WEED"
  rm -rf "$tmp"
}

# --- PostgreSQL ---------------------------------------------------------------

PGDATA=$STACK_DIR/pg PG_SOCK=$RUN/pg
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
pg_pid() { running "$PGDATA/postmaster.pid" postgres; }
psql_admin() { as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres; }

# A clone under e.g. /root (0700) is unreachable for 'postgres': open the
# search (x) bit only, top-down, on the dirs that block it, and say so.
grant_traverse() {
  local path=$1 d="" part
  local -a parts; IFS=/ read -ra parts <<<"${path#/}"
  for part in "${parts[@]}"; do
    d=$d/$part
    if ! runuser -u postgres -- test -x "$d"; then
      chmod o+x "$d"; log "chmod o+x $d (so user postgres can reach $PGDATA)"
    fi
  done
}

start_postgres() {
  mkdir -p "$PGDATA" "$PG_SOCK"; touch "$LOGS/postgres.log"
  # As root, the server must run as 'postgres', which then needs its dirs and
  # a path it can traverse into $STACK_DIR.
  if is_root; then
    chown postgres:postgres "$PGDATA" "$PG_SOCK" "$LOGS/postgres.log"
    grant_traverse "$STACK_DIR"
  fi
  chmod 700 "$PGDATA" "$PG_SOCK"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    log "initdb $PGDATA"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >>"$LOGS/postgres.log" 2>&1
    cat >>"$PGDATA/postgresql.conf" <<EOF
# deploy/stack.sh: private instance, TCP on loopback, admin socket in a 0700 dir
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
# throwaway dev/test data: speed over surviving an OS crash
fsync = off
EOF
  fi
  if ! pg_pid >/dev/null; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$LOGS/postgres.log" -w -t 60 start >/dev/null 9>&- ||
      { tail -n 40 "$LOGS/postgres.log" >&2; die "PostgreSQL did not start"; }
  fi
  wait_for postgres 60 "$LOGS/postgres.log" pg_ready
  # Idempotent: role and db are (re)checked on every up.
  psql_admin <<'EOF'
SELECT 'CREATE ROLE transit LOGIN PASSWORD ''transit'''
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'transit') \gexec
SELECT 'CREATE DATABASE transit OWNER transit'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'transit') \gexec
-- Integration tests create one database per test.
ALTER ROLE transit CREATEDB;
EOF
}

stop_postgres() {
  if pg_pid >/dev/null; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null && log "postgres stopped"
  fi
}

# --- Redis --------------------------------------------------------------------

REDIS_PID=$RUN/redis.pid
# (Outputs are captured, not piped into grep -q: with pipefail, an early grep
# exit makes the writer die of SIGPIPE and the probe "fail" on big outputs.)
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

start_redis() {
  running "$REDIS_PID" redis-server >/dev/null && { wait_for redis 30 "$LOGS/redis.log" redis_ready; return 0; }
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by a process this script did not start"
  mkdir -p "$STACK_DIR/redis"
  cat >"$CONF/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
daemonize yes
pidfile $REDIS_PID
logfile $LOGS/redis.log
dir $STACK_DIR/redis
appendonly yes
save 60 1
EOF
  redis-server "$CONF/redis.conf" 9>&-
  wait_for redis 30 "$LOGS/redis.log" redis_ready
}

# --- Kafka (KRaft, combined broker+controller) ---------------------------------

KAFKA_PID=$RUN/kafka.pid KAFKA_DATA=$STACK_DIR/kafka
kafka_ready() { [[ "$(kcat -L -b "127.0.0.1:$KAFKA_PORT" -m 3 2>/dev/null)" == *"broker 1 at"* ]]; }
KAFKA_JAVA=(java -Xms256m -Xmx512m -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.xml" -Dkafka.logs.dir="$LOGS/kafka"
  -cp "$KAFKA_DEPS/*")

start_kafka() {
  running "$KAFKA_PID" kafka.Kafka >/dev/null && { wait_for kafka 120 "$LOGS/kafka/server.log" kafka_ready; return 0; }
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by a process this script did not start"
  kafka_jars
  mkdir -p "$KAFKA_DATA" "$LOGS/kafka"
  cat >"$CONF/kafka.properties" <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CTRL_PORT
log.dirs=$KAFKA_DATA
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  # Kafka 4 has no ZooKeeper: storage is formatted once as a standalone
  # (single-voter, dynamic quorum) controller with a fresh cluster id.
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    local id; id=$("${KAFKA_JAVA[@]}" kafka.tools.StorageTool random-uuid)
    "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --standalone -t "$id" -c "$CONF/kafka.properties" \
      >>"$LOGS/kafka/format.log" 2>&1 || { tail -n 20 "$LOGS/kafka/format.log" >&2; die "kafka storage format failed"; }
  fi
  spawn "$KAFKA_PID" "$LOGS/kafka/stdout.log" "${KAFKA_JAVA[@]}" kafka.Kafka "$CONF/kafka.properties"
  wait_for kafka 120 "$LOGS/kafka/server.log" kafka_ready
}

# --- S3 (SeaweedFS: master+volume+filer+S3 gateway in one process) -------------

S3_PID=$RUN/s3.pid S3_URL=http://127.0.0.1:$S3_PORT
# s3_code SECRET [curl args...] — HTTP status of a SigV4-signed request.
s3_code() {
  local secret=$1; shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$secret" "$@" || true
}
# Ready = the S3 API answers signed requests AND the volume server has
# registered with the master (before that, reads of stored objects fail 500).
s3_ready() {
  [ "$(s3_code "$S3_SECRET_KEY" "$S3_URL/")" = 200 ] &&
    [[ "$(curl -sf --max-time 5 "http://127.0.0.1:$SW_MASTER/dir/status")" == *"\"Url\":\"127.0.0.1:$SW_VOLUME\""* ]]
}

start_s3() {
  running "$S3_PID" weed >/dev/null && { wait_for s3 120 "$LOGS/s3.log" s3_ready; return 0; }
  port_open "$S3_PORT" && die "port $S3_PORT is taken by a process this script did not start"
  seaweed_binary
  mkdir -p "$STACK_DIR/s3"
  # Every port is pinned (gRPC defaults to port+10000, which would overflow),
  # unused extras are off, logs go to one file. Only its gRPC unix sockets are
  # hard-wired by SeaweedFS to /tmp/seaweedfs-*-grpc-<port>.sock.
  spawn "$S3_PID" "$LOGS/s3.log" "$WEED" -logtostderr=true server \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$STACK_DIR/s3" \
    -master.port=$SW_MASTER -master.port.grpc=$((SW_MASTER + 1)) -master.telemetry=false \
    -master.volumeSizeLimitMB=64 -volume.max=64 \
    -volume.port=$SW_VOLUME -volume.port.grpc=$((SW_VOLUME + 1)) -volume.preStopSeconds=1 \
    -filer -filer.port=$SW_FILER -filer.port.grpc=$((SW_FILER + 1)) -filer.localSocket="$RUN/sw-filer.sock" \
    -s3 -s3.port=$S3_PORT -s3.port.grpc=$((SW_FILER + 2)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.localSocket="$RUN/sw-s3.sock" -s3.config="$ROOT/deploy/s3/s3.json"
  wait_for s3 120 "$LOGS/s3.log" s3_ready
  local code; code=$(s3_code "$S3_SECRET_KEY" -I "$S3_URL/$S3_BUCKET")
  if [ "$code" != 200 ]; then
    code=$(s3_code "$S3_SECRET_KEY" -X PUT "$S3_URL/$S3_BUCKET")
    [ "$code" = 200 ] || die "creating bucket $S3_BUCKET failed (HTTP $code)"
  fi
}

# --- commands -----------------------------------------------------------------

print_env() {
  cat <<EOF
export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export DATABASE_URL=postgresql://transit:transit@127.0.0.1:$PG_PORT/transit
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export S3_ENDPOINT=$S3_URL
export S3_BUCKET=$S3_BUCKET
export S3_ACCESS_KEY=$S3_ACCESS_KEY
export S3_SECRET_KEY=$S3_SECRET_KEY
export S3_REGION=$S3_REGION
EOF
}

run_hooks() {
  local admin=$BUILD_DIR/services/pipeline-admin/pipeline-admin
  if [ ! -x "$admin" ]; then
    log "note: $admin not built yet; skipped 'migrate' and 'create-topics'"
    return 0
  fi
  eval "$(print_env)"
  local cmd
  for cmd in migrate create-topics; do
    log "pipeline-admin $cmd"
    "$admin" "$cmd" || die "'pipeline-admin $cmd' failed (exit $?); the servers stay up"
  done
}

# One `up`/`down` at a time (parallel CI steps, two terminals).
take_lock() {
  exec 9>"$RUN/lock"
  flock -w 600 9 || die "another deploy/stack.sh still holds $RUN/lock after 10 min"
}

cmd_up() {
  mkdir -p "$RUN" "$LOGS" "$CONF"
  take_lock
  SECONDS=0  # timings below count from here (after any wait for the lock)
  install_packages
  start_postgres; log "postgres up on 127.0.0.1:$PG_PORT (${SECONDS}s)"
  start_redis;    log "redis up on 127.0.0.1:$REDIS_PORT (${SECONDS}s)"
  start_kafka;    log "kafka up on 127.0.0.1:$KAFKA_PORT (${SECONDS}s)"
  start_s3;       log "s3 up on $S3_URL, bucket $S3_BUCKET (${SECONDS}s)"
  run_hooks
  log "stack up in ${SECONDS}s; logs in $LOGS"
}

cmd_down() {
  [ -d "$RUN" ] || { log "nothing to stop ($STACK_DIR has no run dir)"; return 0; }
  take_lock
  stop_pid s3 "$S3_PID" weed
  stop_pid kafka "$KAFKA_PID" kafka.Kafka
  stop_pid redis "$REDIS_PID" redis-server
  stop_postgres
}

# One line per component; exit status 1 if any is down.
cmd_status() {
  local down=0 pid bad
  line() { printf '%-9s %-5s %s\n' "$1" "$2" "$3"; [ "$2" = up ] || down=1; }
  pid=$(pg_pid || true)
  if [ -n "$pid" ] && pg_ready; then line postgres up "127.0.0.1:$PG_PORT pid $pid"; else line postgres down "127.0.0.1:$PG_PORT"; fi
  pid=$(running "$REDIS_PID" redis-server || true)
  if [ -n "$pid" ] && redis_ready 2>/dev/null; then line redis up "127.0.0.1:$REDIS_PORT pid $pid"; else line redis down "127.0.0.1:$REDIS_PORT"; fi
  pid=$(running "$KAFKA_PID" kafka.Kafka || true)
  if [ -n "$pid" ] && kafka_ready 2>/dev/null; then line kafka up "127.0.0.1:$KAFKA_PORT pid $pid"; else line kafka down "127.0.0.1:$KAFKA_PORT"; fi
  pid=$(running "$S3_PID" weed || true)
  if [ -n "$pid" ] && s3_ready; then
    bad=$(s3_code wrong-secret "$S3_URL/$S3_BUCKET")
    if [ "$bad" = 403 ]; then line s3 up "$S3_URL pid $pid, bad signature refused (HTTP 403)"
    else line s3 BROKEN "$S3_URL pid $pid, bad signature NOT refused (HTTP $bad)"; fi
  else line s3 down "$S3_URL"; fi
  return $down
}

main() {
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) print_env ;;
    apt) shift; apt_install "$@" ;;  # e.g. the dashboard test's chromium
    *) echo "usage: $0 up|down|status|env|apt PKG..." >&2; return 2 ;;
  esac
}
# On one line so bash has read it all before running: editing this file while
# an `up` is waiting for the lock cannot change what that `up` executes.
main "$@"; exit $?
