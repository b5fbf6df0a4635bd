# Integration tests of the foundation: service lifecycle, storage helpers.
tg_integration_test(service_lifecycle_test)
tg_integration_test(storage_test)
add_executable(storage_probe integration/storage_probe.c)
target_link_libraries(storage_probe PRIVATE tgcommon)
