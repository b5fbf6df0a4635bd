# libcommon unit tests: configuration, hashing, backoff, buffers, gzip, URLs, text
# (the city rule, JSON escaping, UTF-8), time, geo and files.
tg_unit_test(config_test)
tg_unit_test(text_test)
tg_unit_test(time_test)
tg_unit_test(sha256_test)
tg_unit_test(backoff_test)
tg_unit_test(buf_test)
tg_unit_test(gzip_test)
tg_unit_test(http_url_test)
tg_unit_test(redis_url_test)
tg_unit_test(trigger_test)
tg_unit_test(proto_schemas_test)
target_compile_definitions(proto_schemas_test PRIVATE
  PROTO_SCHEMAS_DIR="${CMAKE_SOURCE_DIR}/proto/schemas")

# libcommon's layers: every header states its layer, nothing includes upward.
# (A build without Python, such as the image's, builds without this check.)
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME unit.libcommon_layers_test
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/unit/libcommon_layers_test.py
                   ${CMAKE_SOURCE_DIR})
  set_tests_properties(unit.libcommon_layers_test PROPERTIES LABELS unit)
endif()
