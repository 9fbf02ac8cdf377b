#include "client/channel.h"

#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

#include "common/file_util.h"
#include "common/status_macros.h"

namespace petal::client {
namespace {

constexpr std::string_view kPemMarker = "-----BEGIN";

}  // namespace

absl::StatusOr<std::string> LoadRootCertificates(const std::string& pem_or_path) {
  if (pem_or_path.find(kPemMarker) != std::string::npos) return pem_or_path;
  absl::StatusOr<std::string> contents = common::ReadFileToString(pem_or_path);
  if (!contents.ok()) {
    return common::Annotate(contents.status(), "root_certificates");
  }
  if (contents->find(kPemMarker) == std::string::npos) {
    return absl::InvalidArgumentError(fmt::format(
        "root_certificates: '{}' holds no PEM block (expected '-----BEGIN CERTIFICATE-----')",
        pem_or_path));
  }
  return *std::move(contents);
}

absl::StatusOr<ChannelFactory> ChannelFactory::Create(const ConnectionOptions& options) {
  PETAL_RETURN_IF_ERROR(options.Validate());
  ChannelFactory factory;
  factory.address_ = options.server_address;
  factory.max_message_length_ = static_cast<int>(options.max_message_length);
  const bool insecure = options.insecure.value_or(options.root_certificates.empty());
  if (insecure) {
    factory.credentials_ = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!options.root_certificates.empty()) {
      PETAL_ASSIGN_OR_RETURN(ssl.pem_root_certs, LoadRootCertificates(options.root_certificates));
    }
    factory.credentials_ = grpc::SslCredentials(ssl);
    factory.uses_tls_ = true;
  }
  return factory;
}

std::shared_ptr<grpc::Channel> ChannelFactory::NewChannel() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_length_);
  args.SetMaxSendMessageSize(max_message_length_);
  // Own subchannels: no connection (or reconnect backoff) shared with another
  // channel of this process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Retries are ours to decide (RetryPolicy); gRPC must not replay messages.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, "petal-client");
  return grpc::CreateCustomChannel(address_, credentials_, args);
}

}  // namespace petal::client
