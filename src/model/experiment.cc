#include "model/experiment.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>

#include "common/status_macros.h"

namespace petal::model {
namespace {

using common::AtLeast;
using common::ConfigReader;
using common::GreaterThan;
using common::InRange;
using common::OneOf;

std::string Key(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

void ReadSeed(ConfigReader& r, const std::string& key, uint64_t* out) {
  int64_t v = static_cast<int64_t>(*out);
  r.Read(key, &v, AtLeast<int64_t>(0));
  *out = static_cast<uint64_t>(v);
}

void ReadInt32(ConfigReader& r, const std::string& key, int32_t* out, common::Check<int64_t> check) {
  int v = *out;
  r.Read(key, &v, std::move(check));
  *out = v;
}

}  // namespace

void ReadDataConfig(ConfigReader& r, const std::string& prefix, DataConfig* out) {
  r.Read(Key(prefix, "source"), &out->source, OneOf({"synthetic", "ml-100k", "ml-latest", "csv"}));
  r.Read(Key(prefix, "path"), &out->path);
  r.Read(Key(prefix, "items_path"), &out->items_path);
  const std::string s = Key(prefix, "synthetic");
  SyntheticOptions& syn = out->synthetic;
  ReadInt32(r, Key(s, "num_users"), &syn.num_users, AtLeast<int64_t>(1));
  ReadInt32(r, Key(s, "num_items"), &syn.num_items, AtLeast<int64_t>(2));
  ReadInt32(r, Key(s, "num_genres"), &syn.num_genres, AtLeast<int64_t>(1));
  ReadInt32(r, Key(s, "num_tags"), &syn.num_tags, AtLeast<int64_t>(0));
  ReadInt32(r, Key(s, "latent_dim"), &syn.latent_dim, AtLeast<int64_t>(1));
  r.Read(Key(s, "mean_interactions"), &syn.mean_interactions, AtLeast<double>(1.0));
  ReadInt32(r, Key(s, "min_interactions"), &syn.min_interactions, AtLeast<int64_t>(1));
  r.Read(Key(s, "popularity_exponent"), &syn.popularity_exponent, AtLeast<double>(0.0));
  r.Read(Key(s, "taste_strength"), &syn.taste_strength, AtLeast<double>(0.0));
  r.Read(Key(s, "rating_noise"), &syn.rating_noise, AtLeast<double>(0.0));
  r.Read(Key(s, "tag_rate"), &syn.tag_rate, InRange<double>(0.0, 1.0));
  ReadSeed(r, Key(s, "seed"), &syn.seed);
  const std::string l = Key(prefix, "load");
  r.Read(Key(l, "min_rating"), &out->load.min_rating);
  r.Read(Key(l, "max_rating"), &out->load.max_rating);
  r.Read(Key(l, "load_genome"), &out->load.load_genome);
  r.Read(Key(l, "genome_min_relevance"), &out->load.genome_min_relevance, InRange<double>(0.0, 1.0));
}

void ReadSplitConfig(ConfigReader& r, const std::string& prefix, SplitConfig* out) {
  r.Read(Key(prefix, "protocol"), &out->protocol,
         OneOf({"leave_one_out", "kfold", "ml100k_fold", "none"}));
  ReadInt32(r, Key(prefix, "num_negatives"), &out->num_negatives, AtLeast<int64_t>(0));
  ReadInt32(r, Key(prefix, "num_folds"), &out->num_folds, AtLeast<int64_t>(2));
  ReadInt32(r, Key(prefix, "fold"), &out->fold, AtLeast<int64_t>(1));
  ReadSeed(r, Key(prefix, "seed"), &out->seed);
  r.Read(Key(prefix, "validation"), &out->validation);
  r.Read(Key(prefix, "cold_users"), &out->cold_users, InRange<double>(0.0, 0.95));
  if (out->cold_users > 0.0 && out->protocol != "leave_one_out") {
    r.Fail(Key(prefix, "cold_users"), "needs protocol leave_one_out (cold users are ranked)");
  }
  if (out->validation && out->protocol == "none") {
    r.Fail(Key(prefix, "validation"), "needs a protocol with a test set");
  }
  if (out->protocol == "kfold" && out->fold > out->num_folds) {
    r.Fail(Key(prefix, "fold"), fmt::format("must be <= num_folds ({})", out->num_folds));
  }
  if (out->protocol == "ml100k_fold" && out->fold > 5) {
    r.Fail(Key(prefix, "fold"), "must be in [1, 5] (u1..u5) for ml100k_fold");
  }
}

void ReadModelOptions(ConfigReader& r, const std::string& prefix, TagNcfOptions* out) {
  std::string mode(FeedbackModeName(out->mode));
  r.Read(Key(prefix, "mode"), &mode, OneOf({"implicit", "explicit"}));
  if (auto m = ParseFeedbackMode(mode); m.ok()) out->mode = *m;
  r.Read(Key(prefix, "gmf_dim"), &out->gmf_dim, AtLeast<int64_t>(1));
  r.Read(Key(prefix, "mlp_embedding_dim"), &out->mlp_embedding_dim, AtLeast<int64_t>(1));
  r.Read(Key(prefix, "tag_dim"), &out->tag_dim, AtLeast<int64_t>(1));
  r.Read(Key(prefix, "mlp_layers"), &out->mlp_layers);
  for (int64_t h : out->mlp_layers) {
    if (h < 1) r.Fail(Key(prefix, "mlp_layers"), "every layer size must be >= 1");
  }
  r.Read(Key(prefix, "use_tags"), &out->use_tags);
  r.Read(Key(prefix, "gmf_only"), &out->gmf_only);
  r.Read(Key(prefix, "use_biases"), &out->use_biases);
  r.Read(Key(prefix, "init_std"), &out->init_std, GreaterThan<double>(0.0));
  r.Read(Key(prefix, "profile_max_tags"), &out->profile_max_tags, AtLeast<int64_t>(0));
  r.Read(Key(prefix, "own_tag_weight"), &out->own_tag_weight, AtLeast<double>(0.0));
  r.Read(Key(prefix, "profile_half_life"), &out->profile_half_life, AtLeast<double>(0.0));
}

void ReadTrainConfig(ConfigReader& r, const std::string& prefix, TrainConfig* out) {
  ReadInt32(r, Key(prefix, "epochs"), &out->epochs, AtLeast<int64_t>(0));
  ReadInt32(r, Key(prefix, "batch_size"), &out->batch_size, AtLeast<int64_t>(1));
  std::string optimizer(OptimizerKindName(out->optimizer));
  r.Read(Key(prefix, "optimizer"), &optimizer, OneOf({"adam", "adamw", "adagrad", "sgd"}));
  if (auto k = ParseOptimizerKind(optimizer); k.ok()) out->optimizer = *k;
  r.Read(Key(prefix, "lr"), &out->lr, GreaterThan<double>(0.0));
  r.Read(Key(prefix, "momentum"), &out->momentum, InRange<double>(0.0, 0.999999));
  r.Read(Key(prefix, "weight_decay"), &out->weight_decay, AtLeast<double>(0.0));
  r.Read(Key(prefix, "embedding_reg"), &out->embedding_reg, AtLeast<double>(0.0));
  r.Read(Key(prefix, "user_dropout"), &out->user_dropout, InRange<double>(0.0, 0.99));
  r.Read(Key(prefix, "item_dropout"), &out->item_dropout, InRange<double>(0.0, 0.99));
  ReadInt32(r, Key(prefix, "num_negatives"), &out->num_negatives, AtLeast<int64_t>(0));
  r.Read(Key(prefix, "proximal_mu"), &out->proximal_mu, AtLeast<double>(0.0));
  r.Read(Key(prefix, "clipping_norm"), &out->clipping_norm, AtLeast<double>(0.0));
}

void ReadEvalConfig(ConfigReader& r, const std::string& prefix, EvalConfig* out) {
  ReadInt32(r, Key(prefix, "k"), &out->k, AtLeast<int64_t>(1));
  r.Read(Key(prefix, "full_catalog"), &out->full_catalog);
  ReadInt32(r, Key(prefix, "batch_size"), &out->batch_size, AtLeast<int64_t>(1));
}

void ReadPartitionOptions(ConfigReader& r, const std::string& prefix, PartitionOptions* out) {
  std::string scheme(PartitionSchemeName(out->scheme));
  r.Read(Key(prefix, "scheme"), &scheme, OneOf({"iid", "dirichlet", "per_user"}));
  if (auto s = ParsePartitionScheme(scheme); s.ok()) out->scheme = *s;
  ReadInt32(r, Key(prefix, "num_partitions"), &out->num_partitions, AtLeast<int64_t>(0));
  r.Read(Key(prefix, "alpha"), &out->alpha, GreaterThan<double>(0.0));
  ReadInt32(r, Key(prefix, "min_partition_size"), &out->min_partition_size, AtLeast<int64_t>(0));
  ReadSeed(r, Key(prefix, "seed"), &out->seed);
}

absl::StatusOr<std::string> ResolveDataPath(const DataConfig& config) {
  const char* env = std::getenv("PETAL_DATA_DIR");
  const std::string data_dir = env ? env : "";
  constexpr std::string_view kVar = "$PETAL_DATA_DIR/";
  std::string path = config.path;
  if (path.rfind(kVar, 0) == 0) {
    if (data_dir.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("data.path '{}' uses $PETAL_DATA_DIR, which is not set", config.path));
    }
    path = data_dir + "/" + path.substr(kVar.size());
  }
  if (!path.empty() || config.source == "synthetic") return path;
  if (config.source == "csv") {
    return absl::InvalidArgumentError("data.path must name the CSV file for source 'csv'");
  }
  if (data_dir.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "data.path is empty and PETAL_DATA_DIR is not set: cannot find the {} data (set "
        "PETAL_DATA_DIR to a folder with ml-100k/ and ml-latest-small/, or --set data.path=DIR)",
        config.source));
  }
  return data_dir + (config.source == "ml-100k" ? "/ml-100k" : "/ml-latest-small");
}

