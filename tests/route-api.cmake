# route-api: the graph model and the path search (unit), the service against
# real Redis and the whole pipeline (integration).
tg_unit_test(route_graph_test route_api_core)
tg_unit_test(route_paths_test route_api_core)
tg_integration_test(route_api_test)
