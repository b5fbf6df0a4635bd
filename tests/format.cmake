# The C layout: clang-format --dry-run --Werror over every C source and
# header (tests/format/check.sh; clang-format-16 is installed by run-all.sh).
add_test(NAME format COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/format/check.sh)
set_tests_properties(format PROPERTIES LABELS format TIMEOUT 120)
