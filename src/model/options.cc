#include "model/options.h"

#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/status_macros.h"

namespace petal::model {
namespace {

absl::Status Bad(std::string_view field, std::string_view rule, const auto& value) {
  return absl::InvalidArgumentError(fmt::format("{} {} (got {})", field, rule, value));
}

bool Finite(double x) { return std::isfinite(x); }

}  // namespace

absl::StatusOr<FeedbackMode> ParseFeedbackMode(std::string_view name) {
  if (name == "implicit") return FeedbackMode::kImplicit;
  if (name == "explicit") return FeedbackMode::kExplicit;
  return absl::InvalidArgumentError(
      fmt::format("unknown feedback mode '{}' (expected implicit or explicit)", name));
}

std::string_view FeedbackModeName(FeedbackMode mode) {
  return mode == FeedbackMode::kImplicit ? "implicit" : "explicit";
}

absl::StatusOr<OptimizerKind> ParseOptimizerKind(std::string_view name) {
  if (name == "adam") return OptimizerKind::kAdam;
  if (name == "adamw") return OptimizerKind::kAdamW;
  if (name == "adagrad") return OptimizerKind::kAdagrad;
  if (name == "sgd") return OptimizerKind::kSgd;
  return absl::InvalidArgumentError(
      fmt::format("unknown optimizer '{}' (expected adam, adamw, adagrad or sgd)", name));
}

std::string_view OptimizerKindName(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kAdam:
      return "adam";
    case OptimizerKind::kAdamW:
      return "adamw";
    case OptimizerKind::kAdagrad:
      return "adagrad";
    case OptimizerKind::kSgd:
      return "sgd";
  }
  return "?";
}

absl::Status ValidateTagNcfOptions(const TagNcfOptions& o) {
  if (o.num_users < 0) return Bad("num_users", "must be >= 0", o.num_users);
  if (o.num_items < 1) return Bad("num_items", "must be >= 1", o.num_items);
  if (o.num_tags < 0) return Bad("num_tags", "must be >= 0", o.num_tags);
  if (o.gmf_dim < 1) return Bad("model.gmf_dim", "must be >= 1", o.gmf_dim);
  if (!o.gmf_only) {
    if (o.mlp_embedding_dim < 1) {
      return Bad("model.mlp_embedding_dim", "must be >= 1", o.mlp_embedding_dim);
    }
    if (o.mlp_layers.empty()) return Bad("model.mlp_layers", "must not be empty", "[]");
    for (int64_t h : o.mlp_layers) {
      if (h < 1) return Bad("model.mlp_layers", "entries must be >= 1", fmt::format("{}", fmt::join(o.mlp_layers, ",")));
    }
  }
  if (o.use_tags && o.tag_dim < 1) return Bad("model.tag_dim", "must be >= 1", o.tag_dim);
  if (!(o.init_std > 0.0) || !Finite(o.init_std)) {
    return Bad("model.init_std", "must be a finite number > 0", o.init_std);
  }
  if (o.profile_max_tags < 0) return Bad("model.profile_max_tags", "must be >= 0", o.profile_max_tags);
  if (!(o.own_tag_weight >= 0.0) || !Finite(o.own_tag_weight)) {
    return Bad("model.own_tag_weight", "must be a finite number >= 0", o.own_tag_weight);
  }
  if (!(o.profile_half_life >= 0.0) || !Finite(o.profile_half_life)) {
    return Bad("model.profile_half_life", "must be a finite number >= 0", o.profile_half_life);
  }
  return absl::OkStatus();
}

absl::Status ValidateTrainConfig(const TrainConfig& c) {
  if (c.epochs < 0) return Bad("epochs", "must be >= 0", c.epochs);
  if (c.batch_size < 1) return Bad("batch_size", "must be >= 1", c.batch_size);
  if (!(c.lr > 0.0) || !Finite(c.lr)) return Bad("lr", "must be a finite number > 0", c.lr);
  if (!(c.momentum >= 0.0 && c.momentum < 1.0)) return Bad("momentum", "must be in [0, 1)", c.momentum);
  if (!(c.weight_decay >= 0.0) || !Finite(c.weight_decay)) {
    return Bad("weight_decay", "must be a finite number >= 0", c.weight_decay);
  }
  if (!(c.embedding_reg >= 0.0) || !Finite(c.embedding_reg)) {
    return Bad("embedding_reg", "must be a finite number >= 0", c.embedding_reg);
  }
  if (c.num_negatives < 0) return Bad("num_negatives", "must be >= 0", c.num_negatives);
  if (!(c.user_dropout >= 0.0 && c.user_dropout < 1.0)) {
    return Bad("user_dropout", "must be in [0, 1)", c.user_dropout);
  }
  if (!(c.item_dropout >= 0.0 && c.item_dropout < 1.0)) {
    return Bad("item_dropout", "must be in [0, 1)", c.item_dropout);
  }
  if (!(c.proximal_mu >= 0.0) || !Finite(c.proximal_mu)) {
    return Bad("proximal_mu", "must be a finite number >= 0", c.proximal_mu);
  }
  if (!(c.clipping_norm >= 0.0) || !Finite(c.clipping_norm)) {
    return Bad("clipping_norm", "must be a finite number >= 0 (0 = off)", c.clipping_norm);
  }
  return absl::OkStatus();
}

