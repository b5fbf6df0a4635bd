#!/usr/bin/env bash
# Benchmark of one OData sync (issue 3): a generated dataset
# (tests/odata/gen_dataset.py: 5,000 stops, 10,000 routes - the generator
# needs 2 x (stops - 1) for a connected network - and 20,000 flights) served by tests/odata/odata_server.py in pages of 1,000, synced by the real
# worker against the local stack; then the same rows loaded with psql \copy
# for comparison. Needs `bash deploy/stack.sh up` and a build.
#
#   BUILD_DIR=build bash services/odata-sync-worker/bench.sh [STOPS ROUTES FLIGHTS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${BUILD_DIR:-$root/build}" && pwd)
stops=${1:-5000} routes=${2:-10000} flights=${3:-20000}
cd "$root"
eval "$(bash deploy/stack.sh env)"
admin_url=$DATABASE_URL
tmp=$(mktemp -d)
db=bench_odata_$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP DATABASE IF EXISTS ${db}_copy WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
[ -n "${KEEP_LOG:-}" ] && trap 'cp "$tmp/worker.log" /tmp/odata-bench-worker.log; cleanup' EXIT
ms() { date +%s%3N; }

python3 tests/odata/gen_dataset.py --out "$tmp/data" --stops "$stops" --routes "$routes" \
  --flights "$flights" >/dev/null
psql "$admin_url" -qc "CREATE DATABASE $db" -c "CREATE DATABASE ${db}_copy"
export DATABASE_URL=${admin_url%/*}/$db TOPIC_PREFIX=bench$$. TOPIC_PARTITIONS=1 LOG_LEVEL=info HTTP_PORT=0
"$build/services/pipeline-admin/pipeline-admin" migrate >/dev/null 2>&1
"$build/services/pipeline-admin/pipeline-admin" create-topics >/dev/null 2>&1
DATABASE_URL=${admin_url%/*}/${db}_copy "$build/services/pipeline-admin/pipeline-admin" migrate >/dev/null 2>&1

python3 tests/odata/odata_server.py --port 0 --port-file "$tmp/port" --data "$tmp/data" \
  --page-size 1000 --quiet 2>/dev/null & pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
ODATA_URL=http://127.0.0.1:$(cat "$tmp/port")/odata/ \
  "$build/services/odata-sync-worker/odata-sync-worker" >"$tmp/worker.log" 2>&1 & pids+=($!)
for _ in $(seq 300); do grep -q "Worker ready" "$tmp/worker.log" && break; sleep 0.1; done

echo '{"schema":"pipeline.trigger","schemaVersion":1,"eventId":"bench-'$$'","runId":"bench-'$$'","sourceId":"default","attempt":1,"producedAt":"2026-01-01T00:00:00.000Z","correlationId":"bench","payload":{"trigger":"kafka"}}' |
  kcat -P -b "$KAFKA_BROKERS" -t "${TOPIC_PREFIX}pipeline.trigger" -k default
done_json=$(timeout 120 kcat -C -b "$KAFKA_BROKERS" -t "${TOPIC_PREFIX}pipeline.odata-sync.completed" -o beginning -c 1 -q)

# Phase times from the worker's log (one JSON line each, ISO times).
phase() { grep -F "\"message\":\"$1" "$tmp/worker.log" | head -1 | sed 's/.*"time":"\([^"]*\)".*/\1/'; }
span() { python3 -c 'import sys,datetime as d; f=lambda s: d.datetime.fromisoformat(s.replace("Z","+00:00")); print(int((f(sys.argv[2])-f(sys.argv[1])).total_seconds()*1000))' "$1" "$2"; }
t_fetch=$(span "$(phase 'Step 1')" "$(phase 'Fetched')")
t_hash=$(span "$(phase 'Step 2')" "$(phase 'Data hash')")
t_validate=$(span "$(phase 'Step 3')" "$(phase 'Step 4')")
t_save=$(span "$(phase 'Step 4')" "$(phase 'Dataset version created')")
t_total=$(echo "$done_json" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["payload"]["executionTimeMs"]))')
counts=$(echo "$done_json" | python3 -c 'import json,sys; c=json.load(sys.stdin)["payload"]["counts"]; print("%d stops, %d routes, %d flights" % (c["stops"], c["routes"], c["flights"]))')

# The same rows through psql \copy, in one transaction, into a fresh schema.
for t in stops routes flights; do
  psql "$DATABASE_URL" -qc "\\copy (SELECT * FROM $t WHERE dataset_version = 1) TO '$tmp/$t.tsv'"
done
cat >"$tmp/load.sql" <<SQL
BEGIN;
INSERT INTO datasets (version, data_hash) VALUES (1, repeat('0', 64));
\\copy stops FROM '$tmp/stops.tsv'
\\copy routes FROM '$tmp/routes.tsv'
\\copy flights FROM '$tmp/flights.tsv'
COMMIT;
SQL
t0=$(ms); psql "${admin_url%/*}/${db}_copy" -q -v ON_ERROR_STOP=1 -f "$tmp/load.sql"; t_copy=$(( $(ms) - t0 ))

echo "odata-sync-worker benchmark ($counts, pages of 1000)"
echo "  fetch ${t_fetch} ms, hash ${t_hash} ms, validate ${t_validate} ms, save ${t_save} ms"
echo "  step total (executionTimeMs) ${t_total} ms"
echo "  psql \\copy of the same rows ${t_copy} ms (save / \\copy = $(python3 -c "print(round($t_save/max($t_copy,1),2))"))"
