# route-api: the graph model and the path search (unit), the service against
# real Redis and the whole pipeline (integration).
tg_unit_test(route_graph_test route_api_core)
tg_unit_test(route_paths_test route_api_core)
tg_integration_test(route_api_test)

# The path search timed without HTTP (tests/bench/route_api_bench.py runs it).
add_executable(route_bench bench/route_bench.c)
target_link_libraries(route_bench PRIVATE route_api_core tgcommon)
