#include "server/server.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "common/file_util.h"
#include "common/logging.h"
#include "common/npz.h"
#include "common/serde.h"
#include "common/status_macros.h"
#include "server/checkpoint.h"
#include "server/grpc_service.h"
#include "server/validation.h"

namespace petal::server {

namespace log = common::log;

// Replies of one batch of instructions, as they arrive.
class ReplyQueue {
 public:
  using Item = std::pair<size_t, absl::StatusOr<Reply>>;

  void Push(size_t index, absl::StatusOr<Reply> reply) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.emplace_back(index, std::move(reply));
    }
    cv_.notify_all();
  }

  // The next reply; nullopt when the deadline passed or Wake() was called.
  std::optional<Item> Pop(std::optional<absl::Time> deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    auto ready = [&] { return woken_ || !items_.empty(); };
    if (deadline) {
      const absl::Duration left = *deadline - absl::Now();
      const auto wait = std::chrono::nanoseconds(absl::ToInt64Nanoseconds(std::max(left, absl::ZeroDuration())));
      if (!cv_.wait_for(lock, wait, ready)) return std::nullopt;
    } else {
      cv_.wait(lock, ready);
    }
    if (items_.empty()) return std::nullopt;
    Item item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

  void Wake() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_;
  bool woken_ = false;
};

namespace {

namespace fs = std::filesystem;
using flwr::proto::ClientMessage;
using flwr::proto::ServerMessage;

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

std::string TimeoutMessage(absl::Duration timeout) {
  // Flower's wording (grpc_bridge): "Timeout of Xsec was exceeded."
  return fmt::format("Timeout of {}sec was exceeded.", Seconds(timeout));
}

std::string_view MessageKind(ClientMessage::MsgCase c) {
  switch (c) {
    case ClientMessage::kDisconnectRes:
      return "disconnect_res";
    case ClientMessage::kGetPropertiesRes:
      return "get_properties_res";
    case ClientMessage::kGetParametersRes:
      return "get_parameters_res";
    case ClientMessage::kFitRes:
      return "fit_res";
    case ClientMessage::kEvaluateRes:
      return "evaluate_res";
    default:
      return "an empty message";
  }
}

// Parses a reply and checks that it is the kind the instruction expects.
absl::StatusOr<ClientMessage> ParseReply(absl::StatusOr<Reply> reply,
                                         ClientMessage::MsgCase expected) {
  if (!reply.ok()) return reply.status();
  PETAL_ASSIGN_OR_RETURN(ClientMessage message, ParseClientMessage(reply->bytes));
  reply->bytes.Clear();  // the parsed message owns the data now
  reply->lease.reset();  // let the transport read the next reply
  if (message.msg_case() != expected) {
    return absl::InvalidArgumentError(fmt::format("expected {} in reply, got {}", MessageKind(expected),
                                                  MessageKind(message.msg_case())));
  }
  return message;
}

std::vector<ClientConnectionPtr> Connections(const std::vector<strategy::ClientProxyPtr>& proxies) {
  std::vector<ClientConnectionPtr> out;
  for (const auto& p : proxies) out.push_back(std::dynamic_pointer_cast<ClientConnection>(p));
  return out;
}

// Serializes one ServerMessage per distinct instruction (same parameters and
// config share one buffer, so the model bytes exist once per round).
template <typename Ins, typename Fill>
std::vector<grpc::ByteBuffer> SerializeAll(const std::vector<const Ins*>& instructions, Fill fill) {
  std::vector<grpc::ByteBuffer> out;
  std::vector<std::pair<const Ins*, size_t>> seen;
  for (const Ins* ins : instructions) {
    bool reused = false;
    for (const auto& [prev, index] : seen) {
      if (prev->parameters == ins->parameters && prev->config == ins->config) {
        out.push_back(out[index]);
        reused = true;
        break;
      }
    }
    if (reused) continue;
    ServerMessage message;
    fill(*ins, &message);
    seen.emplace_back(ins, out.size());
    out.push_back(SerializeServerMessage(message));
  }
  return out;
}

std::string CidOf(const ClientConnectionPtr& c) { return c ? c->cid() : std::string("?"); }

}  // namespace

