# The dashboard (issue 18) in headless Chromium driven by Selenium, against
# the four real services: `ctest -R dashboard`. tests/run-all.sh installs
# chromium, chromium-driver and selenium when they are missing.
add_test(NAME dashboard
         COMMAND ${TG_PYTEST} -q -x --no-header -p no:cacheprovider
                 ${CMAKE_CURRENT_SOURCE_DIR}/integration/dashboard_test.py)
set_tests_properties(dashboard PROPERTIES LABELS "integration;dashboard"
  ENVIRONMENT "TG_BUILD_DIR=${CMAKE_BINARY_DIR};TG_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  TIMEOUT 600)
