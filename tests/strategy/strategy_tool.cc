// petal_strategy_tool: run Petal's strategies on inputs prepared by a Python
// test, so their outputs can be compared with Flower's own strategy classes.
//
//   petal_strategy_tool run SCENARIO.json OUT_DIR
//
// SCENARIO.json:
//   {"strategy": "fedadam",
//    "params": {"eta": 0.1, "accumulation": "native", ...},   // JSON ints stay ints
//    "initial": "initial.npz",            // optional: the first global model
//    "restart_after_round": 2,            // optional: SaveState, rebuild, LoadState
//    "rounds": [{"results": [{"npz": "r1c0.npz", "num_examples": 3,
//                             "metrics": {"acc": 0.5}}, ...],
//                "failures": 0,
//                "evaluate": [{"loss": 0.5, "num_examples": 3, "metrics": {...}}]}]}
// Paths are relative to the scenario's folder. Each round r runs
// AggregateFit(r, global, results, failures) and, if it returns parameters,
// writes OUT_DIR/round_<r>.npz (members arr_0, arr_1, ...) and makes them the
// global model; then AggregateEvaluate. Prints one JSON document:
//   {"rounds": [{"parameters": bool, "fit_metrics": {...}, "loss": x|null,
//                "evaluate_metrics": {...}}]}
// Exit status 0 on success, 2 with the error on stderr otherwise.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/npz.h"
#include "common/status_macros.h"
#include "strategy/registry.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using petal::common::ConfigMap;
using petal::common::NDArrays;
using petal::common::Scalar;
using petal::strategy::StrategyPtr;

absl::StatusOr<ConfigMap> ToConfigMap(const json& j) {
  ConfigMap out;
  if (j.is_null()) return out;
  if (!j.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (value.is_boolean()) {
      out.Set(key, value.get<bool>());
    } else if (value.is_number_integer()) {
      out.Set(key, value.get<int64_t>());
    } else if (value.is_number()) {
      out.Set(key, value.get<double>());
    } else if (value.is_string()) {
      out.Set(key, value.get<std::string>());
    } else {
      return absl::InvalidArgumentError(fmt::format("unsupported value for '{}'", key));
    }
  }
  return out;
}

json ToJson(const ConfigMap& map) {
  json out = json::object();
  for (const auto& [key, value] : map) {
    if (const double* d = std::get_if<double>(&value)) {
      out[key] = *d;
    } else if (const int64_t* i = std::get_if<int64_t>(&value)) {
      out[key] = *i;
    } else if (const bool* b = std::get_if<bool>(&value)) {
      out[key] = *b;
    } else if (const std::string* s = std::get_if<std::string>(&value)) {
      out[key] = *s;
    }
  }
  return out;
}

absl::StatusOr<NDArrays> LoadArrays(const fs::path& path) {
  PETAL_ASSIGN_OR_RETURN(petal::common::NamedArrays named, petal::common::ReadNpz(path.string()));
  NDArrays out;
  for (auto& [name, array] : named) out.push_back(std::move(array));
  return out;
}

absl::Status SaveArrays(const fs::path& path, const NDArrays& arrays) {
  petal::common::NamedArrays named;
  for (size_t i = 0; i < arrays.size(); ++i) named.emplace_back(fmt::format("arr_{}", i), arrays[i]);
  return petal::common::WriteNpz(path.string(), named);
}

absl::StatusOr<StrategyPtr> Build(const json& scenario) {
  petal::strategy::StrategyConfig config;
  config.name = scenario.at("strategy").get<std::string>();
  PETAL_ASSIGN_OR_RETURN(config.params, ToConfigMap(scenario.value("params", json::object())));
  return petal::strategy::MakeStrategy(std::move(config));
}

