#!/usr/bin/env bash
# The README's main command. On a fresh Debian machine it installs and starts
# the stack (PostgreSQL, Redis, Kafka, S3), builds the project into build/,
# migrates and creates the topics, serves the bundled sample OData data,
# starts the four services, runs the pipeline through the REST API, waits for
# it and prints the result, then starts route-api on the graph just built and
# prints one route from a real stop to a virtual city, where to look next and
# the dashboard's address (the orchestrator serves it at /ui/). The services keep running;
#   bash deploy/demo.sh stop
# stops them (and the sample OData server); `bash deploy/stack.sh down` stops
# the stack.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
STACK_DIR=${STACK_DIR:-$ROOT/.stack}
LOGS=$STACK_DIR/logs RUN=$STACK_DIR/run
API_PORT=${ORCHESTRATOR_PORT:-3000}
ROUTE_API_PORT=${ROUTE_API_PORT:-8084}
ODATA_PORT=${DEMO_ODATA_PORT:-28080}
# name:port of each service, in pipeline order.
SERVICES="odata-sync-worker:8081 virtual-entities-generator:8082 graph-builder:8083 orchestrator:$API_PORT"

log() { echo "demo: $*" >&2; }
die() { echo "demo: ERROR: $*" >&2; exit 1; }

# The pid in a pid file when that process still runs.
alive_pid() {
  local pid
  [ -f "$1" ] && pid=$(cat "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

stop_one() {
  local name=$1 pidfile=$RUN/demo-$1.pid pid
  if pid=$(alive_pid "$pidfile"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    log "$name stopped"
  fi
  rm -f "$pidfile"
}

cmd_stop() {
  local s
  for s in route-api orchestrator graph-builder virtual-entities-generator odata-sync-worker odata-server; do
    stop_one "$s"
  done
}

wait_ready() {
  local name=$1 port=$2 pidfile=$RUN/demo-$1.pid
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    alive_pid "$pidfile" >/dev/null || die "$name exited; see $LOGS/$name.log"
    sleep 0.2
  done
  die "$name not ready after 60 s; see $LOGS/$name.log"
}

# Starts one program in the background with its log and pid file.
launch() {
  local name=$1; shift
  stop_one "$name"
  nohup "$@" >"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/demo-$name.pid"
}

build() {
  log "building into $BUILD (Release)"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" >/dev/null
}

start_services() {
  local entry name port
  launch odata-server python3 "$ROOT/tests/odata/odata_server.py" --port "$ODATA_PORT" \
    --data "$ROOT/deploy/sample-data/odata" --quiet
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ODATA_PORT/healthz" >/dev/null && break; sleep 0.1; done
  export ODATA_URL=http://127.0.0.1:$ODATA_PORT/odata/
  export CITIES_FILE=${CITIES_FILE:-$ROOT/deploy/sample-data/cities.csv}
  for entry in $SERVICES; do
    name=${entry%%:*} port=${entry##*:}
    HTTP_PORT=$port launch "$name" "$BUILD/services/$name/$name"
    wait_ready "$name" "$port"
    log "$name ready on :$port (log: $LOGS/$name.log)"
  done
}

run_pipeline() {
  local api=http://127.0.0.1:$API_PORT result version
  log "POST $api/api/v1/workers/execute?wait=120"
  result=$(curl -s -X POST ${API_TOKEN:+-H "Authorization: Bearer $API_TOKEN"} \
    "$api/api/v1/workers/execute?wait=120")
  echo "$result" | python3 -m json.tool
  version=$(redis-cli -u "$REDIS_URL" GET graph:version)
  echo
  echo "graph:version = ${version:-(none)}"
  [ -n "$version" ] && echo "nodes         = $(redis-cli -u "$REDIS_URL" SCARD "graph:$version:nodes")"
  cat <<EOF

Next, try:
  curl -s $api/api/v1/workers | python3 -m json.tool
  curl -s $api/api/v1/workers/pipeline/status
  curl -s '$api/api/v1/runs?limit=5' | python3 -m json.tool
  curl -s -X POST '$api/api/v1/workers/execute?wait=60&force=true'
  curl -s -X POST $api/api/v1/workers/graph-builder/execute?wait=60
  curl -s $api/metrics | grep ^tg_
  redis-cli -u $REDIS_URL GET graph:version
  redis-cli -u $REDIS_URL SMEMBERS graph:$version:nodes | head
  kcat -b $KAFKA_BROKERS -C -e -q -t ${TOPIC_PREFIX:-}pipeline.trigger -f '%k %h\\n%s\\n\\n'
  kcat -b $KAFKA_BROKERS -C -e -q -t ${TOPIC_PREFIX:-}pipeline.graph.completed
  kcat -b $KAFKA_BROKERS -C -e -q -t ${TOPIC_PREFIX:-}pipeline.dead-letter -f '%p/%o %h\\n%s\\n'
Logs: $LOGS/*.log    Stop the services: bash deploy/demo.sh stop
EOF
  echo "$result" | grep -q '"success":true' || die "the pipeline run did not succeed"
}

# route-api starts once a graph exists (its /readyz waits for one), then
# answers a route from a real stop to a virtual city of the dataset just built.
show_route() {
  local api=http://127.0.0.1:$ROUTE_API_PORT dsv origin city
  HTTP_PORT=$ROUTE_API_PORT launch route-api "$BUILD/services/route-api/route-api"
  wait_ready route-api "$ROUTE_API_PORT"
  log "route-api ready on :$ROUTE_API_PORT (log: $LOGS/route-api.log)"
  dsv=$(psql "$DATABASE_URL" -AtXc "SELECT max(dataset_version) FROM virtual_stops")
  origin=$(psql "$DATABASE_URL" -AtXc \
    "SELECT from_stop_id FROM routes WHERE dataset_version = $dsv ORDER BY 1 LIMIT 1")
  city=$(psql "$DATABASE_URL" -AtXc "SELECT v.city_name FROM virtual_stops v
    JOIN virtual_routes r ON r.dataset_version = v.dataset_version AND r.to_stop_id = v.id
    WHERE v.dataset_version = $dsv ORDER BY 1 LIMIT 1")
  [ -n "$origin" ] && [ -n "$city" ] || die "no real stop or virtual city to route between"
  echo
  echo "GET $api/api/v1/routes?from=$origin&toCity=$city&limit=1"
  curl -s -G "$api/api/v1/routes" --data-urlencode "from=$origin" \
    --data-urlencode "toCity=$city" --data-urlencode "limit=1" | python3 -c '
import json, sys
body = json.load(sys.stdin)
if not body.get("success"):
    sys.exit("demo: ERROR: route-api: %s" % body.get("error"))
r = body["routes"][0]
print("graph %s: %g min, %g km, %d transfer(s)" % (
    body["graphVersion"], r["totalMinutes"], r["totalKm"], r["transfers"]))
for leg in r["legs"]:
    print("  %s -> %s  %g min  %s %s" % (leg["fromName"], leg["toName"], leg["minutes"],
                                       leg["transportType"], leg["routeId"] or ""))'
  echo "More: curl -s '$api/api/v1/stops?query=%D1%8F%D0%BA%D1%83%D1%82%D1%81%D0%BA'; curl -s $api/api/v1/graph; curl -s $api/metrics | grep ^route_api"
}

# Last, so it is the line an operator sees: the page shows the run just made.
show_dashboard() {
  echo
  echo "Dashboard: http://127.0.0.1:$API_PORT/ui/${API_TOKEN:+  (actions ask for API_TOKEN)}"
}

main() {
  case "${1:-up}" in
    stop) cmd_stop; return 0 ;;
    up) ;;
    *) echo "usage: $0 [up|stop]" >&2; return 2 ;;
  esac
  bash "$ROOT/deploy/stack.sh" up
  build
  eval "$(bash "$ROOT/deploy/stack.sh" env)"
  export KAFKA_BROKERS DATABASE_URL REDIS_URL S3_ENDPOINT S3_BUCKET S3_ACCESS_KEY S3_SECRET_KEY S3_REGION
  # Also what stack.sh's hooks do, now that pipeline-admin is built.
  "$BUILD/services/pipeline-admin/pipeline-admin" migrate
  "$BUILD/services/pipeline-admin/pipeline-admin" create-topics
  mkdir -p "$LOGS" "$RUN"
  start_services
  run_pipeline
  show_route
  show_dashboard
}

main "$@"
