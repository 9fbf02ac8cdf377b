#include "client/fleet/grpc_fleet_api.h"

#include <fmt/format.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client/channel.h"
#include "common/status_macros.h"
#include "flwr/proto/fleet.grpc.pb.h"

namespace petal::client::fleet {
namespace {

namespace proto = ::flwr::proto;

absl::Status FromGrpc(const grpc::Status& status, FleetRpc rpc) {
  if (status.ok()) return absl::OkStatus();
  return MakeFleetError(static_cast<absl::StatusCode>(status.error_code()), rpc,
                        status.error_message());
}

class GrpcFleetApi final : public FleetApi {
 public:
  GrpcFleetApi(std::shared_ptr<grpc::Channel> channel, const NodeKey& key)
      : stub_(proto::Fleet::NewStub(channel)), key_(key) {}

  absl::Status Call(FleetRpc rpc, const google::protobuf::Message& request,
                    google::protobuf::Message* response, absl::Duration timeout) override {
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      generation = generation_;
    }
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    PETAL_ASSIGN_OR_RETURN(AuthMetadata auth, key_.SignNow());
    context.AddMetadata("flwr-public-key-bin", auth.public_key_pem);
    context.AddMetadata("flwr-timestamp", auth.timestamp);
    context.AddMetadata("flwr-signature-bin", auth.signature);
    {
      absl::MutexLock lock(&mu_);
      in_flight_.insert(&context);
      // CancelInFlight ran while this call was being prepared.
      if (generation != generation_) context.TryCancel();
    }
    grpc::Status status = Dispatch(rpc, &context, request, response);
    {
      absl::MutexLock lock(&mu_);
      in_flight_.erase(&context);
    }
    return FromGrpc(status, rpc);
  }

  void CancelInFlight() override {
    absl::MutexLock lock(&mu_);
    ++generation_;
    for (grpc::ClientContext* context : in_flight_) context->TryCancel();
  }

 private:
  template <typename Req, typename Res>
  grpc::Status Invoke(grpc::Status (proto::Fleet::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                 Res*),
                      grpc::ClientContext* context, const google::protobuf::Message& request,
                      google::protobuf::Message* response) {
    // The caller pairs each rpc with its own message types (checked in debug
    // builds by the descriptor comparison below).
    if (request.GetDescriptor() != Req::descriptor() ||
        response->GetDescriptor() != Res::descriptor()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          fmt::format("wrong message types {} / {} for this Fleet call",
                                      request.GetDescriptor()->full_name(),
                                      response->GetDescriptor()->full_name()));
    }
    return (stub_.get()->*method)(context, static_cast<const Req&>(request),
                                  static_cast<Res*>(response));
  }

  grpc::Status Dispatch(FleetRpc rpc, grpc::ClientContext* context,
                        const google::protobuf::Message& request,
                        google::protobuf::Message* response) {
    using S = proto::Fleet::Stub;
    switch (rpc) {
      case FleetRpc::kRegisterNode:
        return Invoke<proto::RegisterNodeFleetRequest, proto::RegisterNodeFleetResponse>(
            &S::RegisterNode, context, request, response);
      case FleetRpc::kActivateNode:
        return Invoke<proto::ActivateNodeRequest, proto::ActivateNodeResponse>(
            &S::ActivateNode, context, request, response);
      case FleetRpc::kDeactivateNode:
        return Invoke<proto::DeactivateNodeRequest, proto::DeactivateNodeResponse>(
            &S::DeactivateNode, context, request, response);
      case FleetRpc::kUnregisterNode:
        return Invoke<proto::UnregisterNodeFleetRequest, proto::UnregisterNodeFleetResponse>(
            &S::UnregisterNode, context, request, response);
      case FleetRpc::kSendNodeHeartbeat:
        return Invoke<proto::SendNodeHeartbeatRequest, proto::SendNodeHeartbeatResponse>(
            &S::SendNodeHeartbeat, context, request, response);
      case FleetRpc::kPullMessages:
        return Invoke<proto::PullMessagesRequest, proto::PullMessagesResponse>(
            &S::PullMessages, context, request, response);
      case FleetRpc::kPushMessages:
        return Invoke<proto::PushMessagesRequest, proto::PushMessagesResponse>(
            &S::PushMessages, context, request, response);
      case FleetRpc::kGetRun:
        return Invoke<proto::GetRunRequest, proto::GetRunResponse>(&S::GetRun, context, request,
                                                                   response);
      case FleetRpc::kGetFab:
        return Invoke<proto::GetFabRequest, proto::GetFabResponse>(&S::GetFab, context, request,
                                                                   response);
      case FleetRpc::kPushObject:
        return Invoke<proto::PushObjectRequest, proto::PushObjectResponse>(&S::PushObject, context,
                                                                           request, response);
      case FleetRpc::kPullObject:
        return Invoke<proto::PullObjectRequest, proto::PullObjectResponse>(&S::PullObject, context,
                                                                           request, response);
      case FleetRpc::kConfirmMessageReceived:
        return Invoke<proto::ConfirmMessageReceivedRequest, proto::ConfirmMessageReceivedResponse>(
            &S::ConfirmMessageReceived, context, request, response);
    }
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown Fleet call");
  }

  std::unique_ptr<proto::Fleet::Stub> stub_;
  const NodeKey& key_;
  absl::Mutex mu_;
  std::set<grpc::ClientContext*> in_flight_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::StatusOr<FleetApiPtr> MakeGrpcFleetApi(const ConnectionOptions& options, const NodeKey& key) {
  PETAL_ASSIGN_OR_RETURN(ChannelFactory factory, ChannelFactory::Create(options));
  return std::make_unique<GrpcFleetApi>(factory.NewChannel(), key);
}

}  // namespace petal::client::fleet
