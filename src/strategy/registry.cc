#include "strategy/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/status_macros.h"
#include "strategy/fedavg.h"
#include "strategy/fedopt.h"
#include "strategy/robust.h"

namespace petal::strategy {
namespace {

using common::Scalar;

// The common FedAvg parameters followed by a strategy's own.
std::vector<ParamSpec> With(std::vector<ParamSpec> own) {
  std::vector<ParamSpec> all = FedAvgOptions::Specs();
  for (ParamSpec& s : own) all.push_back(std::move(s));
  return all;
}

ParamSpec Number(std::string name, double fallback, std::string help, std::optional<double> min,
                 bool min_exclusive = false, std::optional<double> max = std::nullopt,
                 bool max_exclusive = false) {
  return ParamSpec{std::move(name), ParamType::kDouble, Scalar(fallback), std::move(help), min,
                   min_exclusive, max, max_exclusive, {}};
}

// Options with the config's hooks attached.
absl::StatusOr<FedAvgOptions> OptionsFor(const Params& params, StrategyConfig& config) {
  PETAL_ASSIGN_OR_RETURN(FedAvgOptions options, FedAvgOptions::FromParams(params));
  options.initial_parameters = std::move(config.initial_parameters);
  options.on_fit_config = std::move(config.on_fit_config);
  options.on_evaluate_config = std::move(config.on_evaluate_config);
  options.evaluate_fn = std::move(config.evaluate_fn);
  return options;
}

std::vector<ParamSpec> FedOptSpecs(double eta, double eta_l, double tau, bool with_betas) {
  std::vector<ParamSpec> own = {
      Number("eta", eta, "server-side learning rate", 0.0, true),
      Number("eta_l", eta_l, "client-side learning rate (kept, not sent, as in Flower)", 0.0),
  };
  if (with_betas) {
    own.push_back(Number("beta_1", 0.9, "momentum parameter", 0.0, false, 1.0, true));
    own.push_back(Number("beta_2", 0.99, "second-moment parameter", 0.0, false, 1.0, true));
  }
  own.push_back(Number("tau", tau, "adaptivity (numerical stability) term", 0.0, true));
  return With(std::move(own));
}

StrategyInfo FedOptEntry(std::string name, std::string summary, ServerOptimizer optimizer,
                         double eta, double eta_l, double tau, bool with_betas) {
  StrategyInfo info;
  info.name = name;
  info.summary = std::move(summary);
  info.params = FedOptSpecs(eta, eta_l, tau, with_betas);
  info.create = [optimizer, with_betas](const Params& p,
                                        StrategyConfig& config) -> absl::StatusOr<StrategyPtr> {
    PETAL_ASSIGN_OR_RETURN(FedAvgOptions options, OptionsFor(p, config));
    FedOptHyperparameters hp;
    hp.eta = p.GetDouble("eta");
    hp.tau = p.GetDouble("tau");
    hp.beta_1 = with_betas ? p.GetDouble("beta_1") : 0.0;
    hp.beta_2 = with_betas ? p.GetDouble("beta_2") : 0.0;
    const std::string_view registered = optimizer == ServerOptimizer::kAdagrad ? "fedadagrad"
                                        : optimizer == ServerOptimizer::kAdam  ? "fedadam"
                                                                               : "fedyogi";
    return StrategyPtr(std::make_unique<FedOpt>(registered, optimizer, std::move(options), hp,
                                                p.GetDouble("eta_l")));
  };
  return info;
}

std::vector<StrategyInfo> BuildTable() {
  std::vector<StrategyInfo> table;
  table.push_back(StrategyInfo{
      "fedavg", "Federated Averaging: num_examples-weighted mean of the results",
      FedAvgOptions::Specs(),
      [](const Params& p, StrategyConfig& config) -> absl::StatusOr<StrategyPtr> {
        PETAL_ASSIGN_OR_RETURN(FedAvgOptions options, OptionsFor(p, config));
        return StrategyPtr(std::make_unique<FedAvg>(std::move(options)));
      }});
  table.push_back(StrategyInfo{
      "fedprox", "FedAvg that sends proximal_mu in every fit config (the client adds the term)",
      With({ParamSpec{"proximal_mu", ParamType::kDouble, std::nullopt,
                      "weight of the proximal term (mu/2)*||w - w_global||^2 (required)", 0.0,
                      false, std::nullopt, false, {}}}),
      [](const Params& p, StrategyConfig& config) -> absl::StatusOr<StrategyPtr> {
        PETAL_ASSIGN_OR_RETURN(FedAvgOptions options, OptionsFor(p, config));
        return StrategyPtr(
            std::make_unique<FedProx>(std::move(options), p.GetDouble("proximal_mu")));
      }});
  table.push_back(FedOptEntry("fedadagrad", "FedOpt with an Adagrad server optimizer",
                              ServerOptimizer::kAdagrad, 0.1, 0.1, 1e-9, false));
  table.push_back(FedOptEntry("fedadam", "FedOpt with an Adam server optimizer",
                              ServerOptimizer::kAdam, 0.1, 0.1, 1e-9, true));
  table.push_back(FedOptEntry("fedyogi", "FedOpt with a Yogi server optimizer",
                              ServerOptimizer::kYogi, 0.01, 0.0316, 1e-3, true));
  table.push_back(StrategyInfo{
      "fedavgm", "FedAvg with server-side SGD momentum on the pseudo-gradient",
      With({Number("server_learning_rate", 1.0, "server-side learning rate", 0.0, true),
            Number("server_momentum", 0.0, "server-side momentum", 0.0)}),
      [](const Params& p, StrategyConfig& config) -> absl::StatusOr<StrategyPtr> {
        PETAL_ASSIGN_OR_RETURN(FedAvgOptions options, OptionsFor(p, config));
        return StrategyPtr(std::make_unique<FedAvgM>(std::move(options),
                                                     p.GetDouble("server_learning_rate"),
                                                     p.GetDouble("server_momentum")));
      }});
  table.push_back(StrategyInfo{
      "fedmedian", "element-wise median of the results (num_examples ignored)",
      FedAvgOptions::Specs(),
      [](const Params& p, StrategyConfig& config) -> absl::StatusOr<StrategyPtr> {
        PETAL_ASSIGN_OR_RETURN(FedAvgOptions options, OptionsFor(p, config));
        return StrategyPtr(std::make_unique<FedMedian>(std::move(options)));
      }});
  table.push_back(StrategyInfo{
      "fedtrimmedavg", "element-wise mean after trimming beta of the values at each end",
      With({Number("beta", 0.2, "fraction trimmed from each end", 0.0, false, 0.5, true)}),
      [](const Params& p, StrategyConfig& config) -> absl::StatusOr<StrategyPtr> {
        PETAL_ASSIGN_OR_RETURN(FedAvgOptions options, OptionsFor(p, config));
        return StrategyPtr(std::make_unique<FedTrimmedAvg>(std::move(options), p.GetDouble("beta")));
      }});
  table.push_back(StrategyInfo{
      "krum", "Krum / MultiKrum (num_clients_to_keep > 0) Byzantine-robust selection",
      With({ParamSpec{"num_malicious_clients", ParamType::kInt, Scalar(int64_t{0}),
                      "assumed number of malicious clients f", 0.0, false, std::nullopt, false, {}},
            ParamSpec{"num_clients_to_keep", ParamType::kInt, Scalar(int64_t{0}),
                      "0: Krum (the best result); k > 0: MultiKrum (average of the k best)", 0.0,
                      false, std::nullopt, false, {}}}),
      [](const Params& p, StrategyConfig& config) -> absl::StatusOr<StrategyPtr> {
        PETAL_ASSIGN_OR_RETURN(FedAvgOptions options, OptionsFor(p, config));
        return StrategyPtr(std::make_unique<Krum>(std::move(options),
                                                  p.GetInt("num_malicious_clients"),
                                                  p.GetInt("num_clients_to_keep")));
      }});
  return table;
}

}  // namespace

const std::vector<StrategyInfo>& Strategies() {
  static const std::vector<StrategyInfo> kTable = BuildTable();
  return kTable;
}

const StrategyInfo* FindStrategy(std::string_view name) {
  for (const StrategyInfo& info : Strategies()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

std::vector<std::string> StrategyNames() {
  std::vector<std::string> names;
  for (const StrategyInfo& info : Strategies()) names.push_back(info.name);
  return names;
}

absl::StatusOr<StrategyPtr> MakeStrategy(StrategyConfig config) {
  const StrategyInfo* info = FindStrategy(config.name);
  if (info == nullptr) {
    return absl::InvalidArgumentError(fmt::format("unknown strategy '{}' (known: {})", config.name,
                                                  fmt::join(StrategyNames(), ", ")));
  }
  PETAL_ASSIGN_OR_RETURN(Params params,
                         ValidateParams(info->name, info->params, config.params, config.where));
  return info->create(params, config);
}

}  // namespace petal::strategy
