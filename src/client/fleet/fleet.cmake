# The Fleet API transport: petal-client as a SuperNode of a Flower SuperLink
# (flwr 1.42: protobuf over HTTP by default, gRPC-rere for older SuperLinks).
# Included by src/client/CMakeLists.txt after petal_client is defined.
set(_petal_fleet_dir ${CMAKE_CURRENT_LIST_DIR})
target_sources(petal_client PRIVATE
  ${_petal_fleet_dir}/records.h
  ${_petal_fleet_dir}/records.cc
  ${_petal_fleet_dir}/objects.h
  ${_petal_fleet_dir}/objects.cc
  ${_petal_fleet_dir}/node_auth.h
  ${_petal_fleet_dir}/node_auth.cc
  ${_petal_fleet_dir}/fleet_api.h
  ${_petal_fleet_dir}/fleet_api.cc
  ${_petal_fleet_dir}/grpc_fleet_api.h
  ${_petal_fleet_dir}/grpc_fleet_api.cc
  ${_petal_fleet_dir}/http_fleet_api.h
  ${_petal_fleet_dir}/http_fleet_api.cc
  ${_petal_fleet_dir}/internal/http_client.h
  ${_petal_fleet_dir}/internal/http_client.cc
  ${_petal_fleet_dir}/content.h
  ${_petal_fleet_dir}/content.cc
  ${_petal_fleet_dir}/fleet_transport.h
  ${_petal_fleet_dir}/fleet_transport.cc
)
# Lets MakeTransport()/StartClient() (client/start_client.cc) offer grpc-rere.
target_compile_definitions(petal_client PUBLIC PETAL_CLIENT_HAVE_FLEET)
target_link_libraries(petal_client
  PUBLIC
    petal::proto_grpc
    OpenSSL::Crypto
  PRIVATE
    OpenSSL::SSL
    nlohmann_json::nlohmann_json
)