Server::Server(ServerOptions options, strategy::StrategyPtr strategy, strategy::ClientManager& manager)
    : options_(std::move(options)), strategy_(std::move(strategy)), manager_(manager) {}

Server::~Server() = default;

void Server::RequestStop() {
  if (stop_.exchange(true)) return;
  manager_.Shutdown();
  std::lock_guard<std::mutex> lock(mu_);
  if (active_) active_->Wake();
}

absl::Status Server::Exchange(const std::vector<ClientConnectionPtr>& connections,
                              const std::vector<grpc::ByteBuffer>& messages,
                              size_t expected_reply_bytes, std::optional<absl::Duration> timeout,
                              const ReplyHandler& on_reply) {
  auto queue = std::make_shared<ReplyQueue>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_ = queue;
  }
  struct Reset {
    Server* s;
    ~Reset() {
      std::lock_guard<std::mutex> lock(s->mu_);
      s->active_.reset();
    }
  } reset{this};
  if (stop_.load()) return absl::CancelledError("stop requested");

  std::set<size_t> pending;
  for (size_t i = 0; i < connections.size(); ++i) {
    pending.insert(i);
    if (!connections[i]) {
      queue->Push(i, absl::InternalError("not a client connection"));
      continue;
    }
    connections[i]->Send(messages[i], expected_reply_bytes, [queue, i](absl::StatusOr<Reply> reply) {
      queue->Push(i, std::move(reply));
    });
  }
  const std::optional<absl::Time> deadline =
      timeout ? std::optional<absl::Time>(absl::Now() + *timeout) : std::nullopt;
  while (!pending.empty()) {
    std::optional<ReplyQueue::Item> item = queue->Pop(deadline);
    if (stop_.load()) return absl::CancelledError("stop requested");
    if (!item) {
      // Deadline: abort the late streams, as Flower does, and count them as failures.
      for (size_t i : pending) {
        const absl::Status late = absl::DeadlineExceededError(TimeoutMessage(*timeout));
        connections[i]->Close(late);
        manager_.Unregister(connections[i]->cid());  // do not sample it again meanwhile
        on_reply(i, late);
      }
      return absl::OkStatus();
    }
    if (pending.erase(item->first) == 0) continue;  // already handled
    on_reply(item->first, std::move(item->second));
  }
  return absl::OkStatus();
}

absl::StatusOr<common::NDArrays> Server::InitialParameters() {
  PETAL_ASSIGN_OR_RETURN(std::optional<common::NDArrays> from_strategy,
                         strategy_->InitializeParameters(manager_));
  if (from_strategy) {
    log::Info("Using initial global parameters provided by strategy ({} arrays)", from_strategy->size());
    return *std::move(from_strategy);
  }
  for (int64_t attempt = 1; attempt <= options_.get_parameters_attempts; ++attempt) {
    log::Info("Requesting initial parameters from one random client (attempt {}/{})", attempt,
              options_.get_parameters_attempts);
    std::vector<ClientConnectionPtr> picked =
        Connections(manager_.Sample(1, 1, (uint64_t{1} << 62) + static_cast<uint64_t>(attempt)));
    if (stop_.load()) return absl::CancelledError("stop requested");
    if (picked.empty()) {
      return absl::UnavailableError("no client connected to ask for the initial parameters");
    }
    ServerMessage message;
    common::GetParametersInsToProto(common::GetParametersIns{}, message.mutable_get_parameters_ins());
    absl::StatusOr<common::NDArrays> result = absl::UnknownError("no reply");
    // The reply is a whole model of unknown size: charge a generous estimate.
    PETAL_RETURN_IF_ERROR(Exchange(picked, {SerializeServerMessage(message)}, size_t{64} << 20,
                                   options_.round_timeout,
                                   [&](size_t, absl::StatusOr<Reply> reply) {
                                     auto msg = ParseReply(std::move(reply), ClientMessage::kGetParametersRes);
                                     if (!msg.ok()) {
                                       result = msg.status();
                                       return;
                                     }
                                     auto res = common::GetParametersResFromProto(
                                         std::move(*msg->mutable_get_parameters_res()));
                                     if (!res.ok()) {
                                       result = res.status();
                                       return;
                                     }
                                     absl::Status valid = ValidateGetParametersRes(*res);
                                     if (!valid.ok()) {
                                       result = valid;
                                       return;
                                     }
                                     result = std::move(res->parameters);
                                   }));
    if (result.ok()) {
      log::Info("Received initial parameters from client {} ({} arrays)", picked[0]->cid(), result->size());
      return result;
    }
    log::Warn("Client {} did not provide initial parameters: {}", picked[0]->cid(), result.status());
  }
  return absl::UnavailableError(fmt::format(
      "no client provided initial parameters in {} attempts; give initial_parameters in the config",
      options_.get_parameters_attempts));
}