absl::Status ValidateEvalConfig(const EvalConfig& c) {
  if (c.k < 1) return Bad("k", "must be >= 1", c.k);
  if (c.batch_size < 1) return Bad("batch_size", "must be >= 1", c.batch_size);
  return absl::OkStatus();
}

namespace {

// Reads the first present key of `keys` as an int into *out.
absl::Status MergeInt(const common::ConfigMap& m, std::initializer_list<std::string_view> keys,
                      int32_t* out) {
  for (std::string_view key : keys) {
    if (!m.Contains(key)) continue;
    PETAL_ASSIGN_OR_RETURN(int64_t v, m.GetInt(key));
    if (v < INT32_MIN || v > INT32_MAX) {
      return absl::InvalidArgumentError(fmt::format("config '{}': {} is out of range", key, v));
    }
    *out = static_cast<int32_t>(v);
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status MergeDouble(const common::ConfigMap& m, std::initializer_list<std::string_view> keys,
                         double* out) {
  for (std::string_view key : keys) {
    if (!m.Contains(key)) continue;
    PETAL_ASSIGN_OR_RETURN(*out, m.GetDouble(key));
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrainConfig> MergeTrainConfig(const TrainConfig& defaults,
                                             const common::ConfigMap& config) {
  TrainConfig c = defaults;
  PETAL_RETURN_IF_ERROR(MergeInt(config, {"epochs", "local_epochs"}, &c.epochs));
  PETAL_RETURN_IF_ERROR(MergeInt(config, {"batch_size"}, &c.batch_size));
  PETAL_RETURN_IF_ERROR(MergeInt(config, {"num_negatives"}, &c.num_negatives));
  PETAL_RETURN_IF_ERROR(MergeDouble(config, {"lr", "learning_rate"}, &c.lr));
  PETAL_RETURN_IF_ERROR(MergeDouble(config, {"momentum"}, &c.momentum));
  PETAL_RETURN_IF_ERROR(MergeDouble(config, {"weight_decay"}, &c.weight_decay));
  PETAL_RETURN_IF_ERROR(MergeDouble(config, {"embedding_reg"}, &c.embedding_reg));
  PETAL_RETURN_IF_ERROR(MergeDouble(config, {"user_dropout"}, &c.user_dropout));
  PETAL_RETURN_IF_ERROR(MergeDouble(config, {"item_dropout"}, &c.item_dropout));
  PETAL_RETURN_IF_ERROR(MergeDouble(config, {"proximal_mu", "proximal-mu"}, &c.proximal_mu));
  PETAL_RETURN_IF_ERROR(MergeDouble(config, {"clipping_norm"}, &c.clipping_norm));
  if (config.Contains("optimizer")) {
    PETAL_ASSIGN_OR_RETURN(std::string name, config.GetString("optimizer"));
    PETAL_ASSIGN_OR_RETURN(c.optimizer, ParseOptimizerKind(name));
  }
  if (absl::Status s = ValidateTrainConfig(c); !s.ok()) {
    return common::Annotate(s, "fit config");
  }
  return c;
}

absl::StatusOr<EvalConfig> MergeEvalConfig(const EvalConfig& defaults,
                                           const common::ConfigMap& config) {
  EvalConfig c = defaults;
  PETAL_RETURN_IF_ERROR(MergeInt(config, {"k", "top_k"}, &c.k));
  if (config.Contains("full_catalog")) {
    PETAL_ASSIGN_OR_RETURN(c.full_catalog, config.GetBool("full_catalog"));
  }
  if (absl::Status s = ValidateEvalConfig(c); !s.ok()) {
    return common::Annotate(s, "evaluate config");
  }
  return c;
}

common::ConfigMap ToConfigMap(const TrainStats& s) {
  common::ConfigMap m;
  m.Set("train_loss", s.loss);
  m.SetInt("num_samples", s.num_samples);
  m.Set("train_seconds", s.seconds);
  m.Set("samples_per_second", s.samples_per_second);
  m.Set("update_norm", s.update_norm);
  m.Set("clipped", s.clipped);
  return m;
}

common::ConfigMap ToConfigMap(const EvalStats& s) {
  common::ConfigMap m;
  m.Set("loss", s.loss);
  if (s.ranking_cases > 0) {
    m.Set(fmt::format("hr@{}", s.k), s.hit_rate);
    m.Set(fmt::format("ndcg@{}", s.k), s.ndcg);
  }
  if (s.catalog_users > 0) {
    m.Set(fmt::format("precision@{}", s.k), s.precision);
    m.Set(fmt::format("recall@{}", s.k), s.recall);
  }
  if (s.rating_count > 0) {
    m.Set("rmse", s.rmse);
    m.Set("mae", s.mae);
  }
  return m;
}

}  // namespace petal::model
