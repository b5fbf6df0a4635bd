# Soak: months of 6-hourly scheduled runs in simulated time (libfaketime),
# the four real services against the real stack, invariants checked after
# every simulated day. SOAK_DAYS (default 90) sets the length; docs/soak.md
# has the figures and the 365-day variant.
add_test(NAME soak
         COMMAND ${TG_PYTEST} -q --no-header -p no:cacheprovider -rfE -s
                 ${CMAKE_CURRENT_SOURCE_DIR}/soak/soak_test.py)
set_tests_properties(soak PROPERTIES LABELS soak RUN_SERIAL TRUE
  ENVIRONMENT "TG_BUILD_DIR=${CMAKE_BINARY_DIR};TG_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  TIMEOUT 3600)