absl::Status Server::FitRound(int64_t round, RoundRecord& record) {
  const absl::Time start = absl::Now();
  std::vector<strategy::FitInstruction> instructions = strategy_->ConfigureFit(round, global_, manager_);
  if (stop_.load()) return absl::CancelledError("stop requested");
  record.fit_sampled = static_cast<int64_t>(instructions.size());
  if (instructions.empty()) {
    log::Info("[ROUND {}] configure_fit: no clients selected, cancel", round);
    return absl::OkStatus();
  }
  log::Info("[ROUND {}] configure_fit: strategy sampled {} clients (out of {})", round,
            instructions.size(), manager_.NumAvailable());
  PETAL_ASSIGN_OR_RETURN(strategy::FitAggregatorPtr aggregator, strategy_->BeginAggregateFit(round, global_));

  std::vector<strategy::ClientProxyPtr> proxies;
  std::vector<const common::FitIns*> ins;
  for (const auto& i : instructions) {
    proxies.push_back(i.client);
    ins.push_back(&i.ins);
  }
  std::vector<ClientConnectionPtr> connections = Connections(proxies);
  std::vector<grpc::ByteBuffer> messages = SerializeAll(ins, [](const common::FitIns& i, ServerMessage* m) {
    common::FitInsToProto(i, m->mutable_fit_ins());
  });
  std::vector<strategy::Failure> failures;
  const common::NDArrays& global = *global_;
  auto fail = [&](size_t i, absl::Status why) {
    log::Warn("[ROUND {}] fit failure from client {}: {}", round, CidOf(connections[i]), why);
    record.failures.push_back({"fit", CidOf(connections[i]), why.ToString()});
    failures.push_back({CidOf(connections[i]), std::move(why)});
  };
  // A fit reply is about the size of the model sent (the largest instruction).
  size_t fit_reply_bytes = 0;
  for (const grpc::ByteBuffer& m : messages) fit_reply_bytes = std::max(fit_reply_bytes, m.Length());
  PETAL_RETURN_IF_ERROR(Exchange(
      connections, messages, fit_reply_bytes, options_.round_timeout,
      [&](size_t i, absl::StatusOr<Reply> reply) {
        absl::StatusOr<ClientMessage> msg = ParseReply(std::move(reply), ClientMessage::kFitRes);
        if (!msg.ok()) return fail(i, msg.status());
        absl::StatusOr<common::FitRes> res = common::FitResFromProto(std::move(*msg->mutable_fit_res()));
        if (!res.ok()) return fail(i, res.status());
        absl::Status valid = ValidateFitRes(*res, global);
        if (!valid.ok()) return fail(i, valid);
        absl::Status added = aggregator->Add(strategy::FitResult{proxies[i], *std::move(res)});
        if (!added.ok()) return fail(i, common::Annotate(added, "refused by the aggregator"));
      }));
  record.fit_results = aggregator->num_results();
  record.fit_failures = static_cast<int64_t>(failures.size());
  log::Info("[ROUND {}] aggregate_fit: received {} results and {} failures", round,
            record.fit_results, record.fit_failures);
  absl::StatusOr<strategy::FitAggregate> aggregate = aggregator->Finish(failures);
  if (!aggregate.ok()) {
    log::Error("[ROUND {}] aggregation failed, keeping the current model: {}", round, aggregate.status());
    record.failures.push_back({"aggregate", "", aggregate.status().ToString()});
  } else {
    record.fit_metrics = aggregate->metrics;
    if (aggregate->parameters) {
      global_ = common::Share(*std::move(aggregate->parameters));
      record.model_updated = true;
    } else {
      log::Info("[ROUND {}] the strategy kept the current model", round);
    }
  }
  record.fit_seconds = Seconds(absl::Now() - start);
  return absl::OkStatus();
}

