# odata-sync-worker: value parsing and hashing, the OData client's URLs and
# answers, mapping and validation (unit); the worker against the stack and
# the OData test server (integration).
tg_unit_test(odata_records_test odata_sync_worker_core)
tg_unit_test(odata_client_test odata_sync_worker_core)
tg_unit_test(odata_validate_test odata_sync_worker_core)
tg_unit_test(odata_spool_test odata_sync_worker_core)
tg_integration_test(odata_sync_test)
# Refused allocations: malloc, calloc, realloc and strdup of the test and of
# odata_sync_worker_core go through the test's wrappers.
tg_unit_test(odata_nomem_test odata_sync_worker_core)
tg_alloc_fail_test(odata_nomem_test)
