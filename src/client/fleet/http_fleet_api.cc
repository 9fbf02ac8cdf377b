#include "client/fleet/http_fleet_api.h"

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <memory>
#include <utility>

#include "client/channel.h"
#include "client/fleet/internal/http_client.h"
#include "common/status_macros.h"

namespace petal::client::fleet {
namespace {

using internal::HttpClient;
using internal::HttpHeaders;
using internal::HttpResponse;

constexpr std::string_view kProtobufMediaType = "application/protobuf";

absl::StatusCode CodeForHttpStatus(int status) {
  switch (status) {
    case 400:
    case 415:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 405:
    case 501:
      return absl::StatusCode::kUnimplemented;
    case 409:
      return absl::StatusCode::kAborted;
    case 412:
      return absl::StatusCode::kFailedPrecondition;
    case 413:
      return absl::StatusCode::kResourceExhausted;
    case 408:
    case 429:
    case 502:
    case 503:
    case 504:
      return absl::StatusCode::kUnavailable;
    case 500:
      return absl::StatusCode::kInternal;
    default:
      return absl::StatusCode::kUnknown;
  }
}

std::string SerializeDeterministic(const google::protobuf::Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

class HttpFleetApi final : public FleetApi {
 public:
  HttpFleetApi(std::unique_ptr<HttpClient> client, const NodeKey& key)
      : client_(std::move(client)), key_(key) {}

  absl::Status Call(FleetRpc rpc, const google::protobuf::Message& request,
                    google::protobuf::Message* response, absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    PETAL_ASSIGN_OR_RETURN(AuthMetadata auth, key_.SignNow());
    HttpHeaders headers = {
        {"Content-Type", std::string(kProtobufMediaType)},
        {"Accept", std::string(kProtobufMediaType)},
        {"User-Agent", "petal-client"},
        {"flwr-public-key", Base64Encode(auth.public_key_pem)},
        {"flwr-timestamp", auth.timestamp},
        {"flwr-signature", Base64Encode(auth.signature)},
    };
    const std::string path = fmt::format("/v1/fleet/{}", FleetRpcHttpName(rpc));
    absl::StatusOr<HttpResponse> http =
        client_->Post(path, headers, SerializeDeterministic(request), deadline);
    if (!http.ok()) {
      return absl::Status(http.status().code(),
                          fmt::format("Fleet.{} ({}): {}", FleetRpcName(rpc), path,
                                      std::string(http.status().message())));
    }
    if (http->status != 200) {
      if (http->status == 404) {
        return absl::NotFoundError(
            fmt::format("Fleet.{}: {} {}:{}{} answered 404: no Fleet HTTP API there (an older "
                        "SuperLink serves the "
                        "Fleet API over gRPC on another port; use the grpc binding)",
                        FleetRpcName(rpc), client_->endpoint().tls ? "https" : "http",
                        client_->endpoint().host, client_->endpoint().port, path));
      }
      std::string text =
          http->body.empty() ? fmt::format("HTTP {} {}", http->status, http->reason) : http->body;
      return MakeFleetError(CodeForHttpStatus(http->status), rpc, text,
                            fmt::format(" (HTTP {})", http->status));
    }
    const std::string* type = http->Header("content-type");
    if (type == nullptr || type->rfind(std::string(kProtobufMediaType), 0) != 0) {
      return absl::InternalError(fmt::format("Fleet.{}: the response is not {} (Content-Type '{}')",
                                             FleetRpcName(rpc), kProtobufMediaType,
                                             type ? *type : ""));
    }
    if (!response->ParseFromString(http->body)) {
      return absl::InternalError(fmt::format("Fleet.{}: the response is not a valid {}",
                                             FleetRpcName(rpc), response->GetTypeName()));
    }
    return absl::OkStatus();
  }

  void CancelInFlight() override { client_->CancelInFlight(); }

 private:
  std::unique_ptr<HttpClient> client_;
  const NodeKey& key_;
};

}  // namespace

absl::StatusOr<FleetApiPtr> MakeHttpFleetApi(const ConnectionOptions& options, const NodeKey& key) {
  PETAL_RETURN_IF_ERROR(options.Validate());
  PETAL_ASSIGN_OR_RETURN(auto host_port, internal::ParseHostPort(options.server_address));
  internal::HttpEndpoint endpoint;
  endpoint.host = host_port.first;
  endpoint.port = host_port.second;
  endpoint.tls = !options.insecure.value_or(options.root_certificates.empty());
  endpoint.connect_timeout = options.connect_timeout;
  if (endpoint.tls && !options.root_certificates.empty()) {
    PETAL_ASSIGN_OR_RETURN(endpoint.root_certificates_pem,
                           LoadRootCertificates(options.root_certificates));
  }
  PETAL_ASSIGN_OR_RETURN(
      std::unique_ptr<HttpClient> client,
      HttpClient::Create(std::move(endpoint), static_cast<size_t>(options.max_message_length)));
  return std::make_unique<HttpFleetApi>(std::move(client), key);
}

}  // namespace petal::client::fleet
