#include "model/workload.h"

#include <torch/torch.h>

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/file_util.h"
#include "common/status_macros.h"
#include "model/internal/features.h"
#include "model/internal/random.h"
#include "model/internal/train_hooks.h"
#include "model/metrics.h"
#include "model/tag_ncf.h"

namespace petal::model {
namespace {

constexpr char kStateFile[] = "local_state.npz";
constexpr int64_t kMaxScoreChunkElements = 1 << 22;  // floats per full-catalog scoring chunk

torch::Tensor Int64Tensor(const std::vector<int64_t>& v) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(v.size())}, torch::kInt64);
  if (!v.empty()) std::memcpy(t.data_ptr<int64_t>(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

torch::Tensor FloatTensor(const std::vector<float>& v) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(v.size())}, torch::kFloat32);
  if (!v.empty()) std::memcpy(t.data_ptr<float>(), v.data(), v.size() * sizeof(float));
  return t;
}

// Appends the rows `rows` of `source` as bags.
void AppendBags(const SparseRows& source, const std::vector<int64_t>& rows, TagBags& bags) {
  std::vector<int64_t> indices;
  std::vector<int64_t> offsets;
  std::vector<float> weights;
  offsets.reserve(rows.size());
  for (int64_t r : rows) {
    offsets.push_back(static_cast<int64_t>(indices.size()));
    auto idx = source.Indices(r);
    auto w = source.Weights(r);
    indices.insert(indices.end(), idx.begin(), idx.end());
    weights.insert(weights.end(), w.begin(), w.end());
  }
  bags.indices = Int64Tensor(indices);
  bags.offsets = Int64Tensor(offsets);
  bags.weights = FloatTensor(weights);
}

TagBags AllRowsAsBags(const SparseRows& source) {
  std::vector<int64_t> rows(source.rows());
  for (int64_t r = 0; r < source.rows(); ++r) rows[r] = r;
  TagBags bags;
  AppendBags(source, rows, bags);
  return bags;
}

// Builds TagNcfBatch inputs, deduplicating the items and profiles of a batch.
class BatchBuilder {
 public:
  BatchBuilder(const SparseRows& item_tags, int64_t num_items, bool use_tags)
      : item_tags_(item_tags), use_tags_(use_tags), item_slot_(num_items, -1) {}

  // Example k: user row users[k] (-1 = cold), item items[k], profile row
  // profile_rows[k] of `profiles`.
  TagNcfBatch Build(const int64_t* users, const int64_t* items, const int64_t* profile_rows,
                    int64_t n, const SparseRows& profiles) {
    TagNcfBatch b;
    b.users = torch::from_blob(const_cast<int64_t*>(users), {n}, torch::kInt64).clone();
    b.items = torch::from_blob(const_cast<int64_t*>(items), {n}, torch::kInt64).clone();
    if (!use_tags_) return b;
    std::vector<int64_t> item_rows;
    std::vector<int64_t> item_bag(n);
    for (int64_t k = 0; k < n; ++k) {
      int64_t& slot = item_slot_[items[k]];
      if (slot < 0) {
        slot = static_cast<int64_t>(item_rows.size());
        item_rows.push_back(items[k]);
      }
      item_bag[k] = slot;
    }
    for (int64_t r : item_rows) item_slot_[r] = -1;
    std::vector<int64_t> profile_list;
    std::vector<int64_t> user_bag(n);
    if (profile_slot_.size() < static_cast<size_t>(profiles.rows())) {
      profile_slot_.assign(profiles.rows(), -1);
    }
    for (int64_t k = 0; k < n; ++k) {
      int64_t& slot = profile_slot_[profile_rows[k]];
      if (slot < 0) {
        slot = static_cast<int64_t>(profile_list.size());
        profile_list.push_back(profile_rows[k]);
      }
      user_bag[k] = slot;
    }
    for (int64_t r : profile_list) profile_slot_[r] = -1;
    AppendBags(item_tags_, item_rows, b.item_tags);
    AppendBags(profiles, profile_list, b.user_tags);
    b.item_bag = Int64Tensor(item_bag);
    b.user_bag = Int64Tensor(user_bag);
    return b;
  }

 private:
  const SparseRows& item_tags_;
  bool use_tags_;
  std::vector<int64_t> item_slot_;
  std::vector<int64_t> profile_slot_;
};

// LibTorch's set_num_threads does not reach OpenBLAS's own thread pool (the
// pthread build Debian installs): its idle workers spin and, on a busy 2-core
// machine, halve throughput. Set it too when OpenBLAS is the loaded BLAS.
void SetBlasThreads(int32_t threads) {
  using SetThreads = void (*)(int);
  if (void* symbol = dlsym(RTLD_DEFAULT, "openblas_set_num_threads")) {
    reinterpret_cast<SetThreads>(symbol)(threads);
  }
}

std::string OptionsFingerprint(const TagNcfOptions& o) {
  return fmt::format(
      "mode={} users={} items={} tags={} gmf={} mlp_emb={} tag_dim={} layers=[{}] tags={} "
      "gmf_only={} biases={}",
      FeedbackModeName(o.mode), o.num_users, o.num_items, o.num_tags, o.gmf_dim,
      o.mlp_embedding_dim, o.tag_dim, fmt::join(o.mlp_layers, ","), o.use_tags, o.gmf_only,
      o.use_biases);
}

std::string TensorKey(const torch::Tensor& p) {
  return c10::guts::to_string(p.unsafeGetTensorImpl());
}

absl::StatusOr<common::NDArray> TensorToArray(const torch::Tensor& t) {
  torch::Tensor c = t.detach().contiguous().to(torch::kFloat32);
  common::Shape shape(c.sizes().begin(), c.sizes().end());
  return common::NDArray::FromBytes(
      common::DType::kFloat32, shape,
      std::string_view(reinterpret_cast<const char*>(c.data_ptr<float>()),
                       static_cast<size_t>(c.numel()) * sizeof(float)));
}

// Float32 tensor copied from an array whose dtype and shape were checked.
torch::Tensor ArrayToTensor(const common::NDArray& a) {
  std::vector<int64_t> shape(a.shape().begin(), a.shape().end());
  return torch::from_blob(const_cast<std::byte*>(a.data()), shape, torch::kFloat32).clone();
}

