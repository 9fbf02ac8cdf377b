// File: channel.h
//
// gRPC channels configured the way Flower's client configures them: plaintext
// unless root certificates are given, the same limit for sent and received
// messages, no client keepalive pings. Shared by the grpc-bidi and Fleet API
// transports.
//
//   PETAL_ASSIGN_OR_RETURN(ChannelFactory factory, ChannelFactory::Create(options));
//   std::shared_ptr<grpc::Channel> channel = factory.NewChannel();
//
// Every channel gets its own subchannel pool, so two clients in one process
// (or two sessions of one client) never share a connection or its reconnect
// backoff. Thread-safe after creation.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/transport.h"

namespace petal::client {

// PEM text as-is, otherwise the contents of the file it names. NotFound /
// InvalidArgument naming the path when it cannot be read or holds no PEM block.
absl::StatusOr<std::string> LoadRootCertificates(const std::string& pem_or_path);

class ChannelFactory {
 public:
  // Validates `options` and loads the root certificates once.
  static absl::StatusOr<ChannelFactory> Create(const ConnectionOptions& options);

  // A fresh channel to options.server_address (connects lazily).
  std::shared_ptr<grpc::Channel> NewChannel() const;
  bool uses_tls() const { return uses_tls_; }

 private:
  ChannelFactory() = default;

  std::string address_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  int max_message_length_ = 0;
  bool uses_tls_ = false;
};

}  // namespace petal::client
