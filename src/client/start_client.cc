#include "client/start_client.h"

#include <fmt/format.h>

#include <optional>

#include "client/grpc_bidi_transport.h"
#include "common/status_macros.h"

#ifdef PETAL_CLIENT_HAVE_FLEET
#include "client/fleet/fleet_transport.h"
#endif

namespace petal::client {

absl::StatusOr<TransportPtr> MakeTransport(const ConnectionOptions& options) {
  switch (options.transport) {
    case TransportKind::kGrpcBidi:
      return MakeGrpcBidiTransport(options);
    case TransportKind::kGrpcRere:
#ifdef PETAL_CLIENT_HAVE_FLEET
      return MakeFleetTransport(options);
#else
      return absl::UnimplementedError(
          "this build of the Petal client SDK has no grpc-rere (Fleet API) transport");
#endif
  }
  return absl::InvalidArgumentError(
      fmt::format("unknown transport kind {}", static_cast<int>(options.transport)));
}

absl::Status StartClient(const ConnectionOptions& options, Client& client, StopSignal* stop) {
  PETAL_ASSIGN_OR_RETURN(TransportPtr transport, MakeTransport(options));
  std::optional<ScopedStopCallback> forward;
  if (stop != nullptr) forward.emplace(*stop, [&transport] { transport->Stop(); });
  return transport->Run(client);
}

}  // namespace petal::client
