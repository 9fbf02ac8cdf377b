// File: strategy.h
//
// The Strategy interface: what a federated server asks its aggregation policy
// each round. It mirrors the six methods of Flower's legacy
// flwr.server.strategy.Strategy (initialize_parameters, configure_fit,
// aggregate_fit, configure_evaluate, aggregate_evaluate, evaluate) in Google
// naming, with Petal's typed messages (common/messages.h) in place of
// flwr.common's, and adds a streaming form of aggregate_fit so that a server can
// fold each result in as it arrives (memory O(model), not O(clients x model)).
//
//   PETAL_ASSIGN_OR_RETURN(StrategyPtr strategy, MakeStrategy(config));   // registry.h
//   std::vector<FitInstruction> ins = strategy->ConfigureFit(round, global, manager);
//   PETAL_ASSIGN_OR_RETURN(FitAggregatorPtr agg, strategy->BeginAggregateFit(round, global));
//   for (each reply as it arrives) if (!agg->Add(std::move(result)).ok()) ...count a failure
//   PETAL_ASSIGN_OR_RETURN(FitAggregate out, agg->Finish(failures));
//   if (out.parameters) global = Share(*std::move(out.parameters));      // empty: keep the model
//
// Strategies hold no transport: they sample ClientProxy identities from a
// ClientManager (client_manager.h). A Strategy is used by one round loop at a
// time and is not thread-safe; a FitAggregator is likewise single-caller.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/messages.h"
#include "common/npz.h"
#include "common/scalar.h"
#include "strategy/client_manager.h"

namespace petal::strategy {

using common::ConfigMap;
using common::EvaluateIns;
using common::EvaluateRes;
using common::FitIns;
using common::FitRes;
using common::NDArrays;
using common::SharedNDArrays;

struct FitInstruction {
  ClientProxyPtr client;
  FitIns ins;
};
struct EvaluateInstruction {
  ClientProxyPtr client;
  EvaluateIns ins;
};

// A reply with status OK. The server has already checked it against the global
// model (array count, dtypes, shapes, finite values, num_examples > 0).
struct FitResult {
  ClientProxyPtr client;
  FitRes res;
};
struct EvaluateResult {
  ClientProxyPtr client;
  EvaluateRes res;
};
// An instruction that produced no usable result: transport error, timeout,
// non-OK reply status, or a reply rejected by validation. `cid` may be empty
// when the client is unknown.
struct Failure {
  std::string cid;
  absl::Status error;
};

// Outcome of aggregate_fit: new global parameters, or nullopt to keep the
// current ones (no results, failures not accepted, ...), plus metrics.
struct FitAggregate {
  std::optional<NDArrays> parameters;
  ConfigMap metrics;
};
// Outcome of aggregate_evaluate: the aggregated loss (nullopt: none), metrics.
struct EvaluateAggregate {
  std::optional<double> loss;
  ConfigMap metrics;
};
// Outcome of centralized (server-side) evaluation.
struct CentralEvaluation {
  double loss = 0.0;
  ConfigMap metrics;
};

// Centralized evaluation hook (Flower's evaluate_fn): (round, parameters) ->
// result, or nullopt to skip.
using EvaluateFn =
    std::function<absl::StatusOr<std::optional<CentralEvaluation>>(int64_t, const NDArrays&)>;
// Per-round instruction config (Flower's on_fit_config_fn / on_evaluate_config_fn).
using ConfigFn = std::function<ConfigMap(int64_t)>;

// The strategy's own state beyond the global model (optimizer moments,
// momentum...), for checkpoints. Array names are the strategy's choice.
struct StrategyState {
  common::NamedArrays arrays;
  ConfigMap scalars;
};

// One round of fit aggregation in progress. Not thread-safe.
class FitAggregator {
 public:
  FitAggregator() = default;
  FitAggregator(const FitAggregator&) = delete;
  FitAggregator& operator=(const FitAggregator&) = delete;
  virtual ~FitAggregator();

  // Folds in one result. InvalidArgument (naming the array) if it cannot be
  // combined with what was added before (another array count, dtype or shape,
  // num_examples <= 0, an integer array the policy rejects); the aggregate is
  // then unchanged and the caller should count the result as a failure.
  virtual absl::Status Add(FitResult result) = 0;
  // Number of results folded in so far.
  virtual int64_t num_results() const = 0;
  // Ends the round. `failures` are all of the round's failures (including
  // results Add refused). Returns the aggregate, or an error if the aggregation
  // itself is impossible (the caller keeps the current model and logs it).
  virtual absl::StatusOr<FitAggregate> Finish(const std::vector<Failure>& failures) = 0;
};
using FitAggregatorPtr = std::unique_ptr<FitAggregator>;

class Strategy {
 public:
  Strategy() = default;
  Strategy(const Strategy&) = delete;
  Strategy& operator=(const Strategy&) = delete;
  virtual ~Strategy();

  // Registry name ("fedavg", "fedadam", ...).
  virtual std::string_view name() const = 0;

  // Initial global parameters, or nullopt to ask one client (get_parameters).
  // Like Flower, returns the configured initial parameters once and then
  // forgets them.
  virtual absl::StatusOr<std::optional<NDArrays>> InitializeParameters(ClientManager& manager) = 0;

  // Picks clients for training round `server_round` (>= 1) and what to send
  // them. May block in manager.Sample() waiting for clients. Empty: skip.
  virtual std::vector<FitInstruction> ConfigureFit(int64_t server_round,
                                                   const SharedNDArrays& parameters,
                                                   ClientManager& manager) = 0;

  // Streaming aggregate_fit. `current` is the global model sent this round.
  virtual absl::StatusOr<FitAggregatorPtr> BeginAggregateFit(int64_t server_round,
                                                             const SharedNDArrays& current) = 0;

  // Flower's aggregate_fit over complete lists: BeginAggregateFit, Add each
  // result in order (a refused result is moved to the failures with its
  // reason), Finish.
  absl::StatusOr<FitAggregate> AggregateFit(int64_t server_round, const SharedNDArrays& current,
                                            std::vector<FitResult> results,
                                            std::vector<Failure> failures);

  // Picks clients for federated evaluation. Empty: skip.
  virtual std::vector<EvaluateInstruction> ConfigureEvaluate(int64_t server_round,
                                                             const SharedNDArrays& parameters,
                                                             ClientManager& manager) = 0;

  virtual absl::StatusOr<EvaluateAggregate> AggregateEvaluate(
      int64_t server_round, const std::vector<EvaluateResult>& results,
      const std::vector<Failure>& failures) = 0;

  // Centralized evaluation; nullopt when the strategy has no evaluation hook.
  virtual absl::StatusOr<std::optional<CentralEvaluation>> Evaluate(int64_t server_round,
                                                                    const NDArrays& parameters) = 0;

  // Checkpoint support: the state that, together with the global model and the
  // round number, lets a resumed run continue exactly. Default: stateless.
  virtual StrategyState SaveState() const;
  // Restores what SaveState wrote. InvalidArgument naming the entry if it does
  // not fit this strategy.
  virtual absl::Status LoadState(const StrategyState& state);
};
using StrategyPtr = std::unique_ptr<Strategy>;

// Which independent random stream a sampling draw uses: one per round and phase.
enum class Phase : uint64_t { kFit = 0, kEvaluate = 1 };
inline uint64_t DrawKey(int64_t server_round, Phase phase) {
  return (static_cast<uint64_t>(server_round) << 1) | static_cast<uint64_t>(phase);
}

}  // namespace petal::strategy
