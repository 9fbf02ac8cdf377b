// File: registry.h
//
// Creating strategies by name. Every strategy is one class plus one entry in
// the table in registry.cc (name, summary, parameter specs, factory), which is
// all MakeStrategy, the server's YAML reader and `petal-server --help` use.
//
//   StrategyConfig config;
//   config.name = "fedadam";
//   config.params.Set("eta", 0.05);
//   config.initial_parameters = std::move(arrays);
//   PETAL_ASSIGN_OR_RETURN(StrategyPtr strategy, MakeStrategy(std::move(config)));
//
// Registered: fedavg, fedprox, fedadagrad, fedadam, fedyogi, fedavgm,
// fedmedian, fedtrimmedavg, krum (MultiKrum: krum with num_clients_to_keep > 0).
// Thread-safe: the table is immutable.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strategy/params.h"
#include "strategy/strategy.h"

namespace petal::strategy {

struct StrategyConfig {
  std::string name = "fedavg";
  // Strategy parameters (the names in Strategies()[i].params), typed like
  // Flower's keyword arguments; missing ones take Flower's defaults.
  ConfigMap params;
  // Optional hooks (Flower's initial_parameters, on_fit_config_fn,
  // on_evaluate_config_fn, evaluate_fn).
  std::optional<NDArrays> initial_parameters;
  ConfigFn on_fit_config;
  ConfigFn on_evaluate_config;
  EvaluateFn evaluate_fn;
  // Where each parameter was written, for error messages (may be null).
  WhereFn where;
};

struct StrategyInfo {
  std::string name;
  std::string summary;
  std::vector<ParamSpec> params;
  // Builds the strategy from validated params; hooks come from the config.
  std::function<absl::StatusOr<StrategyPtr>(const Params&, StrategyConfig&)> create;
};

// Every registered strategy, in documentation order.
const std::vector<StrategyInfo>& Strategies();
// Null if `name` is not registered.
const StrategyInfo* FindStrategy(std::string_view name);
// Names of all registered strategies.
std::vector<std::string> StrategyNames();

// Validates the parameters and builds the strategy. InvalidArgument for an
// unknown strategy (listing the known ones) or a bad parameter (naming it).
absl::StatusOr<StrategyPtr> MakeStrategy(StrategyConfig config);

}  // namespace petal::strategy
