// File: options.h
//
// Plain option and result structs of the recommender (no LibTorch here, so
// the client app, the YAML readers and tests can use them cheaply).
//
//   TagNcfOptions model;                 // sizes; counts are filled from the data
//   model.use_tags = false;              // the "no tags" variant
//   TrainConfig train{.epochs = 2, .lr = 1e-3};
//   PETAL_ASSIGN_OR_RETURN(train, MergeTrainConfig(train, fit_ins.config));
//
// Validate*() return InvalidArgument naming the offending field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/scalar.h"

namespace petal::model {

// Implicit: interactions are positives, k sampled negatives each, BCE on a
// logit. Explicit: predict the rating, MSE.
enum class FeedbackMode { kImplicit, kExplicit };
absl::StatusOr<FeedbackMode> ParseFeedbackMode(std::string_view name);  // "implicit", "explicit"
std::string_view FeedbackModeName(FeedbackMode mode);

// Architecture and sizes of TagNcf.
struct TagNcfOptions {
  // Sizes of the tables. LocalWorkload fills them from its data (num_users =
  // the client's users, num_items / num_tags = the shared catalog's).
  int64_t num_users = 0;
  int64_t num_items = 0;
  int64_t num_tags = 0;

  FeedbackMode mode = FeedbackMode::kImplicit;
  int64_t gmf_dim = 32;             // GMF factors (user and item)
  int64_t mlp_embedding_dim = 32;   // MLP user/item embeddings
  int64_t tag_dim = 32;             // tag embeddings
  std::vector<int64_t> mlp_layers = {64, 32, 16};  // hidden sizes of the MLP tower
  bool use_tags = true;             // false: the "no tags" variant
  bool gmf_only = false;            // true: no MLP tower (matrix factorization)
  bool use_biases = true;           // user (local) and item (global) biases
  double init_std = 0.01;           // N(0, init_std) for embeddings
  // The user's tag profile: the tags of the items they interacted with, plus
  // their own tag applications weighted by own_tag_weight, normalized to sum
  // 1 and truncated to the profile_max_tags heaviest tags (0 = no limit).
  int64_t profile_max_tags = 64;
  double own_tag_weight = 3.0;
  // Recency weighting of the profile's items: the k-th most recent item
  // (k = 0, 1, ...) contributes 0.5^(k / profile_half_life) instead of 1.
  // 0 = every item counts the same. Cold-start scoring (no timestamps) ignores it.
  double profile_half_life = 0.0;
};
absl::Status ValidateTagNcfOptions(const TagNcfOptions& options);

enum class OptimizerKind { kAdam, kAdamW, kAdagrad, kSgd };
// "adam", "adamw", "adagrad", "sgd". Adagrad (and plain SGD) leave embedding rows that a batch
// does not use untouched; Adam's momentum keeps moving them.
absl::StatusOr<OptimizerKind> ParseOptimizerKind(std::string_view name);
std::string_view OptimizerKindName(OptimizerKind kind);

// One call of local training.
struct TrainConfig {
  int32_t epochs = 1;
  int32_t batch_size = 256;
  OptimizerKind optimizer = OptimizerKind::kAdam;
  double lr = 1e-3;
  double momentum = 0.0;        // SGD only
  // The optimizer's weight decay (L2 for Adam/Adagrad/SGD, decoupled for
  // AdamW) on the dense parameters: tag embeddings, projections, MLP, output.
  double weight_decay = 0.0;
  // L2 on the ID embedding rows and biases each example uses (MF-style, per example).
  double embedding_reg = 0.0;
  int32_t num_negatives = 4;    // implicit mode: sampled negatives per positive
  // ID dropout (DropoutNet-style): during training each example loses its user
  // embedding (scored as a cold-start user, through the tag profile) with
  // probability user_dropout, and its item embedding and bias (scored through
  // the item's tags) with probability item_dropout. Trains the tag paths to
  // stand on their own, for cold-start users and rarely seen items.
  double user_dropout = 0.0;
  double item_dropout = 0.0;
  // FedProx: adds proximal_mu / 2 * sum over GLOBAL parameters of ||w - w_global||^2
  // (squared L2), w_global = the arrays last set by SetGlobalArrays (frozen).
  double proximal_mu = 0.0;
  // Client-side fixed clipping (Flower's fixedclipping_mod): after training,
  // u = w - w_global over all global arrays, one L2 norm; u *= min(1, C / norm).
  // 0 = off. A zero update is left unchanged (Flower would divide by zero).
  double clipping_norm = 0.0;
};
absl::Status ValidateTrainConfig(const TrainConfig& config);

// Overrides `defaults` with the keys a Flower strategy sends in a fit config
// ("epochs" or "local_epochs", "batch_size", "lr" or "learning_rate",
// "optimizer", "momentum", "weight_decay", "embedding_reg", "user_dropout",
// "item_dropout", "num_negatives",
// "proximal_mu" or "proximal-mu", "clipping_norm"); other keys are ignored.
// InvalidArgument naming the key for a wrong type or an invalid value.
absl::StatusOr<TrainConfig> MergeTrainConfig(const TrainConfig& defaults,
                                             const common::ConfigMap& config);

struct EvalConfig {
  int32_t k = 10;             // cut-off of HR/NDCG/Precision/Recall
  bool full_catalog = true;   // also compute full-catalog Precision@K / Recall@K
  int32_t batch_size = 8192;  // scoring batch
};
absl::Status ValidateEvalConfig(const EvalConfig& config);
// Keys "k" (or "top_k") and "full_catalog"; others ignored.
absl::StatusOr<EvalConfig> MergeEvalConfig(const EvalConfig& defaults,
                                           const common::ConfigMap& config);

struct TrainStats {
  double loss = 0.0;            // mean training loss of the last epoch (data term only)
  std::vector<double> epoch_losses;
  int64_t num_examples = 0;     // training interactions (what FedAvg weights by)
  int64_t num_samples = 0;      // examples processed incl. sampled negatives, all epochs
  double seconds = 0.0;
  double samples_per_second = 0.0;
  double update_norm = 0.0;     // ||w - w_global|| over global arrays, before clipping
  bool clipped = false;         // clipping scaled the update down
};

struct EvalStats {
  double loss = 0.0;            // BCE over ranking candidates (implicit) or MSE (explicit)
  int64_t num_examples = 0;     // ranking cases (implicit) or test ratings (explicit)
  int32_t k = 10;
  int64_t ranking_cases = 0;
  double hit_rate = 0.0;        // HR@k
  double ndcg = 0.0;            // NDCG@k
  int64_t catalog_users = 0;    // users in the full-catalog metrics
  double precision = 0.0;       // full-catalog Precision@k
  double recall = 0.0;          // full-catalog Recall@k
  int64_t rating_count = 0;
  double rmse = 0.0;            // explicit mode only
  double mae = 0.0;
};

// The metrics as a Flower metrics map ("loss", "hr@10", "ndcg@10", ...).
common::ConfigMap ToConfigMap(const TrainStats& stats);
common::ConfigMap ToConfigMap(const EvalStats& stats);

}  // namespace petal::model