absl::Status CheckFloatArray(const common::NDArray& a, const std::vector<int64_t>& shape,
                             std::string_view what) {
  if (a.dtype() != common::DType::kFloat32) {
    return absl::InvalidArgumentError(
        fmt::format("{}: dtype {} (expected float32)", what, common::DTypeName(a.dtype())));
  }
  if (a.shape() != shape) {
    return absl::InvalidArgumentError(fmt::format("{}: shape {} (expected {})", what,
                                                  common::ShapeToString(a.shape()),
                                                  common::ShapeToString(shape)));
  }
  auto values = a.values<float>();
  for (size_t k = 0; k < values.size(); ++k) {
    if (!std::isfinite(values[k])) {
      return absl::InvalidArgumentError(
          fmt::format("{}: non-finite value {} at flat index {}", what, values[k], k));
    }
  }
  return absl::OkStatus();
}

}  // namespace

struct LocalWorkload::Impl {
  SplitData data;
  TagNcfOptions options;
  TrainConfig defaults;
  uint64_t seed = 0;
  TagNcf model{nullptr};

  // Local users: data.users[local] is the dataset index.
  std::vector<char> has_train;         // per local user
  std::vector<int64_t> train_local;    // per train row: local user
  std::vector<int64_t> user_item_offsets;  // sorted distinct train items per local user
  std::vector<int32_t> user_items;
  float rating_min = 0.0f;
  float rating_max = 0.0f;

  SparseRows item_tags;  // normalized
  SparseRows profiles;   // one row per local user
  TagBags all_item_bags;
  std::unique_ptr<BatchBuilder> builder;

  std::vector<std::pair<std::string, torch::Tensor>> globals;  // views of the parameters
  std::vector<torch::Tensor> reference;                        // w_global (frozen copies)
  bool has_reference = false;

  std::unique_ptr<torch::optim::Optimizer> optimizer;
  OptimizerKind optimizer_kind = OptimizerKind::kAdam;
  internal::Rng rng;

  std::optional<int64_t> LocalOf(int32_t user) const {
    auto it = std::lower_bound(data.users.begin(), data.users.end(), user);
    if (it == data.users.end() || *it != user) return std::nullopt;
    return it - data.users.begin();
  }
  // The embedding row of a local user (-1 when they have no training data).
  int64_t Row(int64_t local) const { return has_train[local] ? local : -1; }
  absl::Span<const int32_t> ItemsOf(int64_t local) const {
    return absl::MakeConstSpan(user_items)
        .subspan(user_item_offsets[local], user_item_offsets[local + 1] - user_item_offsets[local]);
  }

