// File: fleet_transport.h
//
// The Fleet API transport: a petal::client::Client served as a SuperNode of a
// Flower SuperLink (flower-superlink), next to or instead of Python
// flower-supernodes. Selected with ConnectionOptions::transport = kGrpcRere
// ("grpc-rere") through MakeTransport()/StartClient(); FleetOptions add what is
// specific to the Fleet API (which wire binding, heartbeat interval, keys).
//
//   ConnectionOptions options;
//   options.server_address = "127.0.0.1:8000";      // flwr 1.42: the SuperLink's --port
//   options.transport = TransportKind::kGrpcRere;
//   options.insecure = true;                        // like flower-supernode --insecure
//   FleetOptions fleet;                             // api = http (flwr 1.42's default)
//   PETAL_ASSIGN_OR_RETURN(TransportPtr t, MakeFleetTransport(options, fleet));
//   absl::Status s = t->Run(client);                // until Stop() or the retry budget is spent
//
// A run, as flwr 1.42's own SuperNode does it (docs/fleet.md):
//   1. RegisterNode with a fresh SECP384R1 public key (skipped with a
//      pre-registered key, FleetOptions::auth_private_key), then ActivateNode
//      with the heartbeat interval: the SuperLink answers the node id.
//   2. A heartbeat thread sends SendNodeHeartbeat every
//      (interval - 5 s) * U(0.7, 0.9), retrying with backoff on transient errors.
//   3. The main loop calls PullMessages; with nothing pending it waits
//      poll_interval (interruptibly). For an instruction it pulls every object
//      of its tree (object_available=false: retry after 1 s doubling to 10 s,
//      +-20% jitter, at most 500 tries and 7200 s), confirms receipt, rebuilds
//      the Message, calls the Client (content.h), and pushes the reply
//      (PushMessages with the object tree, then PushObject for each object the
//      SuperLink asks for, with its session id).
//   4. On Stop(): DeactivateNode, then UnregisterNode if the node registered itself.
// Transient failures (SuperLink down or restarting, HTTP 502/503/504,
// timeouts) are retried call by call with ConnectionOptions::retry. When the
// SuperLink no longer knows the node (HTTP 401 / UNAUTHENTICATED, or a
// heartbeat answered success=false: it restarted with fresh state) the session
// ends and a new one registers again with the same key after a backoff; a
// SuperLink that kept its state recognizes the key ("already in use") and
// reactivates the same node id. Instruction-level failures become Flower error
// replies and never end the session. GetRun/GetFab are not called: a Petal
// node runs its own compiled app, not the run's FAB.
//
// Thread safety: as for every Transport (client/transport.h). Run() uses the
// calling thread for the Client and one extra thread for heartbeats.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/fleet/fleet_api.h"
#include "client/fleet/node_auth.h"
#include "client/fleet/objects.h"
#include "client/transport.h"
#include "common/config.h"

namespace petal::client {

namespace fleet {

struct FleetOptions {
  // Wire binding of the SuperLink's Fleet API: kHttp for flwr 1.42's
  // flower-superlink (its --host/--port), kGrpc for gRPC-rere Fleet APIs.
  FleetApiKind api = FleetApiKind::kHttp;
  // Promised to the SuperLink at activation and in every heartbeat; it marks
  // the node offline after 2x this without a heartbeat. Flower accepts [10 s, 1800 s].
  absl::Duration heartbeat_interval = absl::Seconds(30);
  // Deadline of one heartbeat call (Flower: 5 s).
  absl::Duration heartbeat_timeout = absl::Seconds(5);
  // Wait between PullMessages calls that found nothing (Flower's SuperNode: 3 s).
  absl::Duration poll_interval = absl::Seconds(1);
  // Deadline of every other call.
  absl::Duration request_timeout = absl::Seconds(60);
  // Path of a pre-registered EC private key (PEM or unencrypted OpenSSH), for
  // SuperLinks started with --enable-supernode-auth (register the public key
  // with `flwr supernode register`). Empty: a fresh key per Run(), registered
  // and unregistered by the node itself (Flower's default).
  std::string auth_private_key;
  // Object pulls that find the object not yet available (Flower's rules).
  absl::Duration pull_initial_backoff = absl::Seconds(1);
  absl::Duration pull_max_backoff = absl::Seconds(10);
  double pull_jitter = 0.2;  // +-20%
  int pull_max_tries = 500;
  absl::Duration pull_max_time = absl::Seconds(7200);
  // ArrayChunk size of pushed replies (Flower's 5 MiB).
  size_t chunk_size = kDefaultChunkSize;

  // InvalidArgument naming the field for a value out of range.
  absl::Status Validate() const;
};

// Reads FleetOptions from YAML keys under `prefix` (e.g. "transport.fleet"):
//   api: http | grpc              heartbeat_interval_s: 30
//   poll_interval_s: 1            request_timeout_s: 60
//   auth_private_key: PATH
// Absent keys keep `out`'s values; errors are recorded in `reader`.
void ReadFleetOptions(common::ConfigReader& reader, std::string_view prefix, FleetOptions* out);

// Builds the FleetApi for a Run (test seam: a fake SuperLink).
using FleetApiFactory =
    std::function<absl::StatusOr<FleetApiPtr>(const ConnectionOptions&, const NodeKey&)>;

// The real bindings: http_fleet_api.h / grpc_fleet_api.h by fleet.api.
FleetApiFactory DefaultFleetApiFactory(FleetApiKind api);

// InvalidArgument for bad options (both structs are validated; an unreadable
// auth key or root certificates are reported by Run()).
absl::StatusOr<TransportPtr> MakeFleetTransport(ConnectionOptions options, FleetOptions fleet,
                                                FleetApiFactory factory);

}  // namespace fleet

// With default FleetOptions (HTTP binding). Called by MakeTransport() for
// TransportKind::kGrpcRere.
absl::StatusOr<TransportPtr> MakeFleetTransport(const ConnectionOptions& options);
absl::StatusOr<TransportPtr> MakeFleetTransport(const ConnectionOptions& options,
                                                const fleet::FleetOptions& fleet);

}  // namespace petal::client
