#include "strategy/fedavg.h"

#include <map>
#include <utility>

#include <fmt/format.h>

#include "common/logging.h"
#include "common/status_macros.h"

namespace petal::strategy {
namespace {

// Streams results into a WeightedAverage; Finish hands the average to the
// strategy's ServerUpdate.
class WeightedFitAggregator final : public FitAggregator {
 public:
  WeightedFitAggregator(FedAvg& strategy, int64_t server_round, SharedNDArrays current)
      : strategy_(strategy),
        server_round_(server_round),
        current_(std::move(current)),
        average_(strategy.options().accumulation, strategy.options().integer_arrays) {}

  absl::Status Add(FitResult result) override {
    PETAL_RETURN_IF_ERROR(average_.Add(result.res.parameters, result.res.num_examples));
    metrics_.emplace_back(result.res.num_examples, std::move(result.res.metrics));
    return absl::OkStatus();
  }

  int64_t num_results() const override { return average_.count(); }

  absl::StatusOr<FitAggregate> Finish(const std::vector<Failure>& failures) override {
    FitAggregate out;
    if (average_.count() == 0) return out;
    if (!strategy_.options().accept_failures && !failures.empty()) return out;
    PETAL_ASSIGN_OR_RETURN(NDArrays average, average_.Result());
    PETAL_ASSIGN_OR_RETURN(NDArrays updated,
                           strategy_.ServerUpdate(server_round_, current_, std::move(average)));
    out.parameters = std::move(updated);
    if (strategy_.options().fit_metrics_aggregation == MetricsAggregation::kWeightedAverage) {
      std::vector<std::pair<int64_t, const ConfigMap*>> refs;
      for (const auto& [n, m] : metrics_) refs.emplace_back(n, &m);
      out.metrics = WeightedMetricsAverage(refs);
    }
    return out;
  }

