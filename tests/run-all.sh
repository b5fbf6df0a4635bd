#!/usr/bin/env bash
# Every test, from a fresh Debian machine: installs what is missing, starts
# the real local stack (Kafka, PostgreSQL, Redis, S3), builds the project,
# runs unit and integration tests, then the unit tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   bash tests/run-all.sh            # everything
#   TESTS_REGEX=graph bash tests/run-all.sh   # only ctest names matching
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

bash deploy/stack.sh up
# podman, buildah, runc and debootstrap for the image tests (ctest -R image)
bash deploy/image.sh install

if ! python3 -m pytest --version >/dev/null 2>&1; then
  echo "== installing pytest"
  python3 -m pip install --quiet pytest
fi
# every event the services produce is checked against proto/schemas
# (tests/integration/conftest.py); rfc3339-validator lets it check date-times
if ! python3 -c "import jsonschema, rfc3339_validator" >/dev/null 2>&1; then
  echo "== installing jsonschema"
  python3 -m pip install --quiet jsonschema rfc3339-validator
fi
# route-api's paths are checked against networkx's (tests/integration/route_api_test.py)
if ! python3 -c "import networkx" >/dev/null 2>&1; then
  echo "== installing networkx"
  python3 -m pip install --quiet networkx
fi

# The C layout check (ctest -R format) needs clang-format 15+ (InsertBraces).
bash deploy/stack.sh apt clang-format-16

# The dashboard's test drives Debian's headless Chromium with Selenium
# (tests/integration/dashboard_test.py).
bash deploy/stack.sh apt chromium chromium-driver
if ! python3 -c "import selenium" >/dev/null 2>&1; then
  echo "== installing selenium"
  python3 -m pip install --quiet selenium
fi

echo "== building (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
# Again, now that pipeline-admin exists: applies migrations, creates topics.
bash deploy/stack.sh up

echo "== tests"
(cd build && ctest --output-on-failure ${TESTS_REGEX:+-R "$TESTS_REGEX"})

echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -L unit)
