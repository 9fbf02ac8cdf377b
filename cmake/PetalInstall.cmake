# Installs Petal's C++ client SDK (install component "sdk"): the headers of
# petal::client and what they include (petal::common, the generated flwr.proto
# headers) under include/petal/, the static libraries, and a CMake package so
# another project can write
#
#   find_package(Petal CONFIG REQUIRED)
#   target_link_libraries(my_app PRIVATE petal::client)
#
#   cmake --install build --component sdk --prefix /opt/petal
#
# The SDK never links LibTorch. Every library petal_client links must be in
# PETAL_SDK_TARGETS (CMake refuses to export a target whose dependency is not
# exported).
option(PETAL_INSTALL_SDK "Install rules and package config for the client SDK" ON)
if(NOT PETAL_INSTALL_SDK)
  return()
endif()

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PETAL_SDK_TARGETS petal_proto petal_proto_grpc petal_common petal_client)
set(PETAL_SDK_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Petal)

foreach(_target IN LISTS PETAL_SDK_TARGETS)
  string(REGEX REPLACE "^petal_" "" _export_name ${_target})
  set_target_properties(${_target} PROPERTIES EXPORT_NAME ${_export_name})
endforeach()

install(TARGETS ${PETAL_SDK_TARGETS}
  EXPORT PetalTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT sdk
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT sdk
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT sdk)

# Headers keep their path below src/ (client/client.h -> include/petal/client/client.h),
# matching the include root the libraries export.
function(petal_install_target_headers target)
  get_target_property(_sources ${target} SOURCES)
  get_target_property(_dir ${target} SOURCE_DIR)
  foreach(_src IN LISTS _sources)
    if(NOT _src MATCHES "\\.h$")
      continue()
    endif()
    if(NOT IS_ABSOLUTE "${_src}")
      set(_src "${_dir}/${_src}")
    endif()
    file(RELATIVE_PATH _rel "${PROJECT_SOURCE_DIR}/src" "${_src}")
    get_filename_component(_rel_dir "${_rel}" DIRECTORY)
    install(FILES "${_src}" DESTINATION include/petal/${_rel_dir} COMPONENT sdk)
  endforeach()
endfunction()
petal_install_target_headers(petal_common)
petal_install_target_headers(petal_client)

# Generated protobuf/gRPC headers (flwr/proto/*.pb.h).
install(DIRECTORY ${PROJECT_BINARY_DIR}/proto/flwr
  DESTINATION include/petal
  COMPONENT sdk
  FILES_MATCHING PATTERN "*.pb.h")

install(EXPORT PetalTargets
  NAMESPACE petal::
  DESTINATION ${PETAL_SDK_CMAKE_DIR}
  COMPONENT sdk)

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/PetalConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/PetalConfig.cmake
  INSTALL_DESTINATION ${PETAL_SDK_CMAKE_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/cmake/PetalConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/cmake/PetalConfig.cmake
  ${PROJECT_BINARY_DIR}/cmake/PetalConfigVersion.cmake
  DESTINATION ${PETAL_SDK_CMAKE_DIR}
  COMPONENT sdk)
