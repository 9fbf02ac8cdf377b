// File: history.h
//
// What happened in each round (Flower's History, plus counts and timings), as
// JSON and CSV for people and notebooks:
//
//   history.json  {"rounds": [{"round": 1, "fit": {...}, "evaluate": {...}, ...}],
//                  "losses_distributed": [[1, 0.51], ...], "losses_centralized": [...],
//                  "metrics_distributed_fit": {"acc": [[1, 0.8]]},
//                  "metrics_distributed": {...}, "metrics_centralized": {...}}
//   history.csv   one row per round; metric columns fit_<name>, evaluate_<name>,
//                 centralized_<name> (union over rounds, sorted)
//
// Not thread-safe (owned by the round loop).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "common/scalar.h"

namespace petal::server {

struct FailureRecord {
  std::string phase;  // "fit" or "evaluate"
  std::string cid;
  std::string error;
};

struct RoundRecord {
  int64_t round = 0;
  // Training.
  int64_t fit_sampled = 0;
  int64_t fit_results = 0;
  int64_t fit_failures = 0;
  bool model_updated = false;
  common::ConfigMap fit_metrics;
  double fit_seconds = 0.0;
  // Federated evaluation.
  int64_t evaluate_sampled = 0;
  int64_t evaluate_results = 0;
  int64_t evaluate_failures = 0;
  std::optional<double> loss_distributed;
  common::ConfigMap evaluate_metrics;
  double evaluate_seconds = 0.0;
  // Centralized evaluation (strategy Evaluate), if any.
  std::optional<double> loss_centralized;
  common::ConfigMap centralized_metrics;
  std::vector<FailureRecord> failures;
};

class History {
 public:
  void Add(RoundRecord record) { rounds_.push_back(std::move(record)); }
  const std::vector<RoundRecord>& rounds() const { return rounds_; }
  // Drops records of rounds after `round` (a resumed run redoes them).
  void TruncateAfter(int64_t round);

  nlohmann::json ToJson() const;
  // Inverse of ToJson (for resuming). InvalidArgument naming the problem.
  static absl::StatusOr<History> FromJson(const nlohmann::json& json);
  std::string ToCsv() const;

 private:
  std::vector<RoundRecord> rounds_;
};

// A ConfigMap as a JSON object (bytes as {"bytes_hex": "..."}), and back.
nlohmann::json ConfigMapToJson(const common::ConfigMap& map);
absl::StatusOr<common::ConfigMap> ConfigMapFromJson(const nlohmann::json& json);

}  // namespace petal::server