absl::Status Run(const fs::path& scenario_path, const fs::path& out_dir) {
  std::ifstream in(scenario_path);
  if (!in) return absl::NotFoundError("cannot read " + scenario_path.string());
  json scenario;
  try {
    scenario = json::parse(in);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(fmt::format("bad scenario JSON: {}", e.what()));
  }
  const fs::path base = scenario_path.parent_path();
  PETAL_ASSIGN_OR_RETURN(StrategyPtr strategy, Build(scenario));

  auto global = petal::common::Share({});
  if (scenario.contains("initial")) {
    PETAL_ASSIGN_OR_RETURN(NDArrays initial, LoadArrays(base / scenario["initial"].get<std::string>()));
    global = petal::common::Share(std::move(initial));
  }
  const int64_t restart_after = scenario.value("restart_after_round", int64_t{-1});
  json report = json::object();
  report["rounds"] = json::array();
  int64_t round = 0;
  for (const json& spec : scenario.at("rounds")) {
    ++round;
    std::vector<petal::strategy::FitResult> results;
    int64_t index = 0;
    for (const json& r : spec.at("results")) {
      petal::strategy::FitResult result;
      result.client = std::make_shared<petal::strategy::ClientProxy>(fmt::format("client-{}", index++));
      result.res.status = petal::common::SuccessStatus();
      PETAL_ASSIGN_OR_RETURN(result.res.parameters, LoadArrays(base / r.at("npz").get<std::string>()));
      result.res.num_examples = r.at("num_examples").get<int64_t>();
      PETAL_ASSIGN_OR_RETURN(result.res.metrics, ToConfigMap(r.value("metrics", json::object())));
      results.push_back(std::move(result));
    }
    std::vector<petal::strategy::Failure> failures;
    for (int64_t i = 0; i < spec.value("failures", int64_t{0}); ++i) {
      failures.push_back({fmt::format("failed-{}", i), absl::UnavailableError("injected failure")});
    }
    PETAL_ASSIGN_OR_RETURN(petal::strategy::FitAggregate fit,
                           strategy->AggregateFit(round, global, std::move(results), failures));
    json entry = json::object();
    entry["parameters"] = fit.parameters.has_value();
    entry["fit_metrics"] = ToJson(fit.metrics);
    if (fit.parameters) {
      PETAL_RETURN_IF_ERROR(SaveArrays(out_dir / fmt::format("round_{}.npz", round), *fit.parameters));
      global = petal::common::Share(*std::move(fit.parameters));
    }
    std::vector<petal::strategy::EvaluateResult> evals;
    for (const json& e : spec.value("evaluate", json::array())) {
      petal::strategy::EvaluateResult er;
      er.client = std::make_shared<petal::strategy::ClientProxy>("eval");
      er.res.status = petal::common::SuccessStatus();
      er.res.loss = e.at("loss").get<float>();
      er.res.num_examples = e.at("num_examples").get<int64_t>();
      PETAL_ASSIGN_OR_RETURN(er.res.metrics, ToConfigMap(e.value("metrics", json::object())));
      evals.push_back(std::move(er));
    }
    PETAL_ASSIGN_OR_RETURN(petal::strategy::EvaluateAggregate ev,
                           strategy->AggregateEvaluate(round, evals, failures));
    entry["loss"] = ev.loss ? json(*ev.loss) : json(nullptr);
    entry["evaluate_metrics"] = ToJson(ev.metrics);
    report["rounds"].push_back(entry);

    if (round == restart_after) {
      // Simulates a checkpoint + resume: a fresh strategy gets the saved state.
      petal::strategy::StrategyState state = strategy->SaveState();
      PETAL_ASSIGN_OR_RETURN(strategy, Build(scenario));
      PETAL_RETURN_IF_ERROR(strategy->LoadState(state));
    }
  }
  std::cout << report.dump() << "\n";
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || std::string(argv[1]) != "run") {
    std::cerr << "usage: petal_strategy_tool run SCENARIO.json OUT_DIR\n";
    return 2;
  }
  absl::Status s;
  try {
    s = Run(argv[2], argv[3]);
  } catch (const nlohmann::json::exception& e) {
    s = absl::InvalidArgumentError(fmt::format("bad scenario: {}", e.what()));
  }
  if (!s.ok()) {
    std::cerr << s << "\n";
    return 2;
  }
  return 0;
}