absl::StatusOr<Dataset> LoadDataset(const DataConfig& config) {
  if (config.source == "synthetic") return GenerateSynthetic(config.synthetic);
  PETAL_ASSIGN_OR_RETURN(std::string path, ResolveDataPath(config));
  if (config.source == "ml-100k") return LoadMovieLens100K(path, config.load);
  if (config.source == "ml-latest") return LoadMovieLensLatest(path, config.load);
  if (config.source == "csv") return LoadCsv(path, config.items_path, config.load);
  return absl::InvalidArgumentError(fmt::format(
      "unknown data.source '{}' (expected synthetic, ml-100k, ml-latest or csv)", config.source));
}

namespace {

absl::StatusOr<SplitData> MakeTestSplit(const Dataset& dataset, const DataConfig& data,
                                        const SplitConfig& split) {
  if (split.protocol == "leave_one_out") {
    return LeaveOneOut(dataset, split.num_negatives, split.seed);
  }
  if (split.protocol == "kfold") return KFold(dataset, split.num_folds, split.fold - 1, split.seed);
  if (split.protocol == "ml100k_fold") {
    if (data.source != "ml-100k") {
      return absl::InvalidArgumentError(fmt::format(
          "split.protocol ml100k_fold needs data.source ml-100k (got '{}')", data.source));
    }
    PETAL_ASSIGN_OR_RETURN(std::string dir, ResolveDataPath(data));
    return MovieLens100KFold(dataset, dir, fmt::format("u{}", split.fold));
  }
  if (split.protocol == "none") return NoSplit(dataset);
  return absl::InvalidArgumentError(fmt::format(
      "unknown split.protocol '{}' (expected leave_one_out, kfold, ml100k_fold or none)",
      split.protocol));
}

}  // namespace

