# virtual-entities-generator: name matching and transliteration, the cities
# directory parser, the plan and the flight schedule (unit); the worker
# against the real stack (integration).
tg_unit_test(virtual_names_test virtual_entities_generator_core)
tg_unit_test(virtual_cities_test virtual_entities_generator_core)
tg_unit_test(virtual_plan_test virtual_entities_generator_core)
tg_integration_test(virtual_entities_test)
target_compile_definitions(virtual_cities_test PRIVATE TG_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

# graph-builder and virtual-entities-generator group city names alike, over
# the bundled cities directory and sample OData stops.
tg_unit_test(city_agreement_test virtual_entities_generator_core graph_builder_core)
target_compile_definitions(city_agreement_test PRIVATE TG_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
