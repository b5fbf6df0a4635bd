# Reliability: faults (SIGKILLed workers, restarted Kafka/PostgreSQL/Redis,
# S3 down, a misbehaving OData source), bad input and a hostile REST client,
# against a private second stack (.stack-faults, ports +1000) that the suite
# starts itself. RELIABILITY_ROUNDS (default 4) sets the kill rounds per
# worker; docs/reliability.md has the figures and the longer variant.
add_test(NAME reliability
         COMMAND ${TG_PYTEST} -q --no-header -p no:cacheprovider -rfE --durations=8
                 ${CMAKE_CURRENT_SOURCE_DIR}/reliability)
set_tests_properties(reliability PROPERTIES LABELS reliability RUN_SERIAL TRUE
  ENVIRONMENT "TG_BUILD_DIR=${CMAKE_BINARY_DIR};TG_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  TIMEOUT 1800)
