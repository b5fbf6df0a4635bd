# graph-builder: graph model and validation (unit), the worker against real
# Kafka, PostgreSQL and Redis (integration).
tg_unit_test(graph_model_test graph_builder_core)
tg_unit_test(graph_validate_test graph_builder_core)
tg_integration_test(graph_builder_test)
# Validation under refused allocations: malloc and calloc of the test and of
# graph_builder_core go through the test's wrappers.
tg_unit_test(graph_validate_nomem_test graph_builder_core)
tg_alloc_fail_test(graph_validate_nomem_test)
