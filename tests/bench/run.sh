#!/usr/bin/env bash
# The pipeline benchmark (issues 8 and 16), from a fresh clone:
#   bash tests/bench/run.sh [--scales 1,2,4,8,16] [--repeat 3] [--docs|--no-docs]
#   bash tests/bench/run.sh --scales 1 --repeat 1 --wrk-seconds 0 --no-docs   # quick, ~1 minute
# Brings the local stack up, builds the services and the benchmark's OData
# source (tests/bench/odata_pages.c) in Release into build-bench/, then runs
# tests/bench/bench.py with the arguments given (see its --help).
# Results: a table on stdout, build-bench/bench-results.json, and for runs of
# at least two scales and two repeats docs/benchmarks.md + docs/benchmarks-scale.png.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BENCH_BUILD_DIR:-$ROOT/build-bench}
cd "$ROOT"

need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v gnuplot >/dev/null || need_pkgs+=(gnuplot-nox)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench: needs ${need_pkgs[*]} (apt-get install ${need_pkgs[*]})" >&2
    exit 1
  fi
  echo "bench: installing ${need_pkgs[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

bash deploy/stack.sh up >&2

echo "bench: building Release into $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target pipeline-admin odata-sync-worker \
  virtual-entities-generator graph-builder orchestrator odata_pages >/dev/null

TG_BUILD_DIR=$BUILD exec python3 "$ROOT/tests/bench/bench.py" \
  --command "bash tests/bench/run.sh${*:+ $*}" "$@"
