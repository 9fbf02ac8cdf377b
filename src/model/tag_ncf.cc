#include "model/tag_ncf.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "model/internal/random.h"

namespace petal::model {
namespace {

uint64_t NameHash(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

TagNcfImpl::TagNcfImpl(const TagNcfOptions& options) : options_(options) {
  const auto& o = options_;
  // LOCAL first: user tables (registered only when there are users).
  if (o.num_users > 0) {
    user_gmf = register_module("user_gmf", torch::nn::Embedding(o.num_users, o.gmf_dim));
    if (!o.gmf_only) {
      user_mlp = register_module("user_mlp", torch::nn::Embedding(o.num_users, o.mlp_embedding_dim));
    }
    if (o.use_biases) user_bias = register_module("user_bias", torch::nn::Embedding(o.num_users, 1));
  }
  // GLOBAL.
  item_gmf = register_module("item_gmf", torch::nn::Embedding(o.num_items, o.gmf_dim));
  if (!o.gmf_only) {
    item_mlp = register_module("item_mlp", torch::nn::Embedding(o.num_items, o.mlp_embedding_dim));
  }
  if (o.use_biases) item_bias = register_module("item_bias", torch::nn::Embedding(o.num_items, 1));
  if (o.use_tags) {
    // At least one row so that a catalog without tags still builds.
    tag_embedding = register_module(
        "tag_embedding", torch::nn::Embedding(std::max<int64_t>(o.num_tags, 1), o.tag_dim));
    profile_proj = register_module(
        "profile_proj", torch::nn::Linear(torch::nn::LinearOptions(o.tag_dim, o.gmf_dim).bias(false)));
    item_tag_proj = register_module(
        "item_tag_proj", torch::nn::Linear(torch::nn::LinearOptions(o.tag_dim, o.gmf_dim).bias(false)));
  }
  int64_t features = o.gmf_dim;
  if (!o.gmf_only) {
    mlp = register_module("mlp", torch::nn::ModuleList());
    int64_t in = 2 * o.mlp_embedding_dim + (o.use_tags ? 2 * o.tag_dim : 0);
    for (int64_t h : o.mlp_layers) {
      mlp->push_back(torch::nn::Linear(in, h));
      in = h;
    }
    features += in;
  }
  output = register_module("output", torch::nn::Linear(features, 1));
  Initialize(0);
}

void TagNcfImpl::Initialize(uint64_t seed) {
  torch::NoGradGuard no_grad;
  for (auto& item : named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    at::Generator gen = at::detail::createCPUGenerator(internal::DeriveSeed(seed, NameHash(name)));
    const bool is_bias_table = name == "user_bias.weight" || name == "item_bias.weight";
    if (is_bias_table || (p.dim() == 1)) {
      p.zero_();
    } else if (name.rfind("user_", 0) == 0 || name.rfind("item_gmf", 0) == 0 ||
               name.rfind("item_mlp", 0) == 0 || name.rfind("tag_embedding", 0) == 0) {
      p.normal_(0.0, options_.init_std, gen);
    } else {
      // Linear weight [out, in]: Glorot uniform.
      const double bound = std::sqrt(6.0 / static_cast<double>(p.size(0) + p.size(1)));
      p.uniform_(-bound, bound, gen);
    }
  }
}

torch::Tensor TagNcfImpl::Rows(const torch::nn::Embedding& table, const torch::Tensor& ids,
                               const torch::Tensor& known) const {
  if (table.is_empty()) return torch::Tensor();
  return torch::embedding(table->weight, ids.clamp_min(0)) * known.unsqueeze(1);
}

torch::Tensor TagNcfImpl::Bags(const TagBags& bags) const {
  return std::get<0>(torch::embedding_bag(tag_embedding->weight, bags.indices, bags.offsets,
                                          /*scale_grad_by_freq=*/false, /*mode=*/0,
                                          /*sparse=*/false, bags.weights,
                                          /*include_last_offset=*/false));
}

TagNcfOutput TagNcfImpl::forward(const TagNcfBatch& b, bool with_penalty) {
  const auto& o = options_;
  const int64_t batch = b.items.size(0);
  const torch::Tensor known = b.users.ge(0).to(torch::kFloat32);
  const torch::Tensor item_known = b.items.ge(0).to(torch::kFloat32);
  auto user_rows = [&](const torch::nn::Embedding& table, int64_t dim) {
    torch::Tensor rows = Rows(table, b.users, known);
    return rows.defined() ? rows : torch::zeros({batch, dim});
  };
  torch::Tensor item_t;
  torch::Tensor user_t;
  if (o.use_tags) {
    item_t = Bags(b.item_tags).index_select(0, b.item_bag);
    user_t = Bags(b.user_tags).index_select(0, b.user_bag);
  }
  const torch::Tensor p_gmf = user_rows(user_gmf, o.gmf_dim);
  const torch::Tensor q_gmf = Rows(item_gmf, b.items, item_known);
  torch::Tensor penalty;
  if (with_penalty) penalty = p_gmf.square().sum(1) + q_gmf.square().sum(1);
  torch::Tensor pu = p_gmf;
  torch::Tensor qi = q_gmf;
  if (o.use_tags) {
    pu = pu + profile_proj->forward(user_t);
    qi = qi + item_tag_proj->forward(item_t);
  }
  torch::Tensor features = pu * qi;
  if (!o.gmf_only) {
    const torch::Tensor p_mlp = user_rows(user_mlp, o.mlp_embedding_dim);
    const torch::Tensor q_mlp = Rows(item_mlp, b.items, item_known);
    if (with_penalty) penalty = penalty + p_mlp.square().sum(1) + q_mlp.square().sum(1);
    std::vector<torch::Tensor> parts = {p_mlp, q_mlp};
    if (o.use_tags) {
      parts.push_back(item_t);
      parts.push_back(user_t);
    }
    torch::Tensor h = torch::cat(parts, 1);
    for (const auto& layer : *mlp) h = torch::relu(layer->as<torch::nn::Linear>()->forward(h));
    features = torch::cat({features, h}, 1);
  }
  torch::Tensor y = output->forward(features).squeeze(1);
  if (o.use_biases) {
    const torch::Tensor bi = Rows(item_bias, b.items, item_known).squeeze(1);
    y = y + bi;
    if (with_penalty) penalty = penalty + bi.square();
    torch::Tensor bu = Rows(user_bias, b.users, known);
    if (bu.defined()) {
      bu = bu.squeeze(1);
      y = y + bu;
      if (with_penalty) penalty = penalty + bu.square();
    }
  }
  TagNcfOutput out;
  out.prediction = y;
  if (with_penalty) out.penalty = penalty.mean();
  return out;
}

torch::Tensor TagNcfImpl::ScoreAllItems(const torch::Tensor& users, const TagBags& user_tags,
                                        const TagBags& item_tags, int64_t max_chunk_elements) {
  torch::NoGradGuard no_grad;
  const auto& o = options_;
  const int64_t num_users = users.size(0);
  const int64_t num_items = o.num_items;
  const torch::Tensor known = users.ge(0).to(torch::kFloat32);
  auto user_rows = [&](const torch::nn::Embedding& table, int64_t dim) {
    torch::Tensor rows = Rows(table, users, known);
    return rows.defined() ? rows : torch::zeros({num_users, dim});
  };
  torch::Tensor item_t;
  torch::Tensor user_t;
  if (o.use_tags) {
    item_t = Bags(item_tags);
    user_t = Bags(user_tags);
  }
  torch::Tensor pu = user_rows(user_gmf, o.gmf_dim);
  torch::Tensor qi = item_gmf->weight;
  if (o.use_tags) {
    pu = pu + profile_proj->forward(user_t);
    qi = qi + item_tag_proj->forward(item_t);
  }
  const torch::Tensor w = output->weight.squeeze(0);  // [features]
  const torch::Tensor w_gmf = w.slice(0, 0, o.gmf_dim);
  // w . (p * q) = (p * w) . q
  torch::Tensor scores = torch::mm(pu * w_gmf, qi.t());  // [U, I]
  if (!o.gmf_only) {
    const auto first = (*mlp)[0]->as<torch::nn::Linear>();
    const torch::Tensor w1 = first->weight;  // [h1, in]
    const int64_t dm = o.mlp_embedding_dim;
    const int64_t dt = o.tag_dim;
    torch::Tensor user_part = torch::mm(user_rows(user_mlp, dm), w1.slice(1, 0, dm).t());
    torch::Tensor item_part = torch::mm(item_mlp->weight, w1.slice(1, dm, 2 * dm).t()) + first->bias;
    if (o.use_tags) {
      item_part = item_part + torch::mm(item_t, w1.slice(1, 2 * dm, 2 * dm + dt).t());
      user_part = user_part + torch::mm(user_t, w1.slice(1, 2 * dm + dt, 2 * dm + 2 * dt).t());
    }
    const torch::Tensor w_mlp = w.slice(0, o.gmf_dim);
    const int64_t h1 = w1.size(0);
    const int64_t widest = *std::max_element(o.mlp_layers.begin(), o.mlp_layers.end());
    const int64_t chunk =
        std::max<int64_t>(1, max_chunk_elements / std::max<int64_t>(1, num_items * std::max(h1, widest)));
    for (int64_t start = 0; start < num_users; start += chunk) {
      const int64_t end = std::min(num_users, start + chunk);
      torch::Tensor h =
          torch::relu(user_part.slice(0, start, end).unsqueeze(1) + item_part.unsqueeze(0))
              .reshape({-1, h1});
      for (size_t l = 1; l < mlp->size(); ++l) {
        h = torch::relu((*mlp)[l]->as<torch::nn::Linear>()->forward(h));
      }
      scores.slice(0, start, end) += torch::mv(h, w_mlp).view({end - start, num_items});
    }
  }
  scores = scores + output->bias;
  if (o.use_biases) {
    scores = scores + item_bias->weight.squeeze(1).unsqueeze(0);
    torch::Tensor bu = Rows(user_bias, users, known);
    if (bu.defined()) scores = scores + bu;  // [U, 1] broadcast
  }
  return scores;
}

bool TagNcfImpl::IsLocalName(const std::string& name) { return name.rfind("user_", 0) == 0; }

std::vector<std::pair<std::string, torch::Tensor>> TagNcfImpl::GlobalParameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    if (!IsLocalName(item.key())) out.emplace_back(item.key(), item.value());
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> TagNcfImpl::LocalParameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    if (IsLocalName(item.key())) out.emplace_back(item.key(), item.value());
  }
  return out;
}

}  // namespace petal::model