absl::StatusOr<SplitData> MakeSplit(const Dataset& dataset, const DataConfig& data,
                                    const SplitConfig& split) {
  PETAL_ASSIGN_OR_RETURN(SplitData test_split, MakeTestSplit(dataset, data, split));
  if (!split.validation) return test_split;
  if (split.protocol == "none") {
    return absl::InvalidArgumentError("split.validation needs a protocol with a test set");
  }
  // The same protocol on the training part only; the test part is dropped.
  Dataset train_only;
  train_only.catalog = test_split.catalog;
  train_only.user_ids = test_split.user_ids;
  train_only.interactions = std::move(test_split.train);
  SplitData validation;
  if (split.protocol == "leave_one_out") {
    PETAL_ASSIGN_OR_RETURN(validation, LeaveOneOut(train_only, split.num_negatives, split.seed + 1));
  } else {
    PETAL_ASSIGN_OR_RETURN(validation, KFold(train_only, std::max(split.num_folds, 2), 0, split.seed + 1));
  }
  validation.protocol = test_split.protocol + " (validation)";
  return validation;
}

absl::StatusOr<SplitData> LoadClientData(const DataConfig& data, const SplitConfig& split,
                                         const PartitionOptions& partitions,
                                         int32_t partition_id) {
  if (split.cold_users > 0.0) {
    return absl::InvalidArgumentError(
        "split.cold_users is a petal-train evaluation: a federated client trains all its users "
        "(set it to 0)");
  }
  PETAL_ASSIGN_OR_RETURN(Dataset dataset, LoadDataset(data));
  PETAL_ASSIGN_OR_RETURN(SplitData pooled, MakeSplit(dataset, data, split));
  PETAL_ASSIGN_OR_RETURN(auto parts, PartitionUsers(pooled, partitions));
  if (partition_id < 0 || partition_id >= static_cast<int32_t>(parts.size())) {
    return absl::InvalidArgumentError(fmt::format("partition_id must be in [0, {}), got {}",
                                                  parts.size(), partition_id));
  }
  return RestrictToUsers(pooled, parts[partition_id]);
}

}  // namespace petal::model