absl::Status Server::Centralized(int64_t round, RoundRecord& record, bool* any) {
  PETAL_ASSIGN_OR_RETURN(std::optional<strategy::CentralEvaluation> central,
                         strategy_->Evaluate(round, *global_));
  *any = central.has_value();
  if (central) {
    log::Info("[ROUND {}] centralized evaluation: loss {} metrics {}", round, central->loss,
              central->metrics.DebugString());
    record.loss_centralized = central->loss;
    record.centralized_metrics = std::move(central->metrics);
  }
  return absl::OkStatus();
}

absl::Status Server::EvaluateRound(int64_t round, RoundRecord& record) {
  const absl::Time start = absl::Now();
  std::vector<strategy::EvaluateInstruction> instructions =
      strategy_->ConfigureEvaluate(round, global_, manager_);
  if (stop_.load()) return absl::CancelledError("stop requested");
  record.evaluate_sampled = static_cast<int64_t>(instructions.size());
  if (instructions.empty()) {
    log::Info("[ROUND {}] configure_evaluate: no clients selected, skipping evaluation", round);
    return absl::OkStatus();
  }
  log::Info("[ROUND {}] configure_evaluate: strategy sampled {} clients (out of {})", round,
            instructions.size(), manager_.NumAvailable());
  std::vector<strategy::ClientProxyPtr> proxies;
  std::vector<const common::EvaluateIns*> ins;
  for (const auto& i : instructions) {
    proxies.push_back(i.client);
    ins.push_back(&i.ins);
  }
  std::vector<ClientConnectionPtr> connections = Connections(proxies);
  std::vector<grpc::ByteBuffer> messages =
      SerializeAll(ins, [](const common::EvaluateIns& i, ServerMessage* m) {
        common::EvaluateInsToProto(i, m->mutable_evaluate_ins());
      });
  std::vector<strategy::EvaluateResult> results;
  std::vector<strategy::Failure> failures;
  auto fail = [&](size_t i, absl::Status why) {
    log::Warn("[ROUND {}] evaluate failure from client {}: {}", round, CidOf(connections[i]), why);
    record.failures.push_back({"evaluate", CidOf(connections[i]), why.ToString()});
    failures.push_back({CidOf(connections[i]), std::move(why)});
  };
  // An evaluate reply carries a loss and metrics only.
  PETAL_RETURN_IF_ERROR(Exchange(
      connections, messages, /*expected_reply_bytes=*/1024, options_.round_timeout,
      [&](size_t i, absl::StatusOr<Reply> reply) {
        absl::StatusOr<ClientMessage> msg = ParseReply(std::move(reply), ClientMessage::kEvaluateRes);
        if (!msg.ok()) return fail(i, msg.status());
        absl::StatusOr<common::EvaluateRes> res = common::EvaluateResFromProto(msg->evaluate_res());
        if (!res.ok()) return fail(i, res.status());
        absl::Status valid = ValidateEvaluateRes(*res);
        if (!valid.ok()) return fail(i, valid);
        results.push_back(strategy::EvaluateResult{proxies[i], *std::move(res)});
      }));
  record.evaluate_results = static_cast<int64_t>(results.size());
  record.evaluate_failures = static_cast<int64_t>(failures.size());
  log::Info("[ROUND {}] aggregate_evaluate: received {} results and {} failures", round,
            results.size(), failures.size());
  absl::StatusOr<strategy::EvaluateAggregate> aggregate =
      strategy_->AggregateEvaluate(round, results, failures);
  if (!aggregate.ok()) {
    log::Error("[ROUND {}] evaluation aggregation failed: {}", round, aggregate.status());
    record.failures.push_back({"aggregate_evaluate", "", aggregate.status().ToString()});
  } else {
    record.loss_distributed = aggregate->loss;
    record.evaluate_metrics = std::move(aggregate->metrics);
    if (aggregate->loss) {
      log::Info("[ROUND {}] federated evaluation: loss {} metrics {}", round, *aggregate->loss,
                record.evaluate_metrics.DebugString());
    }
  }
  record.evaluate_seconds = Seconds(absl::Now() - start);
  return absl::OkStatus();
}

