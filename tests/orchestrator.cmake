# orchestrator: the pipeline's rules, the pause table and the API's helpers
# as unit tests; run tracking, retries and the REST API against the real
# stack; and the whole pipeline with all four services.
tg_unit_test(orchestrator_plan_test orchestrator_core)
tg_unit_test(orchestrator_events_test orchestrator_core)
tg_unit_test(orchestrator_retention_test orchestrator_core)
tg_integration_test(orchestrator_test)
tg_integration_test(pipeline_test)
tg_integration_test(unattended_test)
tg_integration_test(retention_test)
tg_integration_test(operator_test)
tg_integration_test(openapi_test)
tg_integration_test(orchestrator_probes_test)
