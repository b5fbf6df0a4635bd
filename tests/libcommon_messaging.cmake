# Messaging and the worker loop: envelope parsing, metrics rendering, the
# step deadline's arithmetic, who frees a worker's state, the Kafka round trip
# against the real broker, and a step that hangs past its timeout stopped in
# the worker and retried.
tg_unit_test(envelope_test)
tg_unit_test(metrics_test)
tg_unit_test(worker_deadline_test)
tg_unit_test(worker_state_test)

# A test-only client of tg/kafka.h, driven by integration/kafka_test.py.
add_executable(kafka_roundtrip integration/kafka_roundtrip.c)
target_link_libraries(kafka_roundtrip PRIVATE tgcommon)
tg_integration_test(kafka_test)
tg_integration_test(step_timeout_test)