void Server::DisconnectAll() {
  std::vector<ClientConnectionPtr> all = Connections(manager_.All());
  std::vector<ClientConnectionPtr> idle;
  for (const ClientConnectionPtr& c : all) {
    if (!c) continue;
    if (c->busy()) {
      // Still working on an abandoned instruction: it cannot take ReconnectIns now.
      c->Close(absl::UnavailableError("the server is shutting down"));
    } else {
      idle.push_back(c);
    }
  }
  if (idle.empty()) return;
  ServerMessage message;
  message.mutable_reconnect_ins();  // seconds unset: 0 on the wire (disconnect for good)
  const grpc::ByteBuffer bytes = SerializeServerMessage(message);
  std::vector<grpc::ByteBuffer> messages(idle.size(), bytes);
  int64_t acknowledged = 0;
  int64_t closed_first = 0;
  // Not cancellable by a stop request: this is the orderly goodbye.
  auto queue = std::make_shared<ReplyQueue>();
  std::set<size_t> pending;
  for (size_t i = 0; i < idle.size(); ++i) {
    pending.insert(i);
    idle[i]->Send(messages[i], /*expected_reply_bytes=*/64,
                  [queue, i](absl::StatusOr<Reply> r) { queue->Push(i, std::move(r)); });
  }
  const absl::Time deadline = absl::Now() + options_.reconnect_timeout;
  while (!pending.empty()) {
    std::optional<ReplyQueue::Item> item = queue->Pop(deadline);
    if (!item) break;
    pending.erase(item->first);
    auto msg = ParseReply(std::move(item->second), ClientMessage::kDisconnectRes);
    if (msg.ok()) {
      ++acknowledged;
    } else {
      // Flower's Python client queues its DisconnectRes and closes the channel at
      // once, so the reply often never leaves it: a closed stream is a goodbye too.
      closed_first += absl::IsUnavailable(msg.status());
      log::Debug("client {} did not answer ReconnectIns: {}", idle[item->first]->cid(), msg.status());
    }
  }
  for (size_t i : pending) idle[i]->Close(absl::DeadlineExceededError("no DisconnectRes in time"));
  log::Info("Sent ReconnectIns to {} clients: {} answered DisconnectRes, {} closed their stream, {} "
            "did neither within {}", idle.size(), acknowledged, closed_first, pending.size(),
            absl::FormatDuration(options_.reconnect_timeout));
}

absl::Status Server::SaveCheckpointFor(int64_t round) const {
  if (options_.checkpoint_dir.empty()) return absl::OkStatus();
  Checkpoint c;
  c.round = round;
  c.strategy = std::string(strategy_->name());
  c.parameters = *global_;
  c.strategy_state = strategy_->SaveState();
  c.history = history_;
  return SaveCheckpoint(options_.checkpoint_dir, c, options_.checkpoints_to_keep);
}

