#include "client/fleet/fleet_api.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "absl/strings/cord.h"

namespace petal::client::fleet {

FleetApi::~FleetApi() = default;

std::string_view FleetRpcName(FleetRpc rpc) {
  switch (rpc) {
    case FleetRpc::kRegisterNode:
      return "RegisterNode";
    case FleetRpc::kActivateNode:
      return "ActivateNode";
    case FleetRpc::kDeactivateNode:
      return "DeactivateNode";
    case FleetRpc::kUnregisterNode:
      return "UnregisterNode";
    case FleetRpc::kSendNodeHeartbeat:
      return "SendNodeHeartbeat";
    case FleetRpc::kPullMessages:
      return "PullMessages";
    case FleetRpc::kPushMessages:
      return "PushMessages";
    case FleetRpc::kGetRun:
      return "GetRun";
    case FleetRpc::kGetFab:
      return "GetFab";
    case FleetRpc::kPushObject:
      return "PushObject";
    case FleetRpc::kPullObject:
      return "PullObject";
    case FleetRpc::kConfirmMessageReceived:
      return "ConfirmMessageReceived";
  }
  return "Unknown";
}

std::string_view FleetRpcHttpName(FleetRpc rpc) {
  switch (rpc) {
    case FleetRpc::kRegisterNode:
      return "register-node";
    case FleetRpc::kActivateNode:
      return "activate-node";
    case FleetRpc::kDeactivateNode:
      return "deactivate-node";
    case FleetRpc::kUnregisterNode:
      return "unregister-node";
    case FleetRpc::kSendNodeHeartbeat:
      return "send-node-heartbeat";
    case FleetRpc::kPullMessages:
      return "pull-messages";
    case FleetRpc::kPushMessages:
      return "push-messages";
    case FleetRpc::kGetRun:
      return "get-run";
    case FleetRpc::kGetFab:
      return "get-fab";
    case FleetRpc::kPushObject:
      return "push-object";
    case FleetRpc::kPullObject:
      return "pull-object";
    case FleetRpc::kConfirmMessageReceived:
      return "confirm-message-received";
  }
  return "unknown";
}

std::string_view FleetApiKindName(FleetApiKind kind) {
  switch (kind) {
    case FleetApiKind::kHttp:
      return "http";
    case FleetApiKind::kGrpc:
      return "grpc";
  }
  return "unknown";
}

absl::StatusOr<FleetApiKind> ParseFleetApiKind(std::string_view name) {
  if (name == "http") return FleetApiKind::kHttp;
  if (name == "grpc") return FleetApiKind::kGrpc;
  return absl::InvalidArgumentError(fmt::format(
      "unknown Fleet API binding '{}' (use http for flwr >= 1.40 SuperLinks, grpc for older ones)",
      name));
}

namespace {
constexpr char kFlowerErrorPayload[] = "petal.fleet/flower-error-code";
}  // namespace

absl::Status MakeFleetError(absl::StatusCode code, FleetRpc rpc, std::string_view server_text,
                            std::string_view suffix) {
  nlohmann::json json = nlohmann::json::parse(server_text, nullptr, /*allow_exceptions=*/false);
  int flower_code = -1;
  std::string text(server_text.substr(0, 2000));
  if (json.is_object()) {
    auto str = [&](const char* a, const char* b) -> std::string {
      for (const char* key : {a, b}) {
        auto it = json.find(key);
        if (it != json.end() && it->is_string()) return it->get<std::string>();
      }
      return "";
    };
    auto it = json.find("code");
    if (it != json.end() && it->is_number_integer()) flower_code = it->get<int>();
    std::string detail = str("detail", "public_message");
    std::string extra = str("extra", "public_details");
    if (!detail.empty()) {
      text = detail;
      if (!extra.empty()) text += fmt::format(" ({})", extra);
      if (flower_code >= 0) text += fmt::format(" [Flower error {}]", flower_code);
    }
  }
  absl::Status status(code, fmt::format("Fleet.{} failed: {}{}", FleetRpcName(rpc), text, suffix));
  if (flower_code >= 0)
    status.SetPayload(kFlowerErrorPayload, absl::Cord(std::to_string(flower_code)));
  return status;
}

int FlowerErrorCode(const absl::Status& status) {
  auto payload = status.GetPayload(kFlowerErrorPayload);
  if (!payload.has_value()) return -1;
  return std::stoi(std::string(*payload));
}

bool IsTransientFleetError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace petal::client::fleet