  // Two parameter groups: [0] the ID embedding tables and biases (regularized
  // per example by embedding_reg, no weight decay), [1] everything else (tag
  // embeddings, projections, MLP, output), with the optimizer's weight decay.
  // Without decay on [1] the output layer could grow to undo any penalty on
  // the embeddings (w . (p * q) is invariant to p, q -> p/s, q/s, w -> w s^2).
  std::vector<torch::optim::OptimizerParamGroup> ParamGroups(
      std::unique_ptr<torch::optim::OptimizerOptions> embedding_options,
      std::unique_ptr<torch::optim::OptimizerOptions> dense_options) const {
    std::vector<torch::Tensor> embeddings;
    std::vector<torch::Tensor> dense;
    for (const auto& item : model->named_parameters(/*recurse=*/true)) {
      const std::string& name = item.key();
      const bool id_table = name.rfind("user_gmf", 0) == 0 || name.rfind("user_mlp", 0) == 0 ||
                            name.rfind("user_bias", 0) == 0 || name.rfind("item_gmf", 0) == 0 ||
                            name.rfind("item_mlp", 0) == 0 || name.rfind("item_bias", 0) == 0;
      (id_table ? embeddings : dense).push_back(item.value());
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(embeddings, std::move(embedding_options));
    groups.emplace_back(dense, std::move(dense_options));
    return groups;
  }

  void MakeOptimizer(const TrainConfig& c) {
    switch (c.optimizer) {
      case OptimizerKind::kAdam: {
        torch::optim::AdamOptions o(c.lr);
        auto embedding_options = std::make_unique<torch::optim::AdamOptions>(o);
        auto dense_options = std::make_unique<torch::optim::AdamOptions>(o);
        dense_options->weight_decay(c.weight_decay);
        optimizer = std::make_unique<torch::optim::Adam>(
            ParamGroups(std::move(embedding_options), std::move(dense_options)),
            torch::optim::AdamOptions(c.lr));
        break;
      }
      case OptimizerKind::kAdamW: {
        torch::optim::AdamWOptions o(c.lr);
        o.weight_decay(0.0);
        auto embedding_options = std::make_unique<torch::optim::AdamWOptions>(o);
        auto dense_options = std::make_unique<torch::optim::AdamWOptions>(o);
        dense_options->weight_decay(c.weight_decay);
        optimizer = std::make_unique<torch::optim::AdamW>(
            ParamGroups(std::move(embedding_options), std::move(dense_options)),
            torch::optim::AdamWOptions(c.lr));
        break;
      }
      case OptimizerKind::kAdagrad: {
        torch::optim::AdagradOptions o(c.lr);
        auto embedding_options = std::make_unique<torch::optim::AdagradOptions>(o);
        auto dense_options = std::make_unique<torch::optim::AdagradOptions>(o);
        dense_options->weight_decay(c.weight_decay);
        optimizer = std::make_unique<torch::optim::Adagrad>(
            ParamGroups(std::move(embedding_options), std::move(dense_options)),
            torch::optim::AdagradOptions(c.lr));
        break;
      }
      case OptimizerKind::kSgd: {
        torch::optim::SGDOptions o(c.lr);
        o.momentum(c.momentum);
        auto embedding_options = std::make_unique<torch::optim::SGDOptions>(o);
        auto dense_options = std::make_unique<torch::optim::SGDOptions>(o);
        dense_options->weight_decay(c.weight_decay);
        optimizer = std::make_unique<torch::optim::SGD>(
            ParamGroups(std::move(embedding_options), std::move(dense_options)),
            torch::optim::SGDOptions(c.lr));
        break;
      }
    }
    optimizer_kind = c.optimizer;
  }

  // Forgets the optimizer state of `p` (Adagrad keeps an entry per parameter
  // from construction on, so it gets a fresh one instead).
  void ResetOptimizerState(const torch::Tensor& p) {
    if (!optimizer) return;
    if (optimizer_kind == OptimizerKind::kAdagrad) {
      auto fresh = std::make_unique<torch::optim::AdagradParamState>();
      fresh->step(0);
      fresh->sum(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      optimizer->state()[TensorKey(p)] = std::move(fresh);
    } else {
      optimizer->state().erase(TensorKey(p));
    }
  }

  void ConfigureOptimizer(const TrainConfig& c) {
    if (!optimizer || optimizer_kind != c.optimizer) {
      MakeOptimizer(c);
      return;
    }
    for (size_t g = 0; g < optimizer->param_groups().size(); ++g) {
      auto& group = optimizer->param_groups()[g];
      const double weight_decay = g == 0 ? 0.0 : c.weight_decay;  // see ParamGroups
      switch (c.optimizer) {
        case OptimizerKind::kAdam: {
          auto& o = static_cast<torch::optim::AdamOptions&>(group.options());
          o.lr(c.lr);
          o.weight_decay(weight_decay);
          break;
        }
        case OptimizerKind::kAdamW: {
          auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
          o.lr(c.lr);
          o.weight_decay(weight_decay);
          break;
        }
        case OptimizerKind::kAdagrad: {
          auto& o = static_cast<torch::optim::AdagradOptions&>(group.options());
          o.lr(c.lr);
          o.weight_decay(weight_decay);
          break;
        }
        case OptimizerKind::kSgd: {
          auto& o = static_cast<torch::optim::SGDOptions&>(group.options());
          o.lr(c.lr);
          o.momentum(c.momentum);
          o.weight_decay(weight_decay);
          break;
        }
      }
    }
  }

  // Forward in eval mode for (row, item, profile row) triples, in chunks.
  std::vector<float> Score(const std::vector<int64_t>& rows, const std::vector<int64_t>& items,
                           const std::vector<int64_t>& profile_rows, const SparseRows& profile_set,
                           int64_t batch_size) {
    torch::NoGradGuard no_grad;
    model->eval();
    std::vector<float> scores(items.size());
    for (size_t start = 0; start < items.size(); start += batch_size) {
      const int64_t n = std::min<int64_t>(batch_size, items.size() - start);
      TagNcfBatch b = builder->Build(rows.data() + start, items.data() + start,
                                     profile_rows.data() + start, n, profile_set);
      torch::Tensor y = model->forward(b).prediction.contiguous();
      std::memcpy(scores.data() + start, y.data_ptr<float>(), n * sizeof(float));
    }
    model->train();
    return scores;
  }

  absl::StatusOr<TrainStats> TrainImpl(const TrainConfig& config);
  absl::StatusOr<EvalStats> EvaluateImpl(const EvalConfig& config);
};

LocalWorkload::LocalWorkload(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalWorkload::~LocalWorkload() = default;

absl::StatusOr<std::unique_ptr<LocalWorkload>> LocalWorkload::Create(
    SplitData data, const TagNcfOptions& options, const TrainConfig& train_defaults, uint64_t seed,
    int32_t threads) {
  if (!data.catalog || !data.user_ids) {
    return absl::InvalidArgumentError("workload data has no catalog or user ids");
  }
  if (threads < 1) {
    return absl::InvalidArgumentError(fmt::format("threads must be >= 1, got {}", threads));
  }
  PETAL_RETURN_IF_ERROR(ValidateTrainConfig(train_defaults));
  auto impl = std::make_unique<Impl>();
  Impl& w = *impl;
  w.options = options;
  w.options.num_users = static_cast<int64_t>(data.users.size());
  w.options.num_items = data.catalog->num_items();
  w.options.num_tags = data.catalog->num_tags();
  PETAL_RETURN_IF_ERROR(ValidateTagNcfOptions(w.options));
  w.defaults = train_defaults;
  w.seed = seed;
  w.rng.Seed(internal::DeriveSeed(seed, 0x7EA1));
  std::sort(data.users.begin(), data.users.end());
  if (std::adjacent_find(data.users.begin(), data.users.end()) != data.users.end()) {
    return absl::InvalidArgumentError("workload data lists a user twice");
  }
  w.data = std::move(data);
  const Catalog& catalog = *w.data.catalog;
  const int64_t num_local = w.options.num_users;
  const int32_t num_items = catalog.num_items();

  // Validate and index the data.
  auto check_rows = [&](const Interactions& x, std::string_view what) -> absl::Status {
    for (size_t r = 0; r < x.size(); ++r) {
      if (!w.LocalOf(x.users[r])) {
        return absl::InvalidArgumentError(
            fmt::format("{} interaction {}: user {} is not one of this workload's users", what, r,
                        x.users[r]));
      }
      if (x.items[r] < 0 || x.items[r] >= num_items) {
        return absl::InvalidArgumentError(fmt::format(
            "{} interaction {}: item {} is outside the catalog ({} items)", what, r, x.items[r],
            num_items));
      }
      if (!std::isfinite(x.ratings[r])) {
        return absl::InvalidArgumentError(fmt::format("{} interaction {}: rating is not finite", what, r));
      }
    }
    for (const TagApplication& a : x.tag_applications) {
      if (!w.LocalOf(a.user) || a.item < 0 || a.item >= num_items || a.tag < 0 ||
          a.tag >= catalog.num_tags()) {
        return absl::InvalidArgumentError(fmt::format(
            "{} tag application (user {}, item {}, tag {}) is outside the workload's users or the "
            "catalog", what, a.user, a.item, a.tag));
      }
    }
    return absl::OkStatus();
  };
  PETAL_RETURN_IF_ERROR(check_rows(w.data.train, "train"));
  PETAL_RETURN_IF_ERROR(check_rows(w.data.test, "test"));
  for (size_t c = 0; c < w.data.ranking.size(); ++c) {
    const RankingCase& rc = w.data.ranking[c];
    bool ok = w.LocalOf(rc.user).has_value() && rc.item >= 0 && rc.item < num_items;
    for (int32_t i : rc.negatives) ok = ok && i >= 0 && i < num_items;
    if (!ok) {
      return absl::InvalidArgumentError(
          fmt::format("ranking case {} refers to an unknown user or item", c));
    }
  }

  const Interactions& train = w.data.train;
  w.has_train.assign(num_local, 0);
  w.train_local.resize(train.size());
  std::vector<std::vector<int32_t>> items_of(num_local);
  std::vector<std::vector<int64_t>> times_of(num_local);
  std::vector<std::vector<int32_t>> tags_of(num_local);
  double rating_sum = 0;
  w.rating_min = train.empty() ? 0.0f : train.ratings[0];
  w.rating_max = w.rating_min;
  for (size_t r = 0; r < train.size(); ++r) {
    const int64_t local = *w.LocalOf(train.users[r]);
    w.train_local[r] = local;
    w.has_train[local] = 1;
    items_of[local].push_back(train.items[r]);
    times_of[local].push_back(train.timestamps[r]);
    rating_sum += train.ratings[r];
    w.rating_min = std::min(w.rating_min, train.ratings[r]);
    w.rating_max = std::max(w.rating_max, train.ratings[r]);
  }
  for (const TagApplication& a : train.tag_applications) tags_of[*w.LocalOf(a.user)].push_back(a.tag);
  w.item_tags = internal::NormalizedItemTags(catalog);
  w.user_item_offsets.assign(1, 0);
  for (int64_t u = 0; u < num_local; ++u) {
    internal::AppendProfile(w.item_tags, items_of[u], tags_of[u], w.options.profile_max_tags,
                            w.options.own_tag_weight, w.profiles,
                            internal::RecencyWeights(times_of[u], w.options.profile_half_life));
    std::vector<int32_t>& items = items_of[u];
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
    w.user_items.insert(w.user_items.end(), items.begin(), items.end());
    w.user_item_offsets.push_back(static_cast<int64_t>(w.user_items.size()));
  }

  try {
    w.model = TagNcf(w.options);
    w.model->Initialize(seed);
    if (w.options.mode == FeedbackMode::kExplicit && !train.empty()) {
      torch::NoGradGuard no_grad;
      w.model->output->bias.fill_(rating_sum / static_cast<double>(train.size()));
    }
    w.globals = w.model->GlobalParameters();
    w.all_item_bags = AllRowsAsBags(w.item_tags);
    w.builder = std::make_unique<BatchBuilder>(w.item_tags, num_items, w.options.use_tags);
    at::set_num_threads(threads);
    SetBlasThreads(threads);
  } catch (const c10::Error& e) {
    return absl::InternalError(fmt::format("building the model failed: {}", e.what_without_backtrace()));
  }
  return std::unique_ptr<LocalWorkload>(new LocalWorkload(std::move(impl)));
}

const TagNcfOptions& LocalWorkload::options() const { return impl_->options; }
const TrainConfig& LocalWorkload::train_defaults() const { return impl_->defaults; }
const SplitData& LocalWorkload::data() const { return impl_->data; }
int64_t LocalWorkload::num_train_examples() const {
  return static_cast<int64_t>(impl_->data.train.size());
}

std::vector<std::string> LocalWorkload::GlobalParameterNames() const {
  std::vector<std::string> names;
  for (const auto& [name, p] : impl_->globals) names.push_back(name);
  return names;
}

std::vector<common::Shape> LocalWorkload::GlobalParameterShapes() const {
  std::vector<common::Shape> shapes;
  for (const auto& [name, p] : impl_->globals) shapes.emplace_back(p.sizes().begin(), p.sizes().end());
  return shapes;
}

common::NDArrays LocalWorkload::GlobalArrays() const {
  common::NDArrays out;
  out.reserve(impl_->globals.size());
  for (const auto& [name, p] : impl_->globals) {
    torch::Tensor view = p.detach();  // shares storage; parameters are contiguous float32
    auto owner = std::make_shared<torch::Tensor>(view);
    common::Shape shape(view.sizes().begin(), view.sizes().end());
    auto array = common::NDArray::Wrap(common::DType::kFloat32, std::move(shape),
                                       reinterpret_cast<std::byte*>(view.data_ptr<float>()),
                                       static_cast<size_t>(view.numel()) * sizeof(float), owner);
    out.push_back(std::move(array).value());  // sizes match by construction
  }
  return out;
}

absl::Status LocalWorkload::SetGlobalArrays(const common::NDArrays& arrays) {
  Impl& w = *impl_;
  if (arrays.size() != w.globals.size()) {
    return absl::InvalidArgumentError(fmt::format(
        "expected {} global arrays ({}), got {}", w.globals.size(),
        fmt::join(GlobalParameterNames(), ", "), arrays.size()));
  }
  for (size_t k = 0; k < arrays.size(); ++k) {
    const auto& [name, p] = w.globals[k];
    std::vector<int64_t> shape(p.sizes().begin(), p.sizes().end());
    PETAL_RETURN_IF_ERROR(
        CheckFloatArray(arrays[k], shape, fmt::format("global array {} ('{}')", k, name)));
  }
  try {
    torch::NoGradGuard no_grad;
    w.reference.clear();
    for (size_t k = 0; k < arrays.size(); ++k) {
      torch::Tensor& p = w.globals[k].second;
      std::vector<int64_t> shape(p.sizes().begin(), p.sizes().end());
      p.copy_(torch::from_blob(const_cast<std::byte*>(arrays[k].data()), shape, torch::kFloat32));
      w.reference.push_back(p.detach().clone());
    }
    w.has_reference = true;
    for (const auto& [name, p] : w.globals) w.ResetOptimizerState(p);
  } catch (const c10::Error& e) {
    return absl::InternalError(fmt::format("setting global arrays: {}", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainStats> LocalWorkload::Train(const TrainConfig& config) {
  PETAL_RETURN_IF_ERROR(ValidateTrainConfig(config));
  Impl& w = *impl_;
  // Snapshot to restore on failure.
  std::vector<torch::Tensor> snapshot;
  for (const auto& p : w.model->parameters()) snapshot.push_back(p.detach().clone());
  const std::vector<uint64_t> rng_state = w.rng.State();
  auto restore = [&]() {
    torch::NoGradGuard no_grad;
    auto params = w.model->parameters();
    for (size_t k = 0; k < params.size(); ++k) params[k].copy_(snapshot[k]);
    w.optimizer.reset();
    w.rng.SetState(rng_state);
  };
  try {
    absl::StatusOr<TrainStats> stats = w.TrainImpl(config);
    if (!stats.ok()) restore();
    return stats;
  } catch (const c10::Error& e) {
    restore();
    return absl::InternalError(fmt::format("training failed: {}", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    restore();
    return absl::InternalError(fmt::format("training failed: {}", e.what()));
  }
}

absl::StatusOr<TrainStats> LocalWorkload::Impl::TrainImpl(const TrainConfig& config) {
  const auto start_time = std::chrono::steady_clock::now();
  ConfigureOptimizer(config);
  model->train();
  // w_global: the arrays last set by the server, else the weights at the start of this call.
  std::vector<torch::Tensor> ref;
  if (has_reference) {
    ref = reference;
  } else {
    for (const auto& [name, p] : globals) ref.push_back(p.detach().clone());
  }
  std::vector<torch::Tensor> global_tensors;
  for (const auto& [name, p] : globals) global_tensors.push_back(p);
  const bool implicit = options.mode == FeedbackMode::kImplicit;
  const int32_t num_items = options.num_items;
  const int64_t positives = static_cast<int64_t>(data.train.size());
  TrainStats stats;
  stats.num_examples = positives;

  std::vector<int64_t> users;
  std::vector<int64_t> items;
  std::vector<float> labels;
  std::vector<int64_t> order;
  std::vector<int64_t> bu;
  std::vector<int64_t> bi;
  std::vector<float> bl;
  for (int32_t epoch = 0; epoch < config.epochs; ++epoch) {
    users.clear();
    items.clear();
    labels.clear();
    const int32_t k = implicit ? config.num_negatives : 0;
    users.reserve(positives * (1 + k));
    items.reserve(positives * (1 + k));
    labels.reserve(positives * (1 + k));
    for (int64_t r = 0; r < positives; ++r) {
      const int64_t local = train_local[r];
      users.push_back(local);
      items.push_back(data.train.items[r]);
      labels.push_back(implicit ? 1.0f : data.train.ratings[r]);
      if (!implicit) continue;
      auto seen = ItemsOf(local);
      if (static_cast<int64_t>(seen.size()) >= num_items) continue;  // nothing to sample
      for (int32_t j = 0; j < k; ++j) {
        int32_t item;
        do {
          item = static_cast<int32_t>(rng.UniformInt(num_items));
        } while (std::binary_search(seen.begin(), seen.end(), item));
        users.push_back(local);
        items.push_back(item);
        labels.push_back(0.0f);
      }
    }
    const int64_t n = static_cast<int64_t>(users.size());
    order.resize(n);
    for (int64_t s = 0; s < n; ++s) order[s] = s;
    rng.Shuffle(order);
    double loss_sum = 0;
    for (int64_t start = 0; start < n; start += config.batch_size) {
      const int64_t m = std::min<int64_t>(config.batch_size, n - start);
      bu.resize(m);
      bi.resize(m);
      bl.resize(m);
      for (int64_t q = 0; q < m; ++q) {
        const int64_t s = order[start + q];
        bu[q] = has_train[users[s]] ? users[s] : -1;
        bi[q] = items[s];
        bl[q] = labels[s];
      }
      // The profile row of every example is its local user.
      std::vector<int64_t> prof(m);
      for (int64_t q = 0; q < m; ++q) prof[q] = users[order[start + q]];
      TagNcfBatch batch = builder->Build(bu.data(), bi.data(), prof.data(), m, profiles);
      if (config.user_dropout > 0 || config.item_dropout > 0) {
        int64_t* batch_users = batch.users.data_ptr<int64_t>();
        int64_t* batch_items = batch.items.data_ptr<int64_t>();
        for (int64_t q = 0; q < m; ++q) {
          if (config.user_dropout > 0 && rng.Uniform() < config.user_dropout) batch_users[q] = -1;
          if (config.item_dropout > 0 && rng.Uniform() < config.item_dropout) batch_items[q] = -1;
        }
      }
      const torch::Tensor target = FloatTensor(bl);
      TagNcfOutput out = model->forward(batch, config.embedding_reg > 0);
      torch::Tensor data_loss =
          implicit ? torch::binary_cross_entropy_with_logits(out.prediction, target)
                   : torch::mse_loss(out.prediction, target);
      torch::Tensor loss = data_loss;
      if (config.embedding_reg > 0) loss = loss + config.embedding_reg * out.penalty;
      if (config.proximal_mu > 0) {
        loss = loss + internal::ProximalTerm(global_tensors, ref, config.proximal_mu);
      }
      const double value = data_loss.item<double>();
      if (!std::isfinite(value) || !std::isfinite(loss.item<double>())) {
        return absl::InternalError(fmt::format(
            "training diverged: non-finite loss in epoch {} (lr {}); parameters restored",
            epoch + 1, config.lr));
      }
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      loss_sum += value * m;
    }
    stats.num_samples += n;
    stats.epoch_losses.push_back(n > 0 ? loss_sum / n : 0.0);
  }
  stats.loss = stats.epoch_losses.empty() ? 0.0 : stats.epoch_losses.back();

  // The update and its clipping.
  if (!std::isfinite(internal::UpdateNorm(global_tensors, ref))) {
    return absl::InternalError("training produced non-finite parameters; parameters restored");
  }
  std::tie(stats.update_norm, stats.clipped) =
      internal::ClipUpdate(global_tensors, ref, config.clipping_norm);
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  stats.samples_per_second = stats.seconds > 0 ? stats.num_samples / stats.seconds : 0.0;
  return stats;
}

absl::StatusOr<EvalStats> LocalWorkload::Evaluate(const EvalConfig& config) {
  PETAL_RETURN_IF_ERROR(ValidateEvalConfig(config));
  try {
    return impl_->EvaluateImpl(config);
  } catch (const c10::Error& e) {
    impl_->model->train();
    return absl::InternalError(fmt::format("evaluation failed: {}", e.what_without_backtrace()));
  }
}

absl::StatusOr<EvalStats> LocalWorkload::Impl::EvaluateImpl(const EvalConfig& config) {
  EvalStats stats;
  stats.k = config.k;
  const bool implicit = options.mode == FeedbackMode::kImplicit;
  auto bce = [](float logit, float label) {
    // log(1 + exp(-|x|)) + max(x, 0) - x * y, stable.
    const double x = logit;
    return std::log1p(std::exp(-std::abs(x))) + std::max(x, 0.0) - x * label;
  };
  double loss_sum = 0;
  int64_t loss_count = 0;

  // Leave-one-out ranking cases.
  if (!data.ranking.empty()) {
    std::vector<int64_t> rows;
    std::vector<int64_t> items;
    std::vector<int64_t> prof;
    for (const RankingCase& c : data.ranking) {
      const int64_t local = *LocalOf(c.user);
      rows.push_back(Row(local));
      items.push_back(c.item);
      prof.push_back(local);
      for (int32_t i : c.negatives) {
        rows.push_back(Row(local));
        items.push_back(i);
        prof.push_back(local);
      }
    }
    const std::vector<float> scores = Score(rows, items, prof, profiles, config.batch_size);
    RankingMetrics ranking(config.k);
    size_t at = 0;
    for (const RankingCase& c : data.ranking) {
      const size_t n = c.negatives.size();
      ranking.Add(scores[at], absl::MakeConstSpan(scores).subspan(at + 1, n));
      if (implicit) {
        loss_sum += bce(scores[at], 1.0f);
        for (size_t q = 1; q <= n; ++q) loss_sum += bce(scores[at + q], 0.0f);
        loss_count += static_cast<int64_t>(n + 1);
      }
      at += n + 1;
    }
    stats.ranking_cases = ranking.count();
    stats.hit_rate = ranking.hit_rate();
    stats.ndcg = ranking.ndcg();
  }

  // Held-out ratings.
  const Interactions& test = data.test;
  if (!test.empty()) {
    std::vector<int64_t> rows(test.size());
    std::vector<int64_t> items(test.size());
    std::vector<int64_t> prof(test.size());
    for (size_t r = 0; r < test.size(); ++r) {
      const int64_t local = *LocalOf(test.users[r]);
      rows[r] = Row(local);
      items[r] = test.items[r];
      prof[r] = local;
    }
    const std::vector<float> scores = Score(rows, items, prof, profiles, config.batch_size);
    if (implicit) {
      if (data.ranking.empty()) {
        for (float s : scores) loss_sum += bce(s, 1.0f);
        loss_count += static_cast<int64_t>(scores.size());
      }
    } else {
      ErrorMetrics errors;
      for (size_t r = 0; r < test.size(); ++r) {
        // Predictions are clipped to the training rating range (like Surprise).
        const double p = std::clamp(scores[r], rating_min, rating_max);
        errors.Add(p, test.ratings[r]);
        loss_sum += (p - test.ratings[r]) * (p - test.ratings[r]);
      }
      loss_count += errors.count();
      stats.rating_count = errors.count();
      stats.rmse = errors.rmse();
      stats.mae = errors.mae();
    }

    if (config.full_catalog) {
      // Relevant: the user's held-out items; excluded: their training items.
      std::vector<std::vector<int32_t>> relevant(options.num_users);
      for (size_t r = 0; r < test.size(); ++r) relevant[*LocalOf(test.users[r])].push_back(test.items[r]);
      std::vector<int64_t> eval_users;
      for (int64_t u = 0; u < options.num_users; ++u) {
        if (relevant[u].empty()) continue;
        std::sort(relevant[u].begin(), relevant[u].end());
        relevant[u].erase(std::unique(relevant[u].begin(), relevant[u].end()), relevant[u].end());
        eval_users.push_back(u);
      }
      CatalogMetrics catalog_metrics(config.k);
      torch::NoGradGuard no_grad;
      model->eval();
      const int64_t num_items = options.num_items;
      const int64_t users_per_chunk = std::max<int64_t>(1, kMaxScoreChunkElements / num_items);
      for (size_t start = 0; start < eval_users.size(); start += users_per_chunk) {
        const size_t end = std::min(eval_users.size(), start + users_per_chunk);
        std::vector<int64_t> rows;
        std::vector<int64_t> chunk(eval_users.begin() + start, eval_users.begin() + end);
        for (int64_t u : chunk) rows.push_back(Row(u));
        TagBags user_bags;
        AppendBags(profiles, chunk, user_bags);
        torch::Tensor scores = model->ScoreAllItems(Int64Tensor(rows), user_bags, all_item_bags,
                                                    kMaxScoreChunkElements)
                                   .contiguous();
        const float* s = scores.data_ptr<float>();
        for (size_t q = 0; q < chunk.size(); ++q) {
          catalog_metrics.AddUser(absl::MakeConstSpan(s + q * num_items, num_items),
                                  ItemsOf(chunk[q]), relevant[chunk[q]]);
        }
      }
      model->train();
      stats.catalog_users = catalog_metrics.count();
      stats.precision = catalog_metrics.precision();
      stats.recall = catalog_metrics.recall();
    }
  }
  stats.loss = loss_count > 0 ? loss_sum / loss_count : 0.0;
  stats.num_examples = implicit ? (data.ranking.empty() ? static_cast<int64_t>(test.size())
                                                        : stats.ranking_cases)
                                : stats.rating_count;
  return stats;
}

absl::StatusOr<std::vector<float>> LocalWorkload::ScoreColdStartUser(
    absl::Span<const int32_t> history_items, absl::Span<const int32_t> own_tags,
    absl::Span<const int32_t> items) {
  Impl& w = *impl_;
  const int32_t num_items = static_cast<int32_t>(w.options.num_items);
  for (int32_t i : history_items) {
    if (i < 0 || i >= num_items) {
      return absl::InvalidArgumentError(fmt::format("history item {} is outside the catalog", i));
    }
  }
  for (int32_t i : items) {
    if (i < 0 || i >= num_items) {
      return absl::InvalidArgumentError(fmt::format("item {} is outside the catalog", i));
    }
  }
  for (int32_t t : own_tags) {
    if (t < 0 || t >= w.options.num_tags) {
      return absl::InvalidArgumentError(fmt::format("tag {} is outside the vocabulary", t));
    }
  }
  SparseRows profile;
  internal::AppendProfile(w.item_tags, history_items, own_tags, w.options.profile_max_tags,
                          w.options.own_tag_weight, profile);
  std::vector<int64_t> rows(items.size(), -1);
  std::vector<int64_t> ids(items.begin(), items.end());
  std::vector<int64_t> prof(items.size(), 0);
  try {
    return w.Score(rows, ids, prof, profile, 8192);
  } catch (const c10::Error& e) {
    return absl::InternalError(fmt::format("scoring failed: {}", e.what_without_backtrace()));
  }
}

absl::StatusOr<EvalStats> LocalWorkload::EvaluateColdStart(const SplitData& cold, int32_t k) {
  if (k < 1) return absl::InvalidArgumentError(fmt::format("k must be >= 1, got {}", k));
  if (cold.catalog.get() != impl_->data.catalog.get()) {
    return absl::InvalidArgumentError(
        "the cold users' data must share this workload's catalog (split them off the same split)");
  }
  for (int32_t u : cold.users) {
    if (impl_->LocalOf(u)) {
      return absl::InvalidArgumentError(
          fmt::format("user {} is a cold user but has an embedding in this workload", u));
    }
  }
  const int32_t num_users = cold.num_users_total();
  const UserIndex history = IndexByUser(cold.train, num_users);
  std::vector<std::vector<int32_t>> own_tags(num_users);
  for (const TagApplication& a : cold.train.tag_applications) own_tags[a.user].push_back(a.tag);
  RankingMetrics metrics(k);
  std::vector<int32_t> items;
  std::vector<int32_t> candidates;
  for (const RankingCase& c : cold.ranking) {
    items.clear();
    for (int64_t row : history.Rows(c.user)) items.push_back(cold.train.items[row]);
    candidates.assign(1, c.item);
    candidates.insert(candidates.end(), c.negatives.begin(), c.negatives.end());
    PETAL_ASSIGN_OR_RETURN(std::vector<float> scores,
                           ScoreColdStartUser(items, own_tags[c.user], candidates));
    metrics.Add(scores[0], absl::MakeConstSpan(scores).subspan(1));
  }
  EvalStats stats;
  stats.k = k;
  stats.ranking_cases = metrics.count();
  stats.num_examples = metrics.count();
  stats.hit_rate = metrics.hit_rate();
  stats.ndcg = metrics.ndcg();
  return stats;
}

absl::StatusOr<std::vector<float>> LocalWorkload::ScoreUser(int32_t user,
                                                            absl::Span<const int32_t> items) {
  Impl& w = *impl_;
  std::optional<int64_t> local = w.LocalOf(user);
  if (!local) return absl::NotFoundError(fmt::format("user {} is not in this workload", user));
  for (int32_t i : items) {
    if (i < 0 || i >= w.options.num_items) {
      return absl::InvalidArgumentError(fmt::format("item {} is outside the catalog", i));
    }
  }
  std::vector<int64_t> rows(items.size(), w.Row(*local));
  std::vector<int64_t> ids(items.begin(), items.end());
  std::vector<int64_t> prof(items.size(), *local);
  try {
    return w.Score(rows, ids, prof, w.profiles, 8192);
  } catch (const c10::Error& e) {
    return absl::InternalError(fmt::format("scoring failed: {}", e.what_without_backtrace()));
  }
}

std::string LocalWorkload::LocalStatePath(const std::string& dir) {
  return (std::filesystem::path(dir) / kStateFile).string();
}

absl::Status LocalWorkload::SaveLocalState(const std::string& dir) const {
  const Impl& w = *impl_;
  common::NamedArrays arrays;
  try {
    for (const auto& [name, p] : w.model->LocalParameters()) {
      PETAL_ASSIGN_OR_RETURN(common::NDArray a, TensorToArray(p));
      arrays.emplace_back("param/" + name, std::move(a));
    }
    if (w.optimizer) {
      const std::string kind(OptimizerKindName(w.optimizer_kind));
      for (const auto& [name, p] : w.model->LocalParameters()) {
        auto it = w.optimizer->state().find(TensorKey(p));
        if (it == w.optimizer->state().end()) continue;
        const std::string prefix = "optimizer/" + name + "/";
        auto put = [&](const std::string& key, const torch::Tensor& t) -> absl::Status {
          if (!t.defined()) return absl::OkStatus();
          PETAL_ASSIGN_OR_RETURN(common::NDArray a, TensorToArray(t));
          arrays.emplace_back(prefix + key, std::move(a));
          return absl::OkStatus();
        };
        auto put_step = [&](int64_t step) {
          arrays.emplace_back(prefix + "step",
                              *common::NDArray::FromVector<int64_t>({}, {step}));
        };
        if (w.optimizer_kind == OptimizerKind::kAdam) {
          auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
          put_step(s.step());
          PETAL_RETURN_IF_ERROR(put("exp_avg", s.exp_avg()));
          PETAL_RETURN_IF_ERROR(put("exp_avg_sq", s.exp_avg_sq()));
        } else if (w.optimizer_kind == OptimizerKind::kAdamW) {
          auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
          put_step(s.step());
          PETAL_RETURN_IF_ERROR(put("exp_avg", s.exp_avg()));
          PETAL_RETURN_IF_ERROR(put("exp_avg_sq", s.exp_avg_sq()));
        } else if (w.optimizer_kind == OptimizerKind::kAdagrad) {
          auto& s = static_cast<torch::optim::AdagradParamState&>(*it->second);
          put_step(s.step());
          PETAL_RETURN_IF_ERROR(put("sum", s.sum()));
        } else {
          auto& s = static_cast<torch::optim::SGDParamState&>(*it->second);
          PETAL_RETURN_IF_ERROR(put("momentum_buffer", s.momentum_buffer()));
        }
      }
      const std::string kind_bytes = kind;
      arrays.emplace_back("meta/optimizer",
                          *common::NDArray::FromBytes(common::DType::kUInt8,
                                                      {static_cast<int64_t>(kind_bytes.size())},
                                                      kind_bytes));
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(fmt::format("saving local state: {}", e.what_without_backtrace()));
  }
  std::vector<int64_t> users(w.data.users.begin(), w.data.users.end());
  arrays.emplace_back("meta/users",
                      *common::NDArray::FromVector<int64_t>({static_cast<int64_t>(users.size())}, users));
  const std::string fingerprint = OptionsFingerprint(w.options);
  arrays.emplace_back("meta/options",
                      *common::NDArray::FromBytes(common::DType::kUInt8,
                                                  {static_cast<int64_t>(fingerprint.size())},
                                                  fingerprint));
  std::vector<int64_t> rng_state;
  for (uint64_t s : w.rng.State()) rng_state.push_back(static_cast<int64_t>(s));
  arrays.emplace_back("meta/rng", *common::NDArray::FromVector<int64_t>({4}, rng_state));
  PETAL_RETURN_IF_ERROR(common::CreateDirectories(dir));
  return common::WriteNpz(LocalStatePath(dir), arrays);
}

absl::Status LocalWorkload::LoadLocalState(const std::string& dir) {
  Impl& w = *impl_;
  const std::string path = LocalStatePath(dir);
  PETAL_ASSIGN_OR_RETURN(common::NamedArrays arrays, common::ReadNpz(path));
  std::map<std::string, const common::NDArray*> by_name;
  for (const auto& [name, a] : arrays) by_name[name] = &a;
  auto find = [&](const std::string& name) -> absl::StatusOr<const common::NDArray*> {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(fmt::format("{}: missing '{}'", path, name));
    }
    return it->second;
  };
  // Fingerprints first: whose state is this?
  PETAL_ASSIGN_OR_RETURN(const common::NDArray* users, find("meta/users"));
  std::vector<int64_t> expected_users(w.data.users.begin(), w.data.users.end());
  if (users->dtype() != common::DType::kInt64 || users->ndim() != 1 ||
      !std::equal(users->values<int64_t>().begin(), users->values<int64_t>().end(),
                  expected_users.begin(), expected_users.end())) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: the state belongs to a different set of users (partition) than this workload's {}",
        path, expected_users.size()));
  }
  PETAL_ASSIGN_OR_RETURN(const common::NDArray* options, find("meta/options"));
  if (options->dtype() != common::DType::kUInt8 ||
      options->bytes() != OptionsFingerprint(w.options)) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: the state was saved with other model options ('{}'; this model: '{}')", path,
        options->bytes(), OptionsFingerprint(w.options)));
  }
  PETAL_ASSIGN_OR_RETURN(const common::NDArray* rng, find("meta/rng"));
  if (rng->dtype() != common::DType::kInt64 || rng->shape() != common::Shape{4}) {
    return absl::InvalidArgumentError(fmt::format("{}: 'meta/rng' must be int64 (4,)", path));
  }
  std::vector<uint64_t> rng_state;
  for (int64_t s : rng->values<int64_t>()) rng_state.push_back(static_cast<uint64_t>(s));
  if ((rng_state[0] | rng_state[1] | rng_state[2] | rng_state[3]) == 0) {
    return absl::InvalidArgumentError(fmt::format("{}: 'meta/rng' is all zeros", path));
  }
  // Parameters.
  const auto locals = w.model->LocalParameters();
  std::vector<torch::Tensor> new_params;
  for (const auto& [name, p] : locals) {
    PETAL_ASSIGN_OR_RETURN(const common::NDArray* a, find("param/" + name));
    std::vector<int64_t> shape(p.sizes().begin(), p.sizes().end());
    PETAL_RETURN_IF_ERROR(CheckFloatArray(*a, shape, fmt::format("{}: 'param/{}'", path, name)));
    new_params.push_back(ArrayToTensor(*a));
  }
  // Optimizer state (optional).
  struct Pending {
    std::string key;
    std::unique_ptr<torch::optim::OptimizerParamState> state;
  };
  std::vector<Pending> pending;
  std::optional<OptimizerKind> kind;
  if (by_name.count("meta/optimizer")) {
    const common::NDArray* k = by_name["meta/optimizer"];
    auto parsed = ParseOptimizerKind(k->dtype() == common::DType::kUInt8 ? k->bytes() : "");
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(fmt::format("{}: 'meta/optimizer': {}", path,
                                                    std::string(parsed.status().message())));
    }
    kind = *parsed;
    for (const auto& [name, p] : locals) {
      const std::string prefix = "optimizer/" + name + "/";
      std::vector<int64_t> shape(p.sizes().begin(), p.sizes().end());
      auto tensor = [&](const std::string& key) -> absl::StatusOr<torch::Tensor> {
        PETAL_ASSIGN_OR_RETURN(const common::NDArray* a, find(prefix + key));
        PETAL_RETURN_IF_ERROR(CheckFloatArray(*a, shape, fmt::format("{}: '{}{}'", path, prefix, key)));
        return ArrayToTensor(*a);
      };
      if (*kind == OptimizerKind::kSgd) {
        if (!by_name.count(prefix + "momentum_buffer")) continue;
        PETAL_ASSIGN_OR_RETURN(torch::Tensor buf, tensor("momentum_buffer"));
        auto s = std::make_unique<torch::optim::SGDParamState>();
        s->momentum_buffer(buf);
        pending.push_back({TensorKey(p), std::move(s)});
        continue;
      }
      if (!by_name.count(prefix + "step")) continue;
      PETAL_ASSIGN_OR_RETURN(const common::NDArray* step, find(prefix + "step"));
      if (step->dtype() != common::DType::kInt64 || step->size() != 1 ||
          step->values<int64_t>()[0] < 0) {
        return absl::InvalidArgumentError(
            fmt::format("{}: '{}step' must be a non-negative int64 scalar", path, prefix));
      }
      if (*kind == OptimizerKind::kAdagrad) {
        PETAL_ASSIGN_OR_RETURN(torch::Tensor sum, tensor("sum"));
        if ((sum < 0).any().item<bool>()) {
          return absl::InvalidArgumentError(
              fmt::format("{}: '{}sum' has negative entries", path, prefix));
        }
        auto s = std::make_unique<torch::optim::AdagradParamState>();
        s->step(step->values<int64_t>()[0]);
        s->sum(sum);
        pending.push_back({TensorKey(p), std::move(s)});
        continue;
      }
      PETAL_ASSIGN_OR_RETURN(torch::Tensor m, tensor("exp_avg"));
      PETAL_ASSIGN_OR_RETURN(torch::Tensor v, tensor("exp_avg_sq"));
      if ((v < 0).any().item<bool>()) {
        return absl::InvalidArgumentError(
            fmt::format("{}: '{}exp_avg_sq' has negative entries", path, prefix));
      }
      if (*kind == OptimizerKind::kAdam) {
        auto s = std::make_unique<torch::optim::AdamParamState>();
        s->step(step->values<int64_t>()[0]);
        s->exp_avg(m);
        s->exp_avg_sq(v);
        pending.push_back({TensorKey(p), std::move(s)});
      } else {
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        s->step(step->values<int64_t>()[0]);
        s->exp_avg(m);
        s->exp_avg_sq(v);
        pending.push_back({TensorKey(p), std::move(s)});
      }
    }
  }
  // Everything checked: apply.
  try {
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < locals.size(); ++k) {
      torch::Tensor p = locals[k].second;
      p.copy_(new_params[k]);
    }
    if (kind) {
      TrainConfig c = w.defaults;
      c.optimizer = *kind;
      if (!w.optimizer || w.optimizer_kind != *kind) w.MakeOptimizer(c);
      for (const auto& [name, p] : locals) w.ResetOptimizerState(p);
      for (Pending& q : pending) w.optimizer->state()[q.key] = std::move(q.state);
    }
    w.rng.SetState(rng_state);
  } catch (const c10::Error& e) {
    return absl::InternalError(fmt::format("loading local state: {}", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

common::NamedArrays LocalWorkload::AllArrays() const {
  common::NamedArrays out;
  for (const auto& item : impl_->model->named_parameters(/*recurse=*/true)) {
    out.emplace_back(item.key(), TensorToArray(item.value()).value());
  }
  return out;
}

}  // namespace petal::model
