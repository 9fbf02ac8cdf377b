// File: checkpoint.h
//
// Crash-safe checkpoints of a federation after each round: the global model,
// the strategy's state (optimizer moments, momentum), the round number and the
// history so far, so `petal-server --resume` continues a killed run exactly as
// if it had not stopped.
//
// Layout in the checkpoint directory:
//   round_000007.npz   members global.0..global.N-1 (the model, in order) and
//                      strategy.<name> (the strategy's arrays); numpy-loadable
//   checkpoint.json    {"format": "petal-checkpoint-1", "round": 7,
//                       "strategy": "fedadam", "arrays_file": "round_000007.npz",
//                       "num_parameters": N, "strategy_scalars": {...},
//                       "history": {...}}
// Each file is written to a temporary name, fsynced and renamed, the .npz
// first: a crash at any point leaves the previous checkpoint intact. Older
// round files beyond the newest `keep` are deleted afterwards.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/messages.h"
#include "server/history.h"
#include "strategy/strategy.h"

namespace petal::server {

struct Checkpoint {
  int64_t round = 0;
  std::string strategy;
  common::NDArrays parameters;
  strategy::StrategyState strategy_state;
  History history;
};

absl::Status SaveCheckpoint(const std::string& dir, const Checkpoint& checkpoint, int keep = 2);
// NotFound if `dir` holds no checkpoint.json; InvalidArgument (naming the file
// and problem) for a damaged or inconsistent one.
absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& dir);

}  // namespace petal::server
