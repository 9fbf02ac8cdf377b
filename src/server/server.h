// File: server.h
//
// The round loop (Flower's legacy Server.fit), independent of the transport:
// it drives a Strategy over the ClientConnections registered in a
// ClientManager.
//
//   Server server(options, std::move(strategy), manager);
//   PETAL_ASSIGN_OR_RETURN(RunResult result, server.Run());   // blocks
//
// Per run: initial parameters (checkpoint with resume, else the strategy's,
// else one random client's get_parameters); centralized evaluation of them;
// then for each round: ConfigureFit -> send FitIns to the sampled clients at
// once -> fold each validated reply into the strategy's aggregator as it
// arrives -> Finish; centralized Evaluate; ConfigureEvaluate -> EvaluateIns ->
// AggregateEvaluate; record history; checkpoint. At the end, ReconnectIns
// (seconds = 0) to every connected client and wait (bounded) for each
// DisconnectRes. A reply that is late (round_timeout, counted per instruction
// from when it was sent), malformed, of the wrong kind, non-OK or that fails
// validation.h counts as a failure with its reason.
//
// RequestStop() (SIGTERM) abandons the round in flight, keeps the last
// completed round's checkpoint, writes the outputs and returns kStopped.
// Run() is called once; RequestStop() is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/messages.h"
#include "server/client_connection.h"
#include "server/history.h"
#include "strategy/strategy.h"

namespace petal::server {

class ReplyQueue;

struct ServerOptions {
  int64_t num_rounds = 1;
  // Per instruction, from sending it until its reply; nullopt waits forever
  // (Flower's round_timeout=None).
  std::optional<absl::Duration> round_timeout;
  // How long the end-of-run ReconnectIns waits for the DisconnectRes replies.
  absl::Duration reconnect_timeout = absl::Seconds(30);
  // Clients tried for the initial get_parameters before giving up.
  int64_t get_parameters_attempts = 3;
  // Checkpoint after every round; "" disables checkpoints (and resume).
  std::string checkpoint_dir;
  int checkpoints_to_keep = 2;
  // history.json, history.csv, model.npz; "" disables.
  std::string output_dir;
  // Continue from the checkpoint in checkpoint_dir (error if there is none).
  bool resume = false;
};

enum class RunOutcome { kCompleted, kStopped };

struct RunResult {
  RunOutcome outcome = RunOutcome::kCompleted;
  int64_t last_round = 0;  // the last round whose results are in `parameters`
  History history;
  common::SharedNDArrays parameters;
};

class Server {
 public:
  Server(ServerOptions options, strategy::StrategyPtr strategy, strategy::ClientManager& manager);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Runs the federation. Errors: a checkpoint/output that cannot be written or
  // read, no initial parameters obtainable, a resume that does not fit the
  // configured strategy.
  absl::StatusOr<RunResult> Run();
  // Asks Run() to stop soon. Thread-safe; idempotent.
  void RequestStop();
  bool stop_requested() const { return stop_.load(); }

 private:
  using ReplyHandler = std::function<void(size_t, absl::StatusOr<Reply>)>;
  // Sends messages[i] to connections[i] all at once and hands each reply (or
  // its failure, DeadlineExceeded for a timed-out one, whose stream is closed)
  // to `on_reply` on this thread. Cancelled if a stop was requested meanwhile.
  absl::Status Exchange(const std::vector<ClientConnectionPtr>& connections,
                        const std::vector<grpc::ByteBuffer>& messages, size_t expected_reply_bytes,
                        std::optional<absl::Duration> timeout, const ReplyHandler& on_reply);
  absl::StatusOr<common::NDArrays> InitialParameters();
  absl::Status FitRound(int64_t round, RoundRecord& record);
  absl::Status EvaluateRound(int64_t round, RoundRecord& record);
  absl::Status Centralized(int64_t round, RoundRecord& record, bool* any);
  void DisconnectAll();
  absl::Status SaveOutputs(const RunResult& result) const;
  absl::Status SaveCheckpointFor(int64_t round) const;

  const ServerOptions options_;
  strategy::StrategyPtr strategy_;
  strategy::ClientManager& manager_;
  common::SharedNDArrays global_;
  History history_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::shared_ptr<ReplyQueue> active_ ABSL_GUARDED_BY(mu_);
};

}  // namespace petal::server
