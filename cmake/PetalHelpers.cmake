# Small helpers in the spirit of absl_cc_library / leveldb_test.
#
#   petal_cc_library(NAME common SRCS a.cc HDRS a.h DEPS absl::status [TESTONLY])
#     -> target petal_common, alias petal::common, include root src/.
#   petal_cc_test(NAME common_test SRCS a_test.cc DEPS petal::common [LABEL sanitize])
#     -> one gtest binary registered with gtest_discover_tests. A test carries at
#        most one label of its own (gtest_discover_tests in CMake 3.25 cannot pass
#        a list); module labels come from each tests/<folder>'s LABELS directory
#        property. Labels in use: sanitize (rebuilt and run under ASan+UBSan),
#        movielens (needs PETAL_DATA_DIR), interop (real Flower/numpy).

option(PETAL_WERROR "Treat compiler warnings in Petal's own code as errors" OFF)

set(PETAL_WARNING_FLAGS -Wall -Wextra -Wpedantic -Wno-unused-parameter)
if(PETAL_WERROR)
  list(APPEND PETAL_WARNING_FLAGS -Werror)
endif()

function(petal_cc_library)
  cmake_parse_arguments(PETAL_LIB "TESTONLY" "NAME" "SRCS;HDRS;DEPS;PRIVATE_DEPS" ${ARGN})
  if(PETAL_LIB_TESTONLY AND NOT PETAL_BUILD_TESTS)
    return()
  endif()
  set(_target "petal_${PETAL_LIB_NAME}")
  add_library(${_target} ${PETAL_LIB_SRCS} ${PETAL_LIB_HDRS})
  add_library(petal::${PETAL_LIB_NAME} ALIAS ${_target})
  target_include_directories(${_target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>
    $<INSTALL_INTERFACE:include/petal>)
  target_compile_options(${_target} PRIVATE ${PETAL_WARNING_FLAGS})
  target_link_libraries(${_target} PUBLIC ${PETAL_LIB_DEPS} PRIVATE ${PETAL_LIB_PRIVATE_DEPS})
  set_target_properties(${_target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

function(petal_cc_binary)
  cmake_parse_arguments(PETAL_BIN "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${PETAL_BIN_NAME} ${PETAL_BIN_SRCS})
  target_compile_options(${PETAL_BIN_NAME} PRIVATE ${PETAL_WARNING_FLAGS})
  target_link_libraries(${PETAL_BIN_NAME} PRIVATE ${PETAL_BIN_DEPS})
endfunction()

# Tests labelled "sanitize" are what scripts/test.sh rebuilds and runs under
# ASan + UBSan; this target builds exactly those.
if(PETAL_BUILD_TESTS AND NOT TARGET petal_sanitize_tests)
  add_custom_target(petal_sanitize_tests)
endif()

function(petal_cc_test)
  cmake_parse_arguments(PETAL_TEST "" "NAME;TIMEOUT;LABEL" "SRCS;DEPS" ${ARGN})
  if(NOT PETAL_BUILD_TESTS)
    return()
  endif()
  if(NOT PETAL_TEST_TIMEOUT)
    set(PETAL_TEST_TIMEOUT 300)
  endif()
  add_executable(${PETAL_TEST_NAME} ${PETAL_TEST_SRCS})
  target_compile_options(${PETAL_TEST_NAME} PRIVATE ${PETAL_WARNING_FLAGS})
  target_link_libraries(${PETAL_TEST_NAME} PRIVATE ${PETAL_TEST_DEPS} GTest::gmock GTest::gtest_main)
  if(PETAL_TEST_LABEL STREQUAL "sanitize")
    add_dependencies(petal_sanitize_tests ${PETAL_TEST_NAME})
  endif()
  set(_props TIMEOUT ${PETAL_TEST_TIMEOUT})
  if(PETAL_TEST_LABEL)
    list(APPEND _props LABELS ${PETAL_TEST_LABEL})
  endif()
  gtest_discover_tests(${PETAL_TEST_NAME}
    PROPERTIES ${_props}
    DISCOVERY_TIMEOUT 60)
endfunction()

# A Python test run by ctest with the interop interpreter (PETAL_PYTHON).
#   petal_py_test(NAME npy_interop SCRIPT tests/interop/npy_interop.py ARGS ... LABELS interop)
function(petal_py_test)
  cmake_parse_arguments(PETAL_PY "" "NAME;SCRIPT;TIMEOUT" "ARGS;LABELS;ENV" ${ARGN})
  if(NOT PETAL_BUILD_TESTS OR NOT PETAL_INTEROP_TESTS)
    return()
  endif()
  if(NOT PETAL_PY_TIMEOUT)
    set(PETAL_PY_TIMEOUT 600)
  endif()
  add_test(NAME ${PETAL_PY_NAME}
    COMMAND "${PETAL_PYTHON}" "${PROJECT_SOURCE_DIR}/${PETAL_PY_SCRIPT}" ${PETAL_PY_ARGS})
  set_tests_properties(${PETAL_PY_NAME} PROPERTIES
    LABELS "interop;${PETAL_PY_LABELS}" TIMEOUT ${PETAL_PY_TIMEOUT}
    ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1;PETAL_SOURCE_DIR=${PROJECT_SOURCE_DIR};PETAL_BINARY_DIR=${PROJECT_BINARY_DIR};${PETAL_PY_ENV}")
endfunction()