absl::Status Server::SaveOutputs(const RunResult& result) const {
  if (options_.output_dir.empty()) return absl::OkStatus();
  PETAL_RETURN_IF_ERROR(common::CreateDirectories(options_.output_dir));
  const fs::path dir(options_.output_dir);
  nlohmann::json history = result.history.ToJson();
  history["completed"] = result.outcome == RunOutcome::kCompleted;
  history["last_round"] = result.last_round;
  history["strategy"] = std::string(strategy_->name());
  PETAL_RETURN_IF_ERROR(common::WriteFileAtomically((dir / "history.json").string(), history.dump(1) + "\n"));
  PETAL_RETURN_IF_ERROR(common::WriteFileAtomically((dir / "history.csv").string(), result.history.ToCsv()));
  common::NamedArrays arrays;
  for (size_t i = 0; i < result.parameters->size(); ++i) {
    arrays.emplace_back(fmt::format("arr_{}", i), (*result.parameters)[i]);
  }
  return common::WriteNpz((dir / "model.npz").string(), arrays);
}

absl::StatusOr<RunResult> Server::Run() {
  RunResult result;
  int64_t first_round = 1;
  if (options_.resume) {
    if (options_.checkpoint_dir.empty()) {
      return absl::FailedPreconditionError("resume needs a checkpoint_dir");
    }
    PETAL_ASSIGN_OR_RETURN(Checkpoint c, LoadCheckpoint(options_.checkpoint_dir));
    if (c.strategy != strategy_->name()) {
      return absl::FailedPreconditionError(fmt::format(
          "the checkpoint in {} was written by strategy '{}', the config says '{}'",
          options_.checkpoint_dir, c.strategy, strategy_->name()));
    }
    PETAL_RETURN_IF_ERROR(common::Annotate(strategy_->LoadState(c.strategy_state), "resume"));
    // The strategy's own initial parameters are superseded by the checkpoint.
    PETAL_RETURN_IF_ERROR(strategy_->InitializeParameters(manager_).status());
    global_ = common::Share(std::move(c.parameters));
    history_ = std::move(c.history);
    history_.TruncateAfter(c.round);
    first_round = c.round + 1;
    log::Info("Resuming after round {} from {} ({} arrays)", c.round, options_.checkpoint_dir, global_->size());
  } else {
    log::Info("[INIT]");
    absl::StatusOr<common::NDArrays> initial = InitialParameters();
    if (!initial.ok() && stop_.load()) {
      result.outcome = RunOutcome::kStopped;
      result.parameters = common::Share({});
      DisconnectAll();
      return result;
    }
    if (!initial.ok()) return initial.status();
    global_ = common::Share(*std::move(initial));
    RoundRecord zero;
    bool any = false;
    PETAL_RETURN_IF_ERROR(Centralized(0, zero, &any));
    if (any) history_.Add(std::move(zero));
  }
  result.last_round = first_round - 1;

  for (int64_t round = first_round; round <= options_.num_rounds; ++round) {
    log::Info("[ROUND {}]", round);
    RoundRecord record;
    record.round = round;
    const common::SharedNDArrays before = global_;
    absl::Status fit = FitRound(round, record);
    if (fit.ok()) {
      bool any = false;
      PETAL_RETURN_IF_ERROR(Centralized(round, record, &any));
      fit = EvaluateRound(round, record);
    }
    if (absl::IsCancelled(fit) && stop_.load()) {
      global_ = before;  // the outputs describe the last completed round
      log::Warn("Stop requested: round {} abandoned; the checkpoint of round {} stands", round, round - 1);
      break;
    }
    PETAL_RETURN_IF_ERROR(fit);
    history_.Add(std::move(record));
    PETAL_RETURN_IF_ERROR(SaveCheckpointFor(round));
    if (!options_.checkpoint_dir.empty()) {
      log::Info("[ROUND {}] checkpoint saved in {}", round, options_.checkpoint_dir);
    }
    result.last_round = round;
    if (stop_.load()) break;
  }
  result.outcome = stop_.load() && result.last_round < options_.num_rounds ? RunOutcome::kStopped
                                                                           : RunOutcome::kCompleted;
  result.history = history_;
  result.parameters = global_;
  PETAL_RETURN_IF_ERROR(SaveOutputs(result));
  DisconnectAll();
  return result;
}

}  // namespace petal::server
