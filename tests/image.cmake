# The container image built and run for real (issue 17), with podman:
# image.tools installs podman, buildah, runc and debootstrap once per
# machine; image.build builds deploy/Dockerfile from the working tree on a
# debian:bookworm-slim made by debootstrap (deploy/image.sh; base and layers
# cached between runs); `image` runs every program from it as Kubernetes
# does, against the local stack. `ctest -R image` selects all three.
set(TG_IMAGE_SH ${CMAKE_SOURCE_DIR}/deploy/image.sh)

add_test(NAME image.tools COMMAND bash ${TG_IMAGE_SH} install)
set_tests_properties(image.tools PROPERTIES
  LABELS image FIXTURES_SETUP image_tools TIMEOUT 900)

add_test(NAME image.build COMMAND bash ${TG_IMAGE_SH} build)
set_tests_properties(image.build PROPERTIES
  LABELS image FIXTURES_REQUIRED image_tools FIXTURES_SETUP image_built TIMEOUT 1800
  ENVIRONMENT "BUILD_DIR=${CMAKE_BINARY_DIR}")

add_test(NAME image
         COMMAND ${TG_PYTEST} -q -x --no-header -p no:cacheprovider
                 ${CMAKE_CURRENT_SOURCE_DIR}/image/image_test.py)
set_tests_properties(image PROPERTIES
  LABELS "image;integration" FIXTURES_REQUIRED "image_tools;image_built" TIMEOUT 900
  ENVIRONMENT "TG_BUILD_DIR=${CMAKE_BINARY_DIR};TG_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
