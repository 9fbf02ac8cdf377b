// File: experiment.h
//
// From configuration to data: which dataset, which train/test protocol, which
// partition. Shared by petal-train (pooled data) and the federated client app
// (one partition per process), so both read the same YAML sections:
//
//   data:   {source: synthetic|ml-100k|ml-latest|csv, path: ..., synthetic: {...}}
//   split:  {protocol: leave_one_out|kfold|ml100k_fold|none, num_negatives: 99,
//            num_folds: 5, fold: 1, seed: 1, validation: false, cold_users: 0}
//   model:  {mode: implicit, gmf_dim: 32, ..., use_tags: true, gmf_only: false}
//   train:  {epochs: 20, batch_size: 256, optimizer: adam, lr: 0.001, ...}
//   eval:   {k: 10, full_catalog: true}
//
//   PETAL_ASSIGN_OR_RETURN(SplitData mine,
//                          LoadClientData(cfg.data, cfg.split, partition_options, /*id=*/3));
//
// With data.path empty, MovieLens sources read $PETAL_DATA_DIR/ml-100k or
// $PETAL_DATA_DIR/ml-latest-small; a path starting with "$PETAL_DATA_DIR/" is
// expanded. Errors name the key (config) or the file and line (data).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "model/dataset.h"
#include "model/options.h"
#include "model/partition.h"
#include "model/split.h"

namespace petal::model {

struct DataConfig {
  std::string source = "synthetic";  // synthetic | ml-100k | ml-latest | csv
  std::string path;                  // directory (MovieLens) or file (csv)
  std::string items_path;            // csv only: optional item catalog
  SyntheticOptions synthetic;
  LoadOptions load;
};

struct SplitConfig {
  std::string protocol = "leave_one_out";  // leave_one_out | kfold | ml100k_fold | none
  int32_t num_negatives = 99;              // leave_one_out
  int32_t num_folds = 5;                   // kfold
  int32_t fold = 1;                        // kfold: 1..num_folds; ml100k_fold: 1..5 (u1..u5)
  uint64_t seed = 1;                       // negatives (leave_one_out) / shuffle (kfold)
  // Tune on a validation set instead of the test set: the same protocol is
  // applied again to the training part of the split (leave_one_out: each
  // user's second-latest interaction; kfold / ml100k_fold: fold 1 of
  // num_folds of the training ratings), and the test part is never used.
  bool validation = false;
  // petal-train only, leave_one_out only: this fraction of the users with a
  // ranking case is held out of training entirely and evaluated as cold-start
  // users (see SplitOffColdUsers); 0 = off.
  double cold_users = 0.0;
};

// Reads the sections under `prefix` ("data", "split", ...) into *out, keeping
// defaults for absent keys. Errors are recorded in `reader` (see
// ConfigReader::Finish).
void ReadDataConfig(common::ConfigReader& reader, const std::string& prefix, DataConfig* out);
void ReadSplitConfig(common::ConfigReader& reader, const std::string& prefix, SplitConfig* out);
void ReadModelOptions(common::ConfigReader& reader, const std::string& prefix, TagNcfOptions* out);
void ReadTrainConfig(common::ConfigReader& reader, const std::string& prefix, TrainConfig* out);
void ReadEvalConfig(common::ConfigReader& reader, const std::string& prefix, EvalConfig* out);
void ReadPartitionOptions(common::ConfigReader& reader, const std::string& prefix,
                          PartitionOptions* out);

// The directory or file a DataConfig reads (after PETAL_DATA_DIR resolution).
// InvalidArgument when a MovieLens path is needed and neither data.path nor
// PETAL_DATA_DIR gives one.
absl::StatusOr<std::string> ResolveDataPath(const DataConfig& config);

absl::StatusOr<Dataset> LoadDataset(const DataConfig& config);
// `data` must be the DataConfig `dataset` was loaded with (ml100k_fold reads its files).
// With split.validation, returns the validation split (see SplitConfig).
absl::StatusOr<SplitData> MakeSplit(const Dataset& dataset, const DataConfig& data,
                                    const SplitConfig& split);

// One client's data, computed independently by each process: load, split
// (deterministic), partition (deterministic), keep partition `partition_id`.
// InvalidArgument for partition_id outside [0, num_partitions), and for
// split.cold_users > 0 (a centralized evaluation; a client's users all train).
absl::StatusOr<SplitData> LoadClientData(const DataConfig& data, const SplitConfig& split,
                                         const PartitionOptions& partitions,
                                         int32_t partition_id);

}  // namespace petal::model