 private:
  FedAvg& strategy_;
  const int64_t server_round_;
  const SharedNDArrays current_;
  WeightedAverage average_;
  std::vector<std::pair<int64_t, ConfigMap>> metrics_;
};

}  // namespace

absl::StatusOr<MetricsAggregation> ParseMetricsAggregation(std::string_view name) {
  if (name == "none") return MetricsAggregation::kNone;
  if (name == "weighted_average") return MetricsAggregation::kWeightedAverage;
  return absl::InvalidArgumentError(
      fmt::format("unknown metrics aggregation '{}' (expected none or weighted_average)", name));
}

std::vector<ParamSpec> FedAvgOptions::Specs() {
  using common::Scalar;
  return {
      {"fraction_fit", ParamType::kDouble, Scalar(1.0),
       "fraction of available clients sampled for training", 0.0, false, 1.0, false, {}},
      {"fraction_evaluate", ParamType::kDouble, Scalar(1.0),
       "fraction of available clients sampled for evaluation (0 disables federated evaluation)",
       0.0, false, 1.0, false, {}},
      {"min_fit_clients", ParamType::kInt, Scalar(int64_t{2}),
       "minimum number of clients sampled for training", 1.0, false, std::nullopt, false, {}},
      {"min_evaluate_clients", ParamType::kInt, Scalar(int64_t{2}),
       "minimum number of clients sampled for evaluation", 1.0, false, std::nullopt, false, {}},
      {"min_available_clients", ParamType::kInt, Scalar(int64_t{2}),
       "clients that must be connected before a round samples", 1.0, false, std::nullopt, false,
       {}},
      {"accept_failures", ParamType::kBool, Scalar(true),
       "aggregate a round that had failures (false: keep the model)", std::nullopt, false,
       std::nullopt, false, {}},
      {"accumulation", ParamType::kString, Scalar(std::string("float64")),
       "weighted-average arithmetic: float64 (sum in float64, round once) or native (Flower's "
       "non-inplace aggregate() in the array dtype)",
       std::nullopt, false, std::nullopt, false, {"float64", "native"}},
      {"integer_arrays", ParamType::kString, Scalar(std::string("round")),
       "integer/bool arrays: round (float64 mean, round half to even) or reject", std::nullopt,
       false, std::nullopt, false, {"round", "reject"}},
      {"fit_metrics_aggregation", ParamType::kString, Scalar(std::string("weighted_average")),
       "how fit metrics are combined", std::nullopt, false, std::nullopt, false,
       {"none", "weighted_average"}},
      {"evaluate_metrics_aggregation", ParamType::kString, Scalar(std::string("weighted_average")),
       "how evaluate metrics are combined", std::nullopt, false, std::nullopt, false,
       {"none", "weighted_average"}},
  };
}

absl::StatusOr<FedAvgOptions> FedAvgOptions::FromParams(const Params& p) {
  FedAvgOptions o;
  o.fraction_fit = p.GetDouble("fraction_fit");
  o.fraction_evaluate = p.GetDouble("fraction_evaluate");
  o.min_fit_clients = p.GetInt("min_fit_clients");
  o.min_evaluate_clients = p.GetInt("min_evaluate_clients");
  o.min_available_clients = p.GetInt("min_available_clients");
  o.accept_failures = p.GetBool("accept_failures");
  PETAL_ASSIGN_OR_RETURN(o.accumulation, ParseAccumulation(p.GetString("accumulation")));
  PETAL_ASSIGN_OR_RETURN(o.integer_arrays, ParseIntegerPolicy(p.GetString("integer_arrays")));
  PETAL_ASSIGN_OR_RETURN(o.fit_metrics_aggregation,
                         ParseMetricsAggregation(p.GetString("fit_metrics_aggregation")));
  PETAL_ASSIGN_OR_RETURN(o.evaluate_metrics_aggregation,
                         ParseMetricsAggregation(p.GetString("evaluate_metrics_aggregation")));
  return o;
}

FedAvg::FedAvg(FedAvgOptions options) : options_(std::move(options)) {
  if (options_.min_fit_clients > options_.min_available_clients ||
      options_.min_evaluate_clients > options_.min_available_clients) {
    common::log::Warn(
        "min_fit_clients ({}) or min_evaluate_clients ({}) exceeds min_available_clients ({}): "
        "rounds may sample fewer clients than they need and be skipped",
        options_.min_fit_clients, options_.min_evaluate_clients, options_.min_available_clients);
  }
}

absl::StatusOr<std::optional<NDArrays>> FedAvg::InitializeParameters(ClientManager& manager) {
  return std::exchange(options_.initial_parameters, std::nullopt);
}

std::pair<int64_t, int64_t> FedAvg::NumFitClients(int64_t num_available) const {
  const auto n = static_cast<int64_t>(static_cast<double>(num_available) * options_.fraction_fit);
  return {std::max(n, options_.min_fit_clients), options_.min_available_clients};
}

std::pair<int64_t, int64_t> FedAvg::NumEvaluationClients(int64_t num_available) const {
  const auto n =
      static_cast<int64_t>(static_cast<double>(num_available) * options_.fraction_evaluate);
  return {std::max(n, options_.min_evaluate_clients), options_.min_available_clients};
}

ConfigMap FedAvg::FitConfig(int64_t server_round) {
  return options_.on_fit_config ? options_.on_fit_config(server_round) : ConfigMap{};
}

std::vector<FitInstruction> FedAvg::ConfigureFit(int64_t server_round,
                                                 const SharedNDArrays& parameters,
                                                 ClientManager& manager) {
  FitIns ins{parameters, FitConfig(server_round)};
  const auto [sample_size, min_clients] = NumFitClients(manager.NumAvailable());
  std::vector<FitInstruction> out;
  for (ClientProxyPtr& c : manager.Sample(sample_size, min_clients, DrawKey(server_round, Phase::kFit))) {
    out.push_back(FitInstruction{std::move(c), ins});
  }
  return out;
}

absl::StatusOr<FitAggregatorPtr> FedAvg::BeginAggregateFit(int64_t server_round,
                                                           const SharedNDArrays& current) {
  return std::make_unique<WeightedFitAggregator>(*this, server_round, current);
}

absl::StatusOr<NDArrays> FedAvg::ServerUpdate(int64_t server_round, const SharedNDArrays& current,
                                              NDArrays average) {
  return average;
}

bool FedAvg::RejectRound(size_t num_results, size_t num_failures) const {
  return num_results == 0 || (!options_.accept_failures && num_failures > 0);
}

ConfigMap FedAvg::AggregateFitMetrics(
    const std::vector<std::pair<int64_t, ConfigMap>>& metrics) const {
  if (options_.fit_metrics_aggregation != MetricsAggregation::kWeightedAverage) return {};
  std::vector<std::pair<int64_t, const ConfigMap*>> refs;
  for (const auto& [n, m] : metrics) refs.emplace_back(n, &m);
  return WeightedMetricsAverage(refs);
}

std::vector<EvaluateInstruction> FedAvg::ConfigureEvaluate(int64_t server_round,
                                                           const SharedNDArrays& parameters,
                                                           ClientManager& manager) {
  if (options_.fraction_evaluate == 0.0) return {};
  EvaluateIns ins{parameters, options_.on_evaluate_config
                                  ? options_.on_evaluate_config(server_round)
                                  : ConfigMap{}};
  const auto [sample_size, min_clients] = NumEvaluationClients(manager.NumAvailable());
  std::vector<EvaluateInstruction> out;
  for (ClientProxyPtr& c :
       manager.Sample(sample_size, min_clients, DrawKey(server_round, Phase::kEvaluate))) {
    out.push_back(EvaluateInstruction{std::move(c), ins});
  }
  return out;
}

absl::StatusOr<EvaluateAggregate> FedAvg::AggregateEvaluate(
    int64_t server_round, const std::vector<EvaluateResult>& results,
    const std::vector<Failure>& failures) {
  EvaluateAggregate out;
  if (RejectRound(results.size(), failures.size())) return out;
  std::vector<std::pair<int64_t, double>> losses;
  std::vector<std::pair<int64_t, const ConfigMap*>> metrics;
  for (const EvaluateResult& r : results) {
    losses.emplace_back(r.res.num_examples, static_cast<double>(r.res.loss));
    metrics.emplace_back(r.res.num_examples, &r.res.metrics);
  }
  PETAL_ASSIGN_OR_RETURN(out.loss, WeightedLossAverage(losses));
  if (options_.evaluate_metrics_aggregation == MetricsAggregation::kWeightedAverage) {
    out.metrics = WeightedMetricsAverage(metrics);
  }
  return out;
}

absl::StatusOr<std::optional<CentralEvaluation>> FedAvg::Evaluate(int64_t server_round,
                                                                  const NDArrays& parameters) {
  if (!options_.evaluate_fn) return std::optional<CentralEvaluation>();
  return options_.evaluate_fn(server_round, parameters);
}

// --- FedProx -------------------------------------------------------------------

FedProx::FedProx(FedAvgOptions options, double proximal_mu)
    : FedAvg(std::move(options)), proximal_mu_(proximal_mu) {}

ConfigMap FedProx::FitConfig(int64_t server_round) {
  ConfigMap config = FedAvg::FitConfig(server_round);
  config.Set("proximal_mu", proximal_mu_);
  return config;
}

// --- FedAvgM -------------------------------------------------------------------

FedAvgM::FedAvgM(FedAvgOptions options, double server_learning_rate, double server_momentum)
    : FedAvg(std::move(options)),
      server_learning_rate_(server_learning_rate),
      server_momentum_(server_momentum) {}

absl::StatusOr<NDArrays> FedAvgM::ServerUpdate(int64_t server_round, const SharedNDArrays& current,
                                               NDArrays average) {
  const bool server_opt = server_momentum_ != 0.0 || server_learning_rate_ != 1.0;
  if (!server_opt) return average;
  // Flower starts the momentum in round 1 and accumulates afterwards.
  if (server_round <= 1) momentum_vector_.clear();
  return FedAvgMStep(server_learning_rate_, server_momentum_, *current, average, &momentum_vector_);
}

StrategyState FedAvgM::SaveState() const {
  StrategyState state;
  AppendNamedArrays("momentum", momentum_vector_, &state.arrays);
  return state;
}

absl::Status FedAvgM::LoadState(const StrategyState& state) {
  PETAL_ASSIGN_OR_RETURN(NDArrays momentum, ExtractNamedArrays("momentum", state.arrays));
  if (momentum.size() != state.arrays.size()) {
    return absl::InvalidArgumentError("fedavgm state holds arrays other than momentum.*");
  }
  momentum_vector_ = std::move(momentum);
  return absl::OkStatus();
}

void AppendNamedArrays(std::string_view prefix, const NDArrays& arrays, common::NamedArrays* out) {
  for (size_t i = 0; i < arrays.size(); ++i) {
    out->emplace_back(fmt::format("{}.{}", prefix, i), arrays[i]);
  }
}

absl::StatusOr<NDArrays> ExtractNamedArrays(std::string_view prefix, const common::NamedArrays& in) {
  std::map<int64_t, const NDArray*> found;
  const std::string head = fmt::format("{}.", prefix);
  for (const auto& [name, array] : in) {
    if (name.rfind(head, 0) != 0) continue;
    const std::string index_text = name.substr(head.size());
    int64_t index = -1;
    bool digits = !index_text.empty() && index_text.size() < 10;
    for (char c : index_text) digits = digits && c >= '0' && c <= '9';
    if (digits) index = std::stoll(index_text);
    if (index < 0 || !found.emplace(index, &array).second) {
      return absl::InvalidArgumentError(fmt::format("bad strategy state entry '{}'", name));
    }
  }
  NDArrays out;
  for (const auto& [index, array] : found) {
    if (index != static_cast<int64_t>(out.size())) {
      return absl::InvalidArgumentError(
          fmt::format("strategy state '{}.*' is missing entry {}", prefix, out.size()));
    }
    out.push_back(*array);
  }
  return out;
}

}  // namespace petal::strategy
