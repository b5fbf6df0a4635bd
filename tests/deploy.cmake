# Deployment checks (issue 7), without Docker or a cluster. deploy.tools
# installs kustomize, docker-compose and kubernetes-validate once per machine
# (tests/deploy/tools.sh, cached outside the repository); the others run
# tests/deploy/deploy_test.py in that tools' venv, one area each.
set(TG_DEPLOY_TOOLS ${CMAKE_CURRENT_SOURCE_DIR}/deploy/tools.sh)

add_test(NAME deploy.tools COMMAND bash ${TG_DEPLOY_TOOLS} install)
set_tests_properties(deploy.tools PROPERTIES
  LABELS deploy FIXTURES_SETUP deploy_tools TIMEOUT 900)

# Areas are the test-name prefixes in deploy_test.py.
foreach(area code compose manifests image docs)
  add_test(NAME deploy.${area}
           COMMAND bash ${TG_DEPLOY_TOOLS} pytest
                   ${CMAKE_CURRENT_SOURCE_DIR}/deploy/deploy_test.py -k "test_${area}_")
  set_tests_properties(deploy.${area} PROPERTIES
    LABELS deploy FIXTURES_REQUIRED deploy_tools TIMEOUT 120
    ENVIRONMENT "TG_BUILD_DIR=${CMAKE_BINARY_DIR};TG_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endforeach()

# The compose one-shot setup (deploy/docker/setup.sh) against the real local
# stack, with the built pipeline-admin: needs `deploy/stack.sh up`.
add_test(NAME deploy.setup
         COMMAND bash ${TG_DEPLOY_TOOLS} pytest ${CMAKE_CURRENT_SOURCE_DIR}/deploy/setup_test.py)
set_tests_properties(deploy.setup PROPERTIES
  LABELS "deploy;integration" FIXTURES_REQUIRED deploy_tools TIMEOUT 300
  ENVIRONMENT "TG_BUILD_DIR=${CMAKE_BINARY_DIR};TG_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
