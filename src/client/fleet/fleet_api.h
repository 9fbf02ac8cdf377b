// File: fleet_api.h
//
// The Fleet API as a SuperNode sees it: twelve unary calls on a SuperLink,
// each carrying the node's signed metadata. Two wire bindings exist:
//   - HTTP (flwr >= 1.40 default): POST /v1/fleet/<kebab-rpc> with an
//     application/protobuf body, headers flwr-public-key / flwr-timestamp /
//     flwr-signature (base64); see http_fleet_api.h;
//   - gRPC-rere (SuperLinks before flwr 1.40, tested with 1.36 and 1.39; >= 1.40 with
//     FLWR_INTERNAL_GRPC_FLEET_API=1, tested with 1.42):
//     /flwr.proto.Fleet/<Rpc> with metadata flwr-public-key-bin /
//     flwr-timestamp / flwr-signature-bin; see grpc_fleet_api.h.
// Both speak the same protobuf messages (proto/flwr/proto/fleet.proto).
//
//   PETAL_ASSIGN_OR_RETURN(auto res, api.Call<PullMessagesResponse>(FleetRpc::kPullMessages, req,
//   deadline));
//
// Errors use canonical codes the same way for both bindings: Unavailable for
// connection failures and HTTP 502/503/504, DeadlineExceeded when `timeout`
// passes, Unauthenticated (HTTP 401) when the SuperLink rejects the node's
// identity, PermissionDenied (HTTP 403) when the run does not allow the call,
// FailedPrecondition (HTTP 412), InvalidArgument (HTTP 400/415), Cancelled
// after CancelInFlight(). Messages quote the SuperLink's own error text.
// Implementations are thread-safe: calls may run concurrently (heartbeats
// beside the main loop).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"

namespace petal::client::fleet {

enum class FleetRpc {
  kRegisterNode,
  kActivateNode,
  kDeactivateNode,
  kUnregisterNode,
  kSendNodeHeartbeat,
  kPullMessages,
  kPushMessages,
  kGetRun,
  kGetFab,
  kPushObject,
  kPullObject,
  kConfirmMessageReceived,
};

// "RegisterNode", ... (the gRPC method name).
std::string_view FleetRpcName(FleetRpc rpc);
// "register-node", ... (the HTTP path segment under /v1/fleet/).
std::string_view FleetRpcHttpName(FleetRpc rpc);

// Which wire binding a SuperLink serves.
enum class FleetApiKind {
  kHttp,  // "http"
  kGrpc,  // "grpc"
};
std::string_view FleetApiKindName(FleetApiKind kind);
// Parses "http" / "grpc"; InvalidArgument listing both otherwise.
absl::StatusOr<FleetApiKind> ParseFleetApiKind(std::string_view name);

class FleetApi {
 public:
  FleetApi() = default;
  FleetApi(const FleetApi&) = delete;
  FleetApi& operator=(const FleetApi&) = delete;
  virtual ~FleetApi();

  // Sends `request` (whose type must be `rpc`'s request type) and parses the
  // answer into `response` (`rpc`'s response type). Errors as described above.
  virtual absl::Status Call(FleetRpc rpc, const google::protobuf::Message& request,
                            google::protobuf::Message* response, absl::Duration timeout) = 0;

  // Makes every call that is in flight right now return Cancelled promptly.
  // Calls started afterwards are unaffected.
  virtual void CancelInFlight() = 0;

  // Typed convenience wrapper.
  template <typename Response>
  absl::StatusOr<Response> Call(FleetRpc rpc, const google::protobuf::Message& request,
                                absl::Duration timeout) {
    Response response;
    absl::Status status = Call(rpc, request, &response, timeout);
    if (!status.ok()) return status;
    return response;
  }
};

using FleetApiPtr = std::unique_ptr<FleetApi>;

// Builds the error of a failed call: "Fleet.<Rpc> failed: <text>". When
// `server_text` is one of Flower's JSON error payloads ({"code", "detail" or
// "public_message", "extra" or "public_details"}) its message is quoted and its
// numeric Flower error code is kept as a payload (see FlowerErrorCode).
absl::Status MakeFleetError(absl::StatusCode code, FleetRpc rpc, std::string_view server_text,
                            std::string_view suffix = "");
// The Flower API error code (e.g. 23 "public key already in use") carried by
// an error from MakeFleetError, or -1.
int FlowerErrorCode(const absl::Status& status);
// Flower's ApiErrorCode values the transport reacts to.
inline constexpr int kFlowerPublicKeyAlreadyInUse = 23;
inline constexpr int kFlowerRegistrationDisabled = 2001;

// True for errors worth retrying after a backoff: the SuperLink (or the
// network) is down, overloaded or slow (Unavailable, DeadlineExceeded).
bool IsTransientFleetError(const absl::Status& status);

}  // namespace petal::client::fleet
