#!/usr/bin/env bash
# The integration tests (and, with SANITIZE_SUITES, the reliability suite)
# against services built with AddressSanitizer + UndefinedBehaviorSanitizer,
# on the private fault stack (.stack-faults, ports +1000); then every service
# log is searched for a sanitizer report. Exit 1 on a failing test or a report.
#
#   bash tests/reliability/sanitize.sh
#   ASAN_BUILD_DIR=build-asan SANITIZE_SUITES="integration reliability" bash tests/reliability/sanitize.sh
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/${ASAN_BUILD_DIR:-build-asan}
suites=${SANITIZE_SUITES:-integration}
export STACK_DIR=${STACK_DIR:-$root/.stack-faults} STACK_PORT_OFFSET=${STACK_PORT_OFFSET:-1000}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON >/dev/null || exit 1
nice cmake --build "$build" -j2 >"$build.build.log" 2>&1 || { tail -n 30 "$build.build.log"; exit 1; }
BUILD_DIR=$build bash "$root/deploy/stack.sh" up >/dev/null 2>&1 || { echo "stack up failed"; exit 1; }

# One user of the private stack at a time (the reliability suite takes the
# same lock; it skips it when we hold it for it).
exec 8>"$STACK_DIR/run/reliability.lock"
flock 8
export RELIABILITY_LOCK_HELD=1

rm -rf "$build/test-logs"
# Leaks are reported at a clean exit (SIGTERM); SIGKILLed services report nothing.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
export TG_BUILD_DIR=$build TG_SOURCE_DIR=$root
status=0
for suite in $suites; do
  echo "== $suite tests, services from $build"
  python3 -m pytest -q --no-header -p no:cacheprovider "$root/tests/$suite" || status=1
done

echo "== sanitizer reports in $build/test-logs"
reports=$(grep -l -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' \
  "$build"/test-logs/*.log 2>/dev/null)
if [ -n "$reports" ]; then
  for f in $reports; do
    echo "--- $f"
    grep -m 3 -A 12 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f"
  done
  status=1
else
  echo "none in $(ls "$build"/test-logs/*.log 2>/dev/null | wc -l) service logs"
fi
exit $status
