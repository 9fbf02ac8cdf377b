// File: grpc_server.h
//
// Builds and starts the gRPC server hosting FlowerService with Flower's
// settings (flower-wire.md A.4): send/receive limit max_message_length (2 GiB - 1
// by default; bigger messages are refused with RESOURCE_EXHAUSTED),
// keepalive_time 210 s, max_pings_without_data 0, keepalive_permit_without_calls
// 0, max_concurrent_streams per connection; optional TLS with (CA, cert, key)
// and no client authentication. HTTP/2 BDP probing is off unless
// http2_bdp_probe is set (it lets per-stream windows grow, and then unread
// replies pile up in the server: O(clients x model) memory).
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "server/grpc_service.h"
#include "server/server_config.h"

namespace petal::server {

struct StartedServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port (useful with port 0)
};

// Binds `config.address` and starts serving `service`. Unavailable naming the
// address if it cannot be bound; InvalidArgument/NotFound for unreadable TLS
// files.
absl::StatusOr<StartedServer> StartGrpcServer(const ServerConfig& config, FlowerService& service);

}  // namespace petal::server
