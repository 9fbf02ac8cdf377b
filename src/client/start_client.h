// File: start_client.h
//
// The one call most applications need: connect a Client to a Flower server and
// serve it until the server says goodbye. The C++ counterpart of Flower's
// flwr.client.start_client.
//
//   class MyClient : public petal::client::Client { ... };
//   MyClient client;
//   petal::client::ConnectionOptions options;
//   options.server_address = "127.0.0.1:8080";
//   absl::Status status = petal::client::StartClient(options, client);
//
// To stop it from another thread, pass a StopSignal and fire it; StartClient
// then returns Cancelled within bounded time (see client/transport.h).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/client.h"
#include "client/stop_signal.h"
#include "client/transport.h"

namespace petal::client {

// The transport options.transport names: grpc-bidi (always built in) or
// grpc-rere (the Fleet API; Unimplemented if this build of the SDK lacks it).
absl::StatusOr<TransportPtr> MakeTransport(const ConnectionOptions& options);

// Creates the transport and runs `client` on the calling thread. Returns what
// Transport::Run returns (OK after the server's goodbye). `stop` (optional,
// borrowed) stops the run when fired, even if it fired before the call.
absl::Status StartClient(const ConnectionOptions& options, Client& client,
                         StopSignal* stop = nullptr);

}  // namespace petal::client
