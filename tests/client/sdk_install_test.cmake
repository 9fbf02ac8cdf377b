# ctest: install the client SDK into a fresh prefix, then configure, build and
# run the example application (examples/) against the installed package only.
#
#   cmake -DPETAL_BINARY_DIR=... -DPETAL_SOURCE_DIR=... -DWORK_DIR=... \
#         -DGENERATOR=... -DCXX_COMPILER=... [-DCXX_LAUNCHER=...] -P sdk_install_test.cmake
cmake_minimum_required(VERSION 3.25)

foreach(_var PETAL_BINARY_DIR PETAL_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "sdk_install_test: -D${_var}=... is required")
  endif()
endforeach()

function(run what)
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err TIMEOUT 600)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${_rc}):\n${_out}\n${_err}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

set(_prefix ${WORK_DIR}/prefix)
set(_build ${WORK_DIR}/example-build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

run("install (component sdk)"
  ${CMAKE_COMMAND} --install ${PETAL_BINARY_DIR} --component sdk --prefix ${_prefix})

# The installed tree: headers under include/petal, static libraries, package files.
file(GLOB _config_dirs ${_prefix}/lib*/cmake/Petal)
list(LENGTH _config_dirs _n)
if(NOT _n EQUAL 1)
  message(FATAL_ERROR "expected one lib*/cmake/Petal in ${_prefix}, found: ${_config_dirs}")
endif()
get_filename_component(_libdir ${_config_dirs} DIRECTORY)
get_filename_component(_libdir ${_libdir} DIRECTORY)
foreach(_file
    include/petal/client/client.h
    include/petal/client/start_client.h
    include/petal/client/transport.h
    include/petal/client/grpc_bidi_transport.h
    include/petal/common/ndarray.h
    include/petal/common/serde.h
    include/petal/flwr/proto/transport.pb.h
    include/petal/flwr/proto/transport.grpc.pb.h)
  if(NOT EXISTS ${_prefix}/${_file})
    message(FATAL_ERROR "not installed: ${_file}")
  endif()
endforeach()
foreach(_lib petal_client petal_common petal_proto petal_proto_grpc)
  if(NOT EXISTS ${_libdir}/lib${_lib}.a)
    message(FATAL_ERROR "not installed: ${_libdir}/lib${_lib}.a")
  endif()
endforeach()
foreach(_file PetalConfig.cmake PetalConfigVersion.cmake PetalTargets.cmake)
  if(NOT EXISTS ${_config_dirs}/${_file})
    message(FATAL_ERROR "not installed: ${_config_dirs}/${_file}")
  endif()
endforeach()
file(GLOB _targets_files ${_config_dirs}/PetalTargets*.cmake)
foreach(_f IN LISTS _targets_files)
  file(READ ${_f} _text)
  if(_text MATCHES "[Tt]orch")
    message(FATAL_ERROR "${_f} mentions Torch: the SDK must not depend on LibTorch")
  endif()
  if(_text MATCHES "${PETAL_SOURCE_DIR}/src")
    message(FATAL_ERROR "${_f} points into the source tree")
  endif()
endforeach()

set(_launcher "")
if(CXX_LAUNCHER)
  set(_launcher -DCMAKE_CXX_COMPILER_LAUNCHER=${CXX_LAUNCHER})
endif()
run("configure the example against the installed package"
  ${CMAKE_COMMAND} -S ${PETAL_SOURCE_DIR}/examples -B ${_build} -G ${GENERATOR}
  -DCMAKE_PREFIX_PATH=${_prefix} -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release
  ${_launcher})
run("build the example" ${CMAKE_COMMAND} --build ${_build} -j 2)

execute_process(COMMAND ${_build}/quadratic_client --help
  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err TIMEOUT 60)
if(NOT _rc EQUAL 0 OR NOT _out MATCHES "Usage: quadratic_client")
  message(FATAL_ERROR "quadratic_client --help: rc=${_rc}\n${_out}\n${_err}")
endif()
# Nothing listens on port 1: the SDK's transport must retry within its bound
# and exit 2 with the reason.
execute_process(COMMAND ${_build}/quadratic_client --server 127.0.0.1:1 --max-attempts 2
                        --initial-backoff 10ms --name sdk-smoke
  RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err TIMEOUT 60)
if(NOT _rc EQUAL 2 OR NOT _err MATCHES "giving up on 127.0.0.1:1 after 2 failed attempt")
  message(FATAL_ERROR "quadratic_client against a closed port: rc=${_rc}\n${_out}\n${_err}")
endif()
message(STATUS "the installed SDK builds and runs an external application")
