// File: tag_ncf.h
//
// TagNcf: tag-aware neural collaborative filtering in LibTorch. This header
// includes <torch/torch.h> (and the glog macros it leaks): only src/model's
// own sources and its tests include it. Everything else uses LocalWorkload.
//
//   TagNcf model(options);                      // counts + sizes, see TagNcfOptions
//   model->Initialize(/*seed=*/7);
//   TagNcfOutput out = model->forward(batch);   // logits (implicit) or ratings (explicit)
//
// Architecture (for user u, item i, the item's tag row t_i and the user's tag
// profile p_u, both weight vectors over the tag vocabulary summing to 1):
//   tag embeddings     e(t_i) = sum_t t_i[t] E[t],  e(p_u) likewise
//   GMF                g = (P_u + A e(p_u)) * (Q_i + B e(t_i))          (elementwise)
//   MLP                m = MLP([P'_u, Q'_i, e(t_i), e(p_u)])            (ReLU tower)
//   output             y = w . [g, m] + c + b_u + b_i
// The no-tags variant drops E, A, B and the tag inputs; GMF-only drops the
// MLP. A cold-start user (row -1: no embedding) has P_u = P'_u = 0 and b_u = 0,
// so they are scored through their tag profile alone.
//
// Parameter groups: names starting with "user_" (user embeddings and biases)
// are LOCAL and never leave a client; all the others are GLOBAL. Order is
// named_parameters() order, fixed by the constructor.
// Not thread-safe (a torch module); one thread at a time.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "model/options.h"

namespace petal::model {

// Weighted bags of tags in EmbeddingBag form: bag k is
// indices[offsets[k] : offsets[k+1]] with the matching weights.
struct TagBags {
  torch::Tensor indices;  // [n] int64 tag ids
  torch::Tensor offsets;  // [bags] int64 start of each bag
  torch::Tensor weights;  // [n] float32
};

// The inputs of one batch of B (user, item) pairs. Tag rows are given as bags
// for the DISTINCT items / users of the batch, and each example points at its
// bag. All tensors live on the CPU.
struct TagNcfBatch {
  torch::Tensor users;  // [B] int64 local user rows, -1 = cold start (no user embedding)
  // [B] int64 catalog items; -1 = use no item embedding/bias (training-time ID
  // dropout: the example is then scored from its item tags, item_bag still
  // points at the real item's tags)
  torch::Tensor items;
  // Used only when options.use_tags.
  TagBags item_tags;
  torch::Tensor item_bag;  // [B] int64 bag of each example
  TagBags user_tags;
  torch::Tensor user_bag;  // [B]
};

struct TagNcfOutput {
  torch::Tensor prediction;  // [B] logits (implicit) or ratings (explicit)
  // Mean over the batch of the squared L2 norms of the embedding rows and
  // biases each example used (the per-rating regularizer of MF); undefined
  // unless requested.
  torch::Tensor penalty;
};

class TagNcfImpl : public torch::nn::Module {
 public:
  explicit TagNcfImpl(const TagNcfOptions& options);

  // Deterministic initialization from `seed` (no global RNG): embeddings
  // N(0, init_std), linear weights Glorot-uniform, biases 0.
  void Initialize(uint64_t seed);

  TagNcfOutput forward(const TagNcfBatch& batch, bool with_penalty = false);

  // Scores every catalog item for each user: [U, num_items], without autograd.
  // `users` are local rows (or -1), `user_tags` one bag per user (in order),
  // `item_tags` one bag per catalog item. The same values as forward() up to
  // float rounding, but the item-side work is shared across users (the first
  // MLP layer is split into user and item parts). Intermediate tensors stay
  // below about `max_chunk_elements` floats.
  torch::Tensor ScoreAllItems(const torch::Tensor& users, const TagBags& user_tags,
                              const TagBags& item_tags, int64_t max_chunk_elements);

  const TagNcfOptions& options() const { return options_; }

  // True for the names of LOCAL parameters ("user_*").
  static bool IsLocalName(const std::string& name);
  std::vector<std::pair<std::string, torch::Tensor>> GlobalParameters() const;
  std::vector<std::pair<std::string, torch::Tensor>> LocalParameters() const;

  // Modules, registered under their member names (without the trailing _).
  torch::nn::Embedding user_gmf{nullptr}, user_mlp{nullptr}, user_bias{nullptr};
  torch::nn::Embedding item_gmf{nullptr}, item_mlp{nullptr}, item_bias{nullptr};
  torch::nn::Embedding tag_embedding{nullptr};
  torch::nn::Linear profile_proj{nullptr}, item_tag_proj{nullptr};
  torch::nn::ModuleList mlp{nullptr};
  torch::nn::Linear output{nullptr};

 private:
  // [B, dim] rows of `table` for `ids`, zero where known == 0 (id -1); undefined
  // when the table does not exist (no users).
  torch::Tensor Rows(const torch::nn::Embedding& table, const torch::Tensor& ids,
                     const torch::Tensor& known) const;
  torch::Tensor Bags(const TagBags& bags) const;

  TagNcfOptions options_;
};
TORCH_MODULE(TagNcf);

}  // namespace petal::model
