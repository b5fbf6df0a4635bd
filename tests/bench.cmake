# The benchmark's OData source (tests/bench/odata_pages.c): pre-rendered
# pages served on civetweb; run.sh builds it into build-bench/.
add_executable(odata_pages bench/odata_pages.c)
target_include_directories(odata_pages PRIVATE ${CIVETWEB_INCLUDE})
target_link_libraries(odata_pages PRIVATE ${CIVETWEB_LIB} Threads::Threads)
