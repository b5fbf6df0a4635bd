# libcommon unit tests: configuration, hashing, backoff, buffers, URLs, text
# (the city rule, JSON escaping, UTF-8), time, geo and files.
tg_unit_test(config_test)
tg_unit_test(text_test)
tg_unit_test(time_test)
tg_unit_test(sha256_test)
tg_unit_test(backoff_test)
tg_unit_test(buf_test)
tg_unit_test(http_url_test)
tg_unit_test(redis_url_test)
tg_unit_test(proto_schemas_test)
target_compile_definitions(proto_schemas_test PRIVATE
  PROTO_SCHEMAS_DIR="${CMAKE_SOURCE_DIR}/proto/schemas")
