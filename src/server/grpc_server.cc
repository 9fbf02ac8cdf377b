#include "server/grpc_server.h"

#include <fmt/format.h>

#include "common/file_util.h"
#include "common/status_macros.h"

namespace petal::server {

absl::StatusOr<StartedServer> StartGrpcServer(const ServerConfig& config, FlowerService& service) {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (config.tls.enabled()) {
    grpc::SslServerCredentialsOptions ssl;
    if (!config.tls.ca_cert.empty()) {
      PETAL_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                             common::ReadFileToString(config.tls.ca_cert));
    }
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    PETAL_ASSIGN_OR_RETURN(pair.private_key, common::ReadFileToString(config.tls.key));
    PETAL_ASSIGN_OR_RETURN(pair.cert_chain, common::ReadFileToString(config.tls.cert));
    ssl.pem_key_cert_pairs.push_back(std::move(pair));
    ssl.client_certificate_request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    credentials = grpc::SslServerCredentials(ssl);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }
  grpc::ServerBuilder builder;
  StartedServer started;
  builder.AddListeningPort(config.address, credentials, &started.port);
  builder.RegisterService(&service);
  const int limit = static_cast<int>(config.max_message_length);
  builder.SetMaxReceiveMessageSize(limit);
  builder.SetMaxSendMessageSize(limit);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, static_cast<int>(config.max_concurrent_streams));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(config.keepalive_time * 1000.0));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  // Without BDP probing each stream's HTTP/2 window stays small, so replies the
  // receive budget has not admitted yet wait in the clients, not in this
  // process: memory O(max_buffered_reply_bytes) instead of O(clients x model).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, config.http2_bdp_probe ? 1 : 0);
  started.server = builder.BuildAndStart();
  if (!started.server || started.port == 0) {
    return absl::UnavailableError(fmt::format(
        "cannot listen on {} (address in use, bad address or bad TLS material)", config.address));
  }
  return started;
}

}  // namespace petal::server
