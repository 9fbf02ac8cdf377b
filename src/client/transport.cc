#include "client/transport.h"

#include <fmt/format.h>

#include "common/status_macros.h"

namespace petal::client {

Transport::~Transport() = default;

std::string_view TransportKindName(TransportKind kind) {
  switch (kind) {
    case TransportKind::kGrpcBidi:
      return "grpc-bidi";
    case TransportKind::kGrpcRere:
      return "grpc-rere";
  }
  return "unknown";
}

absl::StatusOr<TransportKind> ParseTransportKind(std::string_view name) {
  if (name == "grpc-bidi") return TransportKind::kGrpcBidi;
  if (name == "grpc-rere") return TransportKind::kGrpcRere;
  return absl::InvalidArgumentError(
      fmt::format("unknown transport '{}' (use grpc-bidi or grpc-rere)", name));
}

absl::Status ConnectionOptions::Validate() const {
  if (server_address.empty()) {
    return absl::InvalidArgumentError("server_address is empty (expected host:port)");
  }
  if (max_message_length < 1 || max_message_length > kFlowerMaxMessageLength) {
    return absl::InvalidArgumentError(fmt::format("max_message_length must be in [1, {}] (got {})",
                                                  kFlowerMaxMessageLength, max_message_length));
  }
  if (insecure.has_value() && *insecure && !root_certificates.empty()) {
    return absl::InvalidArgumentError(
        "insecure is true but root_certificates is set: choose plaintext or TLS");
  }
  if (connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("connect_timeout must be > 0");
  }
  if (disconnect_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("disconnect_grace must be >= 0");
  }
  PETAL_RETURN_IF_ERROR(retry.Validate());
  return absl::OkStatus();
}

}  // namespace petal::client
