# The Fleet API transport: petal-client as a SuperNode of a Flower SuperLink
# (flwr 1.42: protobuf over HTTP by default, gRPC-rere for older SuperLinks).
# Included by src/client/CMakeLists.txt after petal_client is defined.
set(_petal_fleet_dir ${CMAKE_CURRENT_LIST_DIR})
target_sources(petal_client PRIVATE
  ${_petal_fleet_dir}/records.h
  ${_petal_fleet_dir}/records.cc
  ${_petal_fleet_dir}/objects.h
  ${_petal_fleet_dir}/objects.cc
)
target_link_libraries(petal_client
  PUBLIC
    petal::proto_grpc
    OpenSSL::Crypto
  PRIVATE
    nlohmann_json::nlohmann_json
)
