#include "client/fleet/fleet_transport.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client/fleet/content.h"
#include "client/fleet/grpc_fleet_api.h"
#include "client/fleet/http_fleet_api.h"
#include "client/fleet/records.h"
#include "client/stop_signal.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "flwr/proto/fleet.pb.h"
#include "flwr/proto/heartbeat.pb.h"

namespace petal::client {
namespace fleet {
namespace {

namespace proto = ::flwr::proto;
namespace log = ::petal::common::log;

constexpr absl::Duration kShutdownCallTimeout = absl::Seconds(5);
// Flower's HEARTBEAT_MIN_INTERVAL / HEARTBEAT_MAX_INTERVAL.
constexpr absl::Duration kMinHeartbeat = absl::Seconds(10);
constexpr absl::Duration kMaxHeartbeat = absl::Seconds(1800);

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// Prepends `context` to the message, keeping the code and payloads (the
// Flower error code).
absl::Status WithContext(const absl::Status& status, std::string_view context) {
  absl::Status out(status.code(), fmt::format("{}: {}", context, Msg(status)));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

bool IsAlreadyRegistered(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         (FlowerErrorCode(status) == kFlowerPublicKeyAlreadyInUse ||
          status.message().find("already in use") != absl::string_view::npos);
}

// Errors after which a new session (register + activate again) may succeed.
bool SessionMayRecover(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

// Flower's FLWR_PRIVATE_MAX_CONCURRENT_OBJ_PULLS / _PUSHES.
constexpr size_t kObjectConcurrency = 2;

// Runs work(i) for i in [0, n) on up to `workers` threads (the caller's
// included). After the first error no new item starts and `abort` fires (so
// waits inside other items end); returns that first error.
absl::Status RunParallel(size_t n, size_t workers, StopSignal& abort,
                         const std::function<absl::Status(size_t)>& work) {
  std::atomic<size_t> next{0};
  absl::Mutex mu;
  absl::Status first;
  auto loop = [&] {
    while (!abort.stopped()) {
      const size_t i = next.fetch_add(1);
      if (i >= n) return;
      absl::Status status = work(i);
      if (!status.ok()) {
        {
          absl::MutexLock lock(&mu);
          if (first.ok()) first = status;
        }
        abort.Stop();
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(workers, n); ++t) threads.emplace_back(loop);
  loop();
  for (auto& thread : threads) thread.join();
  absl::MutexLock lock(&mu);
  return first;
}

class FleetTransport final : public Transport {
 public:
  FleetTransport(ConnectionOptions options, FleetOptions fleet, FleetApiFactory factory)
      : options_(std::move(options)),
        fleet_(std::move(fleet)),
        factory_(std::move(factory)),
        clock_(options_.clock != nullptr ? *options_.clock : SystemClock()) {}

  ~FleetTransport() override { Stop(); }

  absl::Status Run(Client& client) override;
  void Stop() override { stop_.Stop(); }
  TransportStats stats() const override {
    absl::MutexLock lock(&stats_mu_);
    return stats_;
  }

 private:
  // Everything one session (one registration) shares.
  struct Session {
    explicit Session(FleetApi& a) : api(a) {}
    FleetApi& api;
    uint64_t node_id = 0;
    StopSignal stop;  // ends this session (transport stop, heartbeat verdict)
    absl::Mutex mu;
    absl::Status heartbeat_verdict ABSL_GUARDED_BY(mu);
  };

  absl::Status RunSession(Client& client, FleetApi& api, const NodeKey& key, bool self_registered,
                          Backoff& reconnect);
  void HeartbeatLoop(Session& session);
  // Handles one pulled instruction. Returns an error only if the session must end.
  absl::Status HandleInstructionMessage(Client& client, Session& session,
                                        proto::PullMessagesResponse&& pulled);
  absl::StatusOr<ObjectContents> PullObjects(Session& session, uint64_t run_id,
                                             const proto::ObjectTree& tree);
  absl::Status PushReply(Session& session, const proto::Message& instruction,
                         InstructionOutcome&& outcome, double runtime_s);

  // One call, retried after transient failures with ConnectionOptions::retry;
  // waits end early when `stop` (default: the session's) fires.
  template <typename Res>
  absl::StatusOr<Res> Call(Session& session, FleetRpc rpc, const google::protobuf::Message& request,
                           const StopSignal* stop = nullptr);
  // Pulls one object with Flower's not-yet-available retry rules.
  absl::StatusOr<std::string> PullObject(Session& session, uint64_t run_id, const std::string& id,
                                         absl::Time start, const StopSignal& stop);

  std::string name() const { return options_.name; }
  void AddBytes(int64_t received, int64_t sent) {
    absl::MutexLock lock(&stats_mu_);
    stats_.bytes_received += received;
    stats_.bytes_sent += sent;
  }

  const ConnectionOptions options_;
  const FleetOptions fleet_;
  const FleetApiFactory factory_;
  Clock& clock_;
  StopSignal stop_;
  std::atomic<bool> run_called_{false};

  mutable absl::Mutex stats_mu_;
  TransportStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

template <typename Res>
absl::StatusOr<Res> FleetTransport::Call(Session& session, FleetRpc rpc,
                                         const google::protobuf::Message& request,
                                         const StopSignal* stop) {
  const StopSignal& until = stop != nullptr ? *stop : session.stop;
  Backoff backoff(options_.retry, clock_, MakeJitterSource(options_.jitter_seed));
  while (true) {
    absl::StatusOr<Res> response = session.api.Call<Res>(rpc, request, fleet_.request_timeout);
    if (response.ok() || !IsTransientFleetError(response.status()) || until.stopped()) {
      return response;
    }
    std::optional<absl::Duration> delay = backoff.NextDelay();
    if (!delay) {
      return absl::UnavailableError(fmt::format(
          "gave up on Fleet.{} after {} attempts over {}: {}", FleetRpcName(rpc),
          backoff.attempts(), absl::FormatDuration(backoff.elapsed()), Msg(response.status())));
    }
    log::Warn("[{}] {}; retrying in {}", name(), Msg(response.status()),
              absl::FormatDuration(*delay));
    if (!clock_.SleepUntil(clock_.Now() + *delay, until)) {
      return absl::CancelledError(
          fmt::format("Fleet.{} abandoned: the session is ending", FleetRpcName(rpc)));
    }
  }
}

absl::Status FleetTransport::Run(Client& client) {
  if (run_called_.exchange(true))
    return absl::FailedPreconditionError("Run() may be called once per transport");
  absl::StatusOr<NodeKey> key = fleet_.auth_private_key.empty()
                                    ? NodeKey::Generate()
                                    : NodeKey::LoadPrivateKeyFile(fleet_.auth_private_key);
  if (!key.ok()) return common::Annotate(key.status(), "Fleet API node key");
  const bool self_registered = fleet_.auth_private_key.empty();
  PETAL_ASSIGN_OR_RETURN(FleetApiPtr api, factory_(options_, *key));
  // Stop() aborts calls in flight; calls made after it (deactivation) proceed.
  ScopedStopCallback cancel_calls(stop_, [&api] { api->CancelInFlight(); });

  Backoff reconnect(options_.retry, clock_, MakeJitterSource(options_.jitter_seed));
  while (true) {
    if (stop_.stopped()) return absl::CancelledError("the Fleet transport was stopped");
    {
      absl::MutexLock lock(&stats_mu_);
      ++stats_.connect_attempts;
    }
    absl::Status status = RunSession(client, *api, *key, self_registered, reconnect);
    if (stop_.stopped()) return absl::CancelledError("the Fleet transport was stopped");
    if (!SessionMayRecover(status)) {
      log::Error("[{}] {}", name(), Msg(status));
      return status;
    }
    std::optional<absl::Duration> delay = reconnect.NextDelay();
    if (!delay) {
      return absl::UnavailableError(
          fmt::format("gave up reaching the SuperLink at {} after {} attempts over {}: {}",
                      options_.server_address, reconnect.attempts(),
                      absl::FormatDuration(reconnect.elapsed()), Msg(status)));
    }
    log::Warn("[{}] {}; reconnecting in {}", name(), Msg(status), absl::FormatDuration(*delay));
    if (!clock_.SleepUntil(clock_.Now() + *delay, stop_)) {
      return absl::CancelledError("the Fleet transport was stopped");
    }
  }
}

absl::Status FleetTransport::RunSession(Client& client, FleetApi& api, const NodeKey& key,
                                        bool self_registered, Backoff& reconnect) {
  Session session(api);
  ScopedStopCallback forward_stop(stop_, [&session] { session.stop.Stop(); });

  // 1. Register (self-generated keys only) and activate.
  if (self_registered) {
    proto::RegisterNodeFleetRequest request;
    request.set_public_key(key.public_key_pem());
    absl::StatusOr<proto::RegisterNodeFleetResponse> registered =
        api.Call<proto::RegisterNodeFleetResponse>(FleetRpc::kRegisterNode, request,
                                                   fleet_.request_timeout);
    if (!registered.ok() && !IsAlreadyRegistered(registered.status())) {
      if (registered.status().code() == absl::StatusCode::kFailedPrecondition) {
        return WithContext(
            registered.status(),
            "the SuperLink refuses self-registration (is --enable-supernode-auth on? then "
            "register a key with `flwr supernode register` and set auth_private_key)");
      }
      return registered.status();
    }
  }
  proto::ActivateNodeRequest activate;
  activate.set_public_key(key.public_key_pem());
  activate.set_heartbeat_interval(absl::ToDoubleSeconds(fleet_.heartbeat_interval));
  PETAL_ASSIGN_OR_RETURN(proto::ActivateNodeResponse activated,
                         api.Call<proto::ActivateNodeResponse>(FleetRpc::kActivateNode, activate,
                                                               fleet_.request_timeout));
  session.node_id = activated.node_id();
  reconnect.OnConnected();
  {
    absl::MutexLock lock(&stats_mu_);
    ++stats_.sessions;
    if (!stats_.first_connected.has_value()) stats_.first_connected = clock_.Now();
  }
  log::Info("[{}] connected to the SuperLink at {} (Fleet API over {}{}) as node {}", name(),
            options_.server_address, FleetApiKindName(fleet_.api),
            options_.insecure.value_or(options_.root_certificates.empty()) ? ", insecure" : ", TLS",
            session.node_id);

  // 2. Heartbeats on their own thread.
  std::thread heartbeat([this, &session] { HeartbeatLoop(session); });

  // 3. Pull and answer instructions.
  absl::Status ended = absl::OkStatus();
  while (!session.stop.stopped()) {
    proto::PullMessagesRequest pull;
    pull.mutable_node()->set_node_id(session.node_id);
    absl::StatusOr<proto::PullMessagesResponse> pulled =
        Call<proto::PullMessagesResponse>(session, FleetRpc::kPullMessages, pull);
    if (!pulled.ok()) {
      ended = pulled.status();
      break;
    }
    if (pulled->messages_list().empty()) {
      clock_.SleepUntil(clock_.Now() + fleet_.poll_interval, session.stop);
      continue;
    }
    reconnect.Reset();
    absl::Status handled = HandleInstructionMessage(client, session, *std::move(pulled));
    if (!handled.ok()) {
      ended = handled;
      break;
    }
  }
  session.stop.Stop();
  heartbeat.join();
  {
    absl::MutexLock lock(&session.mu);
    if (!session.heartbeat_verdict.ok()) ended = session.heartbeat_verdict;
  }

  // 4. Leave cleanly when asked to stop.
  if (stop_.stopped()) {
    proto::DeactivateNodeRequest deactivate;
    deactivate.set_node_id(session.node_id);
    absl::StatusOr<proto::DeactivateNodeResponse> d = api.Call<proto::DeactivateNodeResponse>(
        FleetRpc::kDeactivateNode, deactivate, kShutdownCallTimeout);
    if (!d.ok())
      log::Warn("[{}] could not deactivate node {}: {}", name(), session.node_id, Msg(d.status()));
    if (self_registered) {
      proto::UnregisterNodeFleetRequest unregister;
      unregister.set_node_id(session.node_id);
      absl::StatusOr<proto::UnregisterNodeFleetResponse> u =
          api.Call<proto::UnregisterNodeFleetResponse>(FleetRpc::kUnregisterNode, unregister,
                                                       kShutdownCallTimeout);
      if (!u.ok())
        log::Warn("[{}] could not unregister node {}: {}", name(), session.node_id,
                  Msg(u.status()));
    }
    if (d.ok()) log::Info("[{}] left the SuperLink (node {} deactivated)", name(), session.node_id);
    return absl::CancelledError("the Fleet transport was stopped");
  }
  return ended;
}

void FleetTransport::HeartbeatLoop(Session& session) {
  RetryPolicy policy;  // Flower's heartbeat retry: exponential up to 20 s, no limit
  policy.max_backoff = absl::Seconds(20);
  policy.max_elapsed = absl::InfiniteDuration();
  std::optional<uint64_t> seed;
  if (options_.jitter_seed) seed = *options_.jitter_seed + 1;
  std::function<double()> uniform = MakeJitterSource(seed);
  Backoff backoff(policy, clock_, uniform);
  auto end_session = [&](absl::Status verdict) {
    {
      absl::MutexLock lock(&session.mu);
      session.heartbeat_verdict = std::move(verdict);
    }
    session.stop.Stop();
  };
  while (!session.stop.stopped()) {
    proto::SendNodeHeartbeatRequest request;
    request.mutable_node()->set_node_id(session.node_id);
    request.set_heartbeat_interval(absl::ToDoubleSeconds(fleet_.heartbeat_interval));
    absl::StatusOr<proto::SendNodeHeartbeatResponse> response =
        session.api.Call<proto::SendNodeHeartbeatResponse>(FleetRpc::kSendNodeHeartbeat, request,
                                                           fleet_.heartbeat_timeout);
    absl::Duration wait;
    if (response.ok() && response->success()) {
      backoff.Reset();
      // Flower: (interval - call timeout) * U(0.7, 0.9).
      wait = (fleet_.heartbeat_interval - fleet_.heartbeat_timeout) * (0.7 + 0.2 * uniform());
    } else if (response.ok() || response.status().code() == absl::StatusCode::kUnauthenticated) {
      end_session(absl::UnauthenticatedError(fmt::format(
          "the SuperLink no longer knows node {} ({}); registering again", session.node_id,
          response.ok() ? "heartbeat rejected" : Msg(response.status()))));
      return;
    } else if (IsTransientFleetError(response.status()) ||
               response.status().code() == absl::StatusCode::kCancelled) {
      wait = backoff.NextDelay().value_or(policy.max_backoff);
      if (!session.stop.stopped()) {
        log::Debug("[{}] heartbeat failed ({}); next try in {}", name(), Msg(response.status()),
                   absl::FormatDuration(wait));
      }
    } else {
      end_session(common::Annotate(response.status(), "heartbeat"));
      return;
    }
    clock_.SleepUntil(clock_.Now() + wait, session.stop);
  }
}

absl::StatusOr<std::string> FleetTransport::PullObject(Session& session, uint64_t run_id,
                                                       const std::string& id, absl::Time start,
                                                       const StopSignal& stop) {
  proto::PullObjectRequest request;
  request.mutable_node()->set_node_id(session.node_id);
  request.set_run_id(run_id);
  request.set_object_id(id);
  std::function<double()> uniform = MakeJitterSource(options_.jitter_seed);
  absl::Duration delay = fleet_.pull_initial_backoff;
  for (int tries = 1;; ++tries) {
    PETAL_ASSIGN_OR_RETURN(
        proto::PullObjectResponse response,
        Call<proto::PullObjectResponse>(session, FleetRpc::kPullObject, request, &stop));
    if (!response.object_found()) {
      return absl::NotFoundError(
          fmt::format("object {} of the instruction could not be found", id));
    }
    if (response.object_available()) return std::move(*response.mutable_object_content());
    if (tries >= fleet_.pull_max_tries || clock_.Now() - start >= fleet_.pull_max_time) {
      return absl::DeadlineExceededError(
          fmt::format("object {} was still unavailable after {} tries over {}", id, tries,
                      absl::FormatDuration(clock_.Now() - start)));
    }
    absl::Duration wait = delay * (1.0 + fleet_.pull_jitter * (2.0 * uniform() - 1.0));
    if (!clock_.SleepUntil(clock_.Now() + wait, stop)) {
      return absl::CancelledError("object pull abandoned: the session is ending");
    }
    delay = std::min(delay * 2, fleet_.pull_max_backoff);
  }
}

absl::StatusOr<ObjectContents> FleetTransport::PullObjects(Session& session, uint64_t run_id,
                                                           const proto::ObjectTree& tree) {
  PETAL_RETURN_IF_ERROR(ValidateObjectTree(tree));
  const std::vector<std::string> ids = PostOrderObjectIds(tree);
  const absl::Time start = clock_.Now();
  std::vector<std::string> pulled(ids.size());
  // Two pulls at a time, like Flower; one failure stops the others.
  StopSignal abort;
  ScopedStopCallback forward(session.stop, [&abort] { abort.Stop(); });
  PETAL_RETURN_IF_ERROR(RunParallel(ids.size(), kObjectConcurrency, abort, [&](size_t i) {
    absl::StatusOr<std::string> content = PullObject(session, run_id, ids[i], start, abort);
    if (!content.ok()) return content.status();
    pulled[i] = *std::move(content);
    return absl::OkStatus();
  }));
  if (session.stop.stopped())
    return absl::CancelledError("object pull abandoned: the session is ending");
  ObjectContents contents;
  int64_t bytes = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    bytes += static_cast<int64_t>(pulled[i].size());
    contents.emplace(ids[i], std::move(pulled[i]));
  }
  AddBytes(bytes, 0);
  return contents;
}

absl::Status FleetTransport::HandleInstructionMessage(Client& client, Session& session,
                                                      proto::PullMessagesResponse&& pulled) {
  if (pulled.messages_list_size() != 1 || pulled.message_object_trees_size() != 1) {
    log::Warn(
        "[{}] PullMessages returned {} messages and {} object trees; expected one of each, "
        "ignoring",
        name(), pulled.messages_list_size(), pulled.message_object_trees_size());
    return absl::OkStatus();
  }
  proto::Message instruction = std::move(*pulled.mutable_messages_list(0));
  const proto::ObjectTree& tree = pulled.message_object_trees(0);
  const proto::Metadata& meta = instruction.metadata();
  const std::string message_id = meta.message_id();
  log::Info("[{}] [run {}{}] received {} message {}", name(), meta.run_id(),
            meta.group_id().empty() ? "" : ", round " + meta.group_id(), meta.message_type(),
            message_id);
  if (meta.dst_node_id() != session.node_id) {
    log::Warn("[{}] message {} is addressed to node {}, not to this node ({})", name(), message_id,
              meta.dst_node_id(), session.node_id);
  }
  if (tree.object_id() != message_id) {
    log::Warn("[{}] message {} comes with an object tree rooted at {}", name(), message_id,
              tree.object_id());
  }
  {
    absl::MutexLock lock(&stats_mu_);
    ++stats_.instructions;
  }

  // Objects, receipt, then the rebuilt message.
  InstructionOutcome outcome;
  std::optional<proto::Message> full;
  absl::StatusOr<ObjectContents> contents = PullObjects(session, meta.run_id(), tree);
  if (!contents.ok()) {
    const absl::Status& s = contents.status();
    if (s.code() == absl::StatusCode::kPermissionDenied) {
      log::Info("[{}] run {} no longer accepts this node's calls ({}); ignoring message {}", name(),
                meta.run_id(), Msg(s), message_id);
      return absl::OkStatus();
    }
    if (session.stop.stopped() ||
        (SessionMayRecover(s) && s.code() != absl::StatusCode::kDeadlineExceeded)) {
      return s;
    }
    outcome = ErrorOutcome(kErrorMessageUnavailable,
                           fmt::format("could not pull the message: {}", Msg(s)),
                           "pulling objects failed: " + Msg(s));
  } else {
    proto::ConfirmMessageReceivedRequest confirm;
    confirm.mutable_node()->set_node_id(session.node_id);
    confirm.set_run_id(meta.run_id());
    confirm.set_message_object_id(message_id);
    absl::StatusOr<proto::ConfirmMessageReceivedResponse> confirmed =
        Call<proto::ConfirmMessageReceivedResponse>(session, FleetRpc::kConfirmMessageReceived,
                                                    confirm);
    if (!confirmed.ok()) {
      if (confirmed.status().code() == absl::StatusCode::kPermissionDenied) {
        log::Info("[{}] run {} no longer accepts this node's calls; ignoring message {}", name(),
                  meta.run_id(), message_id);
        return absl::OkStatus();
      }
      if (SessionMayRecover(confirmed.status()) || session.stop.stopped())
        return confirmed.status();
      log::Warn("[{}] could not confirm receipt of message {}: {}", name(), message_id,
                Msg(confirmed.status()));
    }
    absl::StatusOr<proto::Message> inflated = InflateMessage(tree, *contents);
    if (!inflated.ok()) {
      outcome = ErrorOutcome(
          kErrorMessageUnavailable,
          fmt::format("the message's objects are malformed: {}", Msg(inflated.status())),
          "rebuilding the message failed: " + Msg(inflated.status()));
    } else {
      full = *std::move(inflated);
    }
  }

  double runtime_s = 0.0;
  if (full.has_value()) {
    if (full->has_error()) {
      log::Warn(
          "[{}] message {} carries an error instead of an instruction ({}: {}); not answering",
          name(), message_id, full->error().code(), full->error().reason());
      return absl::OkStatus();
    }
    // The SuperLink knows the instruction by its message id.
    full->mutable_metadata()->set_message_id(message_id);
    const absl::Time started = absl::Now();
    outcome = HandleInstruction(client, std::move(*full));
    runtime_s = absl::ToDoubleSeconds(absl::Now() - started);
  }
  if (outcome.failed) {
    absl::MutexLock lock(&stats_mu_);
    ++stats_.failed_instructions;
  }
  if (outcome.error.has_value()) {
    log::Warn("[{}] answering message {} with an error: {}", name(), message_id,
              outcome.description);
  }
  if (session.stop.stopped()) return absl::CancelledError("stopped before the reply was pushed");
  return PushReply(session, instruction, std::move(outcome), runtime_s);
}

absl::Status FleetTransport::PushReply(Session& session, const proto::Message& instruction,
                                       InstructionOutcome&& outcome, double runtime_s) {
  const proto::Metadata& ins = instruction.metadata();
  proto::Message reply;
  proto::Metadata* meta = reply.mutable_metadata();
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  meta->set_run_id(ins.run_id());
  meta->set_src_node_id(session.node_id);
  meta->set_dst_node_id(ins.src_node_id());
  meta->set_reply_to_message_id(ins.message_id());
  meta->set_group_id(ins.group_id());
  meta->set_message_type(ins.message_type());
  meta->set_created_at(now);
  // The reply must expire no later than the instruction (Flower's rule).
  meta->set_ttl(ins.created_at() + ins.ttl() - now);
  if (ins.has_dst_task_id()) meta->set_src_task_id(ins.dst_task_id());
  if (ins.has_src_task_id()) meta->set_dst_task_id(ins.src_task_id());
  if (meta->ttl() <= 0) {
    log::Warn("[{}] message {} expired before its reply was ready; dropping the reply", name(),
              ins.message_id());
    return absl::OkStatus();
  }
  if (outcome.content.has_value()) {
    *reply.mutable_content() = std::move(*outcome.content);
  } else {
    *reply.mutable_error() = std::move(*outcome.error);
  }
  absl::StatusOr<DeflatedMessage> deflated = DeflateMessage(reply, fleet_.chunk_size);
  if (!deflated.ok()) {
    log::Warn("[{}] the reply to {} cannot be serialized ({}); answering with an error", name(),
              ins.message_id(), Msg(deflated.status()));
    reply.clear_content();
    reply.mutable_error()->set_code(kErrorClientAppRaisedException);
    reply.mutable_error()->set_reason(
        fmt::format("the reply cannot be serialized: {}", Msg(deflated.status())));
    PETAL_ASSIGN_OR_RETURN(deflated, DeflateMessage(reply, fleet_.chunk_size));
  }
  meta->set_message_id(deflated->message_id);

  proto::PushMessagesRequest push;
  push.mutable_node()->set_node_id(session.node_id);
  proto::Message* wire = push.add_messages_list();
  *wire->mutable_metadata() = reply.metadata();
  // Content travels as objects; the message itself carries an empty placeholder.
  if (reply.has_content()) {
    wire->mutable_content();
  } else {
    *wire->mutable_error() = reply.error();
  }
  *push.add_message_object_trees() = deflated->tree;
  push.add_clientapp_runtime_list(runtime_s);
  absl::StatusOr<proto::PushMessagesResponse> pushed =
      Call<proto::PushMessagesResponse>(session, FleetRpc::kPushMessages, push);
  if (!pushed.ok()) {
    if (pushed.status().code() == absl::StatusCode::kPermissionDenied) {
      log::Info("[{}] run {} no longer accepts replies; dropped the reply to {}", name(),
                ins.run_id(), ins.message_id());
      return absl::OkStatus();
    }
    if (SessionMayRecover(pushed.status()) || session.stop.stopped()) return pushed.status();
    log::Error("[{}] pushing the reply to {} failed: {}", name(), ins.message_id(),
               Msg(pushed.status()));
    return absl::OkStatus();
  }
  std::set<std::string> wanted(pushed->objects_to_push().begin(), pushed->objects_to_push().end());
  std::vector<const StoredObject*> to_push;
  for (const StoredObject& object : deflated->objects) {
    if (wanted.erase(object.id) > 0) to_push.push_back(&object);
  }
  std::atomic<int64_t> bytes{static_cast<int64_t>(push.ByteSizeLong())};
  // Two pushes at a time, like Flower; one failure stops the others.
  StopSignal abort;
  ScopedStopCallback forward(session.stop, [&abort] { abort.Stop(); });
  absl::Status all_pushed =
      RunParallel(to_push.size(), kObjectConcurrency, abort, [&](size_t i) -> absl::Status {
        const StoredObject& object = *to_push[i];
        proto::PushObjectRequest request;
        request.mutable_node()->set_node_id(session.node_id);
        request.set_run_id(ins.run_id());
        request.set_object_id(object.id);
        request.set_object_content(object.content);
        request.set_session_id(pushed->session_id());
        absl::StatusOr<proto::PushObjectResponse> stored =
            Call<proto::PushObjectResponse>(session, FleetRpc::kPushObject, request, &abort);
        if (!stored.ok()) {
          return absl::Status(stored.status().code(), fmt::format("pushing object {}: {}",
                                                                  object.id, Msg(stored.status())));
        }
        if (!stored->stored()) {
          return absl::FailedPreconditionError(
              fmt::format("the SuperLink did not store object {} (push session {} expired or "
                          "replaced?)",
                          object.id, pushed->session_id()));
        }
        bytes += static_cast<int64_t>(object.content.size());
        return absl::OkStatus();
      });
  if (!all_pushed.ok()) {
    if (SessionMayRecover(all_pushed) || session.stop.stopped()) return all_pushed;
    log::Error("[{}] pushing the reply to {} failed: {}", name(), ins.message_id(),
               Msg(all_pushed));
    return absl::OkStatus();
  }
  if (!wanted.empty()) {
    log::Warn("[{}] the SuperLink asked for {} objects that are not part of the reply to {}",
              name(), wanted.size(), ins.message_id());
  }
  AddBytes(0, bytes.load());
  log::Info("[{}] [run {}] sent {} reply {} ({})", name(), ins.run_id(), ins.message_type(),
            deflated->message_id, outcome.description);
  return absl::OkStatus();
}

}  // namespace

absl::Status FleetOptions::Validate() const {
  if (heartbeat_interval < kMinHeartbeat || heartbeat_interval > kMaxHeartbeat) {
    return absl::InvalidArgumentError(
        fmt::format("heartbeat_interval must be in [10 s, 1800 s] (got {})",
                    absl::FormatDuration(heartbeat_interval)));
  }
  if (heartbeat_timeout <= absl::ZeroDuration() || heartbeat_timeout >= heartbeat_interval) {
    return absl::InvalidArgumentError("heartbeat_timeout must be > 0 and below heartbeat_interval");
  }
  if (poll_interval <= absl::ZeroDuration())
    return absl::InvalidArgumentError("poll_interval must be > 0");
  if (request_timeout <= absl::ZeroDuration())
    return absl::InvalidArgumentError("request_timeout must be > 0");
  if (pull_initial_backoff <= absl::ZeroDuration() || pull_max_backoff < pull_initial_backoff) {
    return absl::InvalidArgumentError(
        "pull backoff must satisfy 0 < pull_initial_backoff <= pull_max_backoff");
  }
  if (!(pull_jitter >= 0.0 && pull_jitter < 1.0))
    return absl::InvalidArgumentError("pull_jitter must be in [0, 1)");
  if (pull_max_tries < 1) return absl::InvalidArgumentError("pull_max_tries must be >= 1");
  if (pull_max_time <= absl::ZeroDuration())
    return absl::InvalidArgumentError("pull_max_time must be > 0");
  if (chunk_size == 0) return absl::InvalidArgumentError("chunk_size must be > 0");
  return absl::OkStatus();
}

void ReadFleetOptions(common::ConfigReader& reader, std::string_view prefix, FleetOptions* out) {
  auto key = [&](std::string_view name) { return fmt::format("{}.{}", prefix, name); };
  std::string api(FleetApiKindName(out->api));
  reader.Read(key("api"), &api, common::OneOf({"http", "grpc"}));
  if (absl::StatusOr<FleetApiKind> kind = ParseFleetApiKind(api); kind.ok()) out->api = *kind;
  double heartbeat = absl::ToDoubleSeconds(out->heartbeat_interval);
  reader.Read(key("heartbeat_interval_s"), &heartbeat, common::InRange(10.0, 1800.0));
  out->heartbeat_interval = absl::Seconds(heartbeat);
  double poll = absl::ToDoubleSeconds(out->poll_interval);
  reader.Read(key("poll_interval_s"), &poll, common::GreaterThan(0.0));
  out->poll_interval = absl::Seconds(poll);
  double timeout = absl::ToDoubleSeconds(out->request_timeout);
  reader.Read(key("request_timeout_s"), &timeout, common::GreaterThan(0.0));
  out->request_timeout = absl::Seconds(timeout);
  reader.Read(key("auth_private_key"), &out->auth_private_key);
}

FleetApiFactory DefaultFleetApiFactory(FleetApiKind api) {
  return
      [api](const ConnectionOptions& options, const NodeKey& key) -> absl::StatusOr<FleetApiPtr> {
        if (api == FleetApiKind::kGrpc) return MakeGrpcFleetApi(options, key);
        return MakeHttpFleetApi(options, key);
      };
}

absl::StatusOr<TransportPtr> MakeFleetTransport(ConnectionOptions options, FleetOptions fleet,
                                                FleetApiFactory factory) {
  PETAL_RETURN_IF_ERROR(options.Validate());
  PETAL_RETURN_IF_ERROR(fleet.Validate());
  if (!factory) return absl::InvalidArgumentError("no FleetApi factory");
  return TransportPtr(
      std::make_unique<FleetTransport>(std::move(options), std::move(fleet), std::move(factory)));
}

}  // namespace fleet

absl::StatusOr<TransportPtr> MakeFleetTransport(const ConnectionOptions& options) {
  return MakeFleetTransport(options, fleet::FleetOptions());
}

absl::StatusOr<TransportPtr> MakeFleetTransport(const ConnectionOptions& options,
                                                const fleet::FleetOptions& fleet) {
  return fleet::MakeFleetTransport(options, fleet, fleet::DefaultFleetApiFactory(fleet.api));
}

}  // namespace petal::client
