// File: grpc_fleet_api.h
//
// The Fleet API over gRPC-rere: unary calls /flwr.proto.Fleet/<Rpc> on one
// channel, each carrying the node's signed metadata
// (flwr-public-key-bin, flwr-timestamp, flwr-signature-bin). This is what
// SuperLinks before flwr 1.40 serve on their Fleet address (default 9092), and
// what flwr >= 1.40 serves when started with FLWR_INTERNAL_GRPC_FLEET_API=1.
// Thread-safe (see fleet_api.h).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "client/fleet/fleet_api.h"
#include "client/fleet/node_auth.h"
#include "client/transport.h"

namespace petal::client::fleet {

// `options` gives the address, TLS settings and message-size limit (see
// client/channel.h); `key` (borrowed, must outlive the API) signs every call.
// InvalidArgument/NotFound for bad options or unreadable root certificates.
absl::StatusOr<FleetApiPtr> MakeGrpcFleetApi(const ConnectionOptions& options, const NodeKey& key);

}  // namespace petal::client::fleet
