// File: workload.h
//
// LocalWorkload: one client's recommender (or the pooled, centralized one):
// its data, a TagNcf model, the optimizer and the local training loop. This
// is the object the federated client app drives; no LibTorch in this header.
//
//   PETAL_ASSIGN_OR_RETURN(SplitData data, LoadClientData(data_cfg, split_cfg, partitions, id));
//   PETAL_ASSIGN_OR_RETURN(auto workload,
//                          LocalWorkload::Create(std::move(data), model_opts, train_defaults,
//                                                /*seed=*/1, /*threads=*/2));
//   PETAL_RETURN_IF_ERROR(workload->SetGlobalArrays(fit_ins.parameters));   // from the server
//   PETAL_ASSIGN_OR_RETURN(TrainStats t, workload->Train(train_cfg));
//   FitRes res{SuccessStatus(), workload->GlobalArrays(), t.num_examples, ToConfigMap(t)};
//
// Parameters are split in two groups (see tag_ncf.h): GLOBAL arrays (item,
// tag, MLP and output weights; identical shapes on every client because all
// share the catalog) travel to the server in GlobalParameterNames() order as
// float32; LOCAL arrays (user embeddings and biases) never leave the object
// except through SaveLocalState.
//
// Thread safety: none; call from one thread at a time. Several workloads may
// live in one process (in-process simulation); they share the catalog
// (SplitData holds it by shared_ptr) and nothing else, except the
// process-wide thread counts that Create sets (at::set_num_threads, and
// OpenBLAS's pool when OpenBLAS is the BLAS in use).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/messages.h"
#include "common/npz.h"
#include "model/options.h"
#include "model/split.h"

namespace petal::model {

class LocalWorkload {
 public:
  // Builds the model for `data` (the users in data.users get local embedding
  // rows; num_users/num_items/num_tags of `options` are filled from the data).
  // Initialization is deterministic from `seed`; GLOBAL parameters depend only
  // on (seed, options, catalog), so every client starts from the same global
  // model. `threads` >= 1 sets LibTorch's intra-op threads. InvalidArgument for
  // invalid options/config or data that does not fit the catalog.
  static absl::StatusOr<std::unique_ptr<LocalWorkload>> Create(SplitData data,
                                                               const TagNcfOptions& options,
                                                               const TrainConfig& train_defaults,
                                                               uint64_t seed, int32_t threads);
  ~LocalWorkload();
  LocalWorkload(const LocalWorkload&) = delete;
  LocalWorkload& operator=(const LocalWorkload&) = delete;

  // The options with the counts filled in.
  const TagNcfOptions& options() const;
  const TrainConfig& train_defaults() const;
  const SplitData& data() const;
  // Training interactions (what FedAvg weights this client by).
  int64_t num_train_examples() const;

  // Names and shapes of the GLOBAL arrays, in wire order.
  std::vector<std::string> GlobalParameterNames() const;
  std::vector<common::Shape> GlobalParameterShapes() const;
  // The GLOBAL arrays as float32 NDArrays that VIEW the live parameters
  // (zero-copy; each view keeps its tensor alive). The values change with the
  // next Train/SetGlobalArrays/LoadLocalState; copy them (NDArray's copy
  // constructor) to keep a snapshot.
  common::NDArrays GlobalArrays() const;
  // Replaces the GLOBAL parameters and makes them the reference w_global of
  // the proximal term and of clipping. Everything is validated first (count,
  // dtype float32, shape, finite values; errors name the index and the
  // parameter), so on error nothing changes. Optimizer state of global
  // parameters is reset (it described other weights); local state is kept.
  absl::Status SetGlobalArrays(const common::NDArrays& arrays);

  // Local training on this client's data (see TrainConfig for the proximal
  // term and clipping). The optimizer persists across calls (a call with a
  // different optimizer kind starts a fresh one). InvalidArgument for an
  // invalid config; Internal if LibTorch fails or the loss becomes NaN/Inf
  // (the parameters are then restored to their state before the call).
  absl::StatusOr<TrainStats> Train(const TrainConfig& config);
  // Metrics on the held-out data (ranking cases, test ratings, full catalog).
  absl::StatusOr<EvalStats> Evaluate(const EvalConfig& config);

  // Scores `items` for a user known only by their history (cold start: no
  // user embedding): items they interacted with and tags (vocabulary ids)
  // they applied build the tag profile. InvalidArgument for ids outside the
  // catalog.
  absl::StatusOr<std::vector<float>> ScoreColdStartUser(absl::Span<const int32_t> history_items,
                                                        absl::Span<const int32_t> own_tags,
                                                        absl::Span<const int32_t> items);
  // Leave-one-out HR@k / NDCG@k of COLD users (split off by SplitOffColdUsers;
  // they are not in this workload): each ranking case of `cold` is scored by
  // ScoreColdStartUser from that user's training history in `cold.train` (the
  // items and the tags they applied). Fills k, ranking_cases, hit_rate and
  // ndcg. InvalidArgument if `cold` does not share this workload's catalog or
  // holds one of this workload's users.
  absl::StatusOr<EvalStats> EvaluateColdStart(const SplitData& cold, int32_t k);
  // Scores `items` for a user of this workload (dataset user index; users
  // without training data are scored as cold start). NotFound for a user who is
  // not in data().users.
  absl::StatusOr<std::vector<float>> ScoreUser(int32_t user, absl::Span<const int32_t> items);

  // Writes `dir`/local_state.npz atomically (creating `dir`): LOCAL
  // parameters, the optimizer state of LOCAL parameters, the sampling RNG and
  // a fingerprint of the users and options.
  absl::Status SaveLocalState(const std::string& dir) const;
  // NotFound if there is no state in `dir`; FailedPrecondition if it belongs
  // to other users or options; InvalidArgument for a damaged file. Validates
  // everything before changing anything.
  absl::Status LoadLocalState(const std::string& dir);
  // The file SaveLocalState writes.
  static std::string LocalStatePath(const std::string& dir);

  // Every parameter (LOCAL and GLOBAL), copied, by name: the full model.
  common::NamedArrays AllArrays() const;

 private:
  struct Impl;
  explicit LocalWorkload(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace petal::model
