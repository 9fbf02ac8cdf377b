// File: fedavg.h
//
// FedAvg (Flower's flwr.server.strategy.FedAvg) and its thin variants FedProx
// and FedAvgM. Defaults are Flower's legacy ones (fraction_fit=1.0,
// fraction_evaluate=1.0, min_fit_clients=2, min_evaluate_clients=2,
// min_available_clients=2, accept_failures=true).
//
// Sampling: sample size = max(int(available * fraction), min_*), then
// ClientManager::Sample waits for min_available_clients; fraction_evaluate == 0
// turns federated evaluation off. Aggregation folds each result into a
// WeightedAverage as it arrives (aggregate.h explains the numerics).
// Not thread-safe: one round loop drives a strategy.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "strategy/aggregate.h"
#include "strategy/params.h"
#include "strategy/strategy.h"

namespace petal::strategy {

enum class MetricsAggregation {
  kNone,             // Flower's default when no *_metrics_aggregation_fn is given: {}
  kWeightedAverage,  // num_examples-weighted mean of every numeric metric
};
absl::StatusOr<MetricsAggregation> ParseMetricsAggregation(std::string_view name);

struct FedAvgOptions {
  double fraction_fit = 1.0;
  double fraction_evaluate = 1.0;
  int64_t min_fit_clients = 2;
  int64_t min_evaluate_clients = 2;
  int64_t min_available_clients = 2;
  bool accept_failures = true;
  Accumulation accumulation = Accumulation::kFloat64;
  IntegerPolicy integer_arrays = IntegerPolicy::kRound;
  MetricsAggregation fit_metrics_aggregation = MetricsAggregation::kWeightedAverage;
  MetricsAggregation evaluate_metrics_aggregation = MetricsAggregation::kWeightedAverage;
  // Returned once by InitializeParameters (nullopt: ask a client).
  std::optional<NDArrays> initial_parameters;
  ConfigFn on_fit_config;       // null: empty config
  ConfigFn on_evaluate_config;  // null: empty config
  EvaluateFn evaluate_fn;       // null: no centralized evaluation

  // The parameters every FedAvg-family strategy accepts, with Flower's defaults.
  static std::vector<ParamSpec> Specs();
  // Reads the Specs() values from validated params (hooks and initial
  // parameters are left unset).
  static absl::StatusOr<FedAvgOptions> FromParams(const Params& params);
};

class FedAvg : public Strategy {
 public:
  explicit FedAvg(FedAvgOptions options);

  std::string_view name() const override { return "fedavg"; }
  absl::StatusOr<std::optional<NDArrays>> InitializeParameters(ClientManager& manager) override;
  std::vector<FitInstruction> ConfigureFit(int64_t server_round, const SharedNDArrays& parameters,
                                           ClientManager& manager) override;
  absl::StatusOr<FitAggregatorPtr> BeginAggregateFit(int64_t server_round,
                                                     const SharedNDArrays& current) override;
  std::vector<EvaluateInstruction> ConfigureEvaluate(int64_t server_round,
                                                     const SharedNDArrays& parameters,
                                                     ClientManager& manager) override;
  absl::StatusOr<EvaluateAggregate> AggregateEvaluate(int64_t server_round,
                                                      const std::vector<EvaluateResult>& results,
                                                      const std::vector<Failure>& failures) override;
  absl::StatusOr<std::optional<CentralEvaluation>> Evaluate(int64_t server_round,
                                                            const NDArrays& parameters) override;

  // Flower's num_fit_clients / num_evaluation_clients: (sample size, minimum available).
  std::pair<int64_t, int64_t> NumFitClients(int64_t num_available) const;
  std::pair<int64_t, int64_t> NumEvaluationClients(int64_t num_available) const;

  const FedAvgOptions& options() const { return options_; }

  // Turns the round's weighted average into the new global model. FedAvg: the
  // average itself; FedOpt/FedAvgM apply their server optimizer. Called by the
  // aggregator's Finish with at least one result.
  virtual absl::StatusOr<NDArrays> ServerUpdate(int64_t server_round, const SharedNDArrays& current,
                                                NDArrays average);

 protected:
  // The config sent with FitIns this round (FedProx adds proximal_mu).
  virtual ConfigMap FitConfig(int64_t server_round);
  // Whether Finish should produce no model given the failures.
  bool RejectRound(size_t num_results, size_t num_failures) const;
  ConfigMap AggregateFitMetrics(const std::vector<std::pair<int64_t, ConfigMap>>& metrics) const;

 private:
  FedAvgOptions options_;
};

// FedProx: FedAvg plus "proximal_mu" in every fit config; the proximal term
// (mu/2)*||w - w_global||^2 is the client's business.
class FedProx : public FedAvg {
 public:
  FedProx(FedAvgOptions options, double proximal_mu);
  std::string_view name() const override { return "fedprox"; }
  double proximal_mu() const { return proximal_mu_; }

 protected:
  ConfigMap FitConfig(int64_t server_round) override;

 private:
  double proximal_mu_;
};

// FedAvgM: server-side SGD with momentum on the pseudo-gradient x - avg, only
// when server_learning_rate != 1 or server_momentum != 0 (else plain FedAvg).
// Flower's FedAvgM averages with its non-inplace formula. Where Flower asserts
// (momentum missing after round 1, e.g. round 1 had no results), Petal starts
// the momentum afresh.
class FedAvgM : public FedAvg {
 public:
  FedAvgM(FedAvgOptions options, double server_learning_rate, double server_momentum);
  std::string_view name() const override { return "fedavgm"; }
  absl::StatusOr<NDArrays> ServerUpdate(int64_t server_round, const SharedNDArrays& current,
                                        NDArrays average) override;
  StrategyState SaveState() const override;
  absl::Status LoadState(const StrategyState& state) override;

 private:
  double server_learning_rate_;
  double server_momentum_;
  NDArrays momentum_vector_;
};

// Helpers shared with other strategies' checkpoints: arrays named
// "<prefix>.0", "<prefix>.1", ... in order.
void AppendNamedArrays(std::string_view prefix, const NDArrays& arrays, common::NamedArrays* out);
// Collects "<prefix>.<i>" entries; InvalidArgument if the indices are not 0..n-1.
absl::StatusOr<NDArrays> ExtractNamedArrays(std::string_view prefix, const common::NamedArrays& in);

}  // namespace petal::strategy
