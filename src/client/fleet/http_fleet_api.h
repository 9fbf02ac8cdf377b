// File: http_fleet_api.h
//
// The Fleet API over HTTP, as flwr 1.42's SuperLink serves it by default (on
// its --host/--port, default 127.0.0.1:8000, next to the Control and Runtime
// APIs): POST /v1/fleet/<kebab-case rpc> with Content-Type and Accept
// application/protobuf and a deterministic protobuf body; the response is the
// protobuf reply (200) or a JSON error {"code", "detail", "extra"} with an
// HTTP status (401 identity rejected, 403 run state forbids the call, 412
// precondition, 400/415 bad request, 503 not ready). Each request carries the
// node's signature in headers flwr-public-key (base64 of the PEM),
// flwr-timestamp and flwr-signature (base64 of the DER signature).
// Plain HTTP with `--insecure`, HTTPS otherwise. Thread-safe (fleet_api.h).
#pragma once

#include "absl/status/statusor.h"
#include "client/fleet/fleet_api.h"
#include "client/fleet/node_auth.h"
#include "client/transport.h"

namespace petal::client::fleet {

// `options` gives the address, TLS settings (root certificates or the system
// trust store) and the response size limit; `key` (borrowed, must outlive the
// API) signs every call. InvalidArgument/NotFound for bad options.
absl::StatusOr<FleetApiPtr> MakeHttpFleetApi(const ConnectionOptions& options, const NodeKey& key);

}  // namespace petal::client::fleet
