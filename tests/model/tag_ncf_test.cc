#include "model/tag_ncf.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/internal/train_hooks.h"

namespace petal::model {
namespace {

using ::testing::ElementsAre;

TagNcfOptions SmallOptions() {
  TagNcfOptions o;
  o.num_users = 4;
  o.num_items = 6;
  o.num_tags = 5;
  o.gmf_dim = 4;
  o.mlp_embedding_dim = 3;
  o.tag_dim = 2;
  o.mlp_layers = {5, 3};
  o.init_std = 0.3;  // large enough to make every path matter
  return o;
}

TagBags MakeBags(const std::vector<std::vector<int64_t>>& tags,
                 const std::vector<std::vector<float>>& weights) {
  std::vector<int64_t> indices;
  std::vector<int64_t> offsets;
  std::vector<float> w;
  for (size_t b = 0; b < tags.size(); ++b) {
    offsets.push_back(static_cast<int64_t>(indices.size()));
    indices.insert(indices.end(), tags[b].begin(), tags[b].end());
    w.insert(w.end(), weights[b].begin(), weights[b].end());
  }
  return {torch::tensor(indices, torch::kInt64), torch::tensor(offsets, torch::kInt64),
          torch::tensor(w, torch::kFloat32)};
}

// Item tag rows for the 6 items and profiles for 4 users (+ one extra profile).
TagBags ItemRows() {
  return MakeBags({{0}, {1, 2}, {}, {3}, {0, 4}, {2}},
                  {{1.0f}, {0.5f, 0.5f}, {}, {1.0f}, {0.25f, 0.75f}, {1.0f}});
}
TagBags ProfileRows() {
  return MakeBags({{0, 1}, {2}, {3, 4}, {}, {1, 4}},
                  {{0.5f, 0.5f}, {1.0f}, {0.2f, 0.8f}, {}, {0.6f, 0.4f}});
}

// A batch where every example's item bag is the item's own row and its
// profile bag is `profiles[k]`.
TagNcfBatch MakeBatch(std::vector<int64_t> users, std::vector<int64_t> items,
                      std::vector<int64_t> profiles) {
  TagNcfBatch b;
  b.users = torch::tensor(users, torch::kInt64);
  b.items = torch::tensor(items, torch::kInt64);
  b.item_tags = ItemRows();
  b.item_bag = b.items.clone();
  b.user_tags = ProfileRows();
  b.user_bag = torch::tensor(profiles, torch::kInt64);
  return b;
}

std::vector<std::string> Names(const std::vector<std::pair<std::string, torch::Tensor>>& params) {
  std::vector<std::string> names;
  for (const auto& [n, p] : params) names.push_back(n);
  return names;
}

TEST(TagNcfTest, ParametersSplitIntoLocalAndGlobalInAFixedOrder) {
  TagNcf model(SmallOptions());
  EXPECT_THAT(Names(model->LocalParameters()),
              ElementsAre("user_gmf.weight", "user_mlp.weight", "user_bias.weight"));
  EXPECT_THAT(Names(model->GlobalParameters()),
              ElementsAre("item_gmf.weight", "item_mlp.weight", "item_bias.weight",
                          "tag_embedding.weight", "profile_proj.weight", "item_tag_proj.weight",
                          "mlp.0.weight", "mlp.0.bias", "mlp.1.weight", "mlp.1.bias",
                          "output.weight", "output.bias"));
  EXPECT_EQ(model->GlobalParameters()[6].second.sizes(), (std::vector<int64_t>{5, 3 + 3 + 2 + 2}));
  EXPECT_EQ(model->GlobalParameters()[10].second.sizes(), (std::vector<int64_t>{1, 4 + 3}));

  TagNcfOptions no_tags = SmallOptions();
  no_tags.use_tags = false;
  EXPECT_THAT(Names(TagNcf(no_tags)->GlobalParameters()),
              ElementsAre("item_gmf.weight", "item_mlp.weight", "item_bias.weight", "mlp.0.weight",
                          "mlp.0.bias", "mlp.1.weight", "mlp.1.bias", "output.weight",
                          "output.bias"));
  TagNcfOptions mf = no_tags;
  mf.gmf_only = true;
  TagNcf gmf(mf);
  EXPECT_THAT(Names(gmf->LocalParameters()), ElementsAre("user_gmf.weight", "user_bias.weight"));
  EXPECT_THAT(Names(gmf->GlobalParameters()),
              ElementsAre("item_gmf.weight", "item_bias.weight", "output.weight", "output.bias"));
}

TEST(TagNcfTest, InitializationIsDeterministicAndGlobalsDoNotDependOnUsers) {
  TagNcfOptions a = SmallOptions();
  TagNcfOptions b = SmallOptions();
  b.num_users = 40;
  TagNcf m1(a);
  TagNcf m2(b);
  m1->Initialize(5);
  m2->Initialize(5);
  const auto g1 = m1->GlobalParameters();
  const auto g2 = m2->GlobalParameters();
  for (size_t k = 0; k < g1.size(); ++k) {
    EXPECT_TRUE(torch::equal(g1[k].second, g2[k].second)) << g1[k].first;
  }
  m2->Initialize(6);
  EXPECT_FALSE(torch::equal(g1[0].second, m2->GlobalParameters()[0].second));
  // Biases start at zero, embeddings with the configured spread.
  EXPECT_EQ(m1->item_bias->weight.abs().sum().item<float>(), 0.0f);
  EXPECT_NEAR(m1->item_gmf->weight.std().item<float>(), 0.3f, 0.15f);
}

TEST(TagNcfTest, ForwardAndBackwardReachEveryParameter) {
  TagNcf model(SmallOptions());
  model->Initialize(1);
  TagNcfBatch b = MakeBatch({0, 1, 2, 3, 0, -1}, {0, 1, 2, 3, 4, 5}, {0, 1, 2, 3, 0, 4});
  TagNcfOutput out = model->forward(b, /*with_penalty=*/true);
  ASSERT_EQ(out.prediction.sizes(), (std::vector<int64_t>{6}));
  EXPECT_TRUE(torch::isfinite(out.prediction).all().item<bool>());
  torch::Tensor loss = torch::binary_cross_entropy_with_logits(
                           out.prediction, torch::tensor({1.f, 0.f, 1.f, 0.f, 1.f, 0.f})) +
                       out.penalty;
  loss.backward();
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<float>(), 0.0f) << item.key();
  }
  // The cold-start example (user -1) sends no gradient into user rows beyond those used.
  model->zero_grad();
  TagNcfBatch cold = MakeBatch({-1}, {2}, {4});
  model->forward(cold).prediction.sum().backward();
  EXPECT_EQ(model->user_gmf->weight.grad().abs().sum().item<float>(), 0.0f);
  EXPECT_GT(model->tag_embedding->weight.grad().abs().sum().item<float>(), 0.0f);
}

TEST(TagNcfTest, ColdStartUsersAreScoredThroughTheirProfile) {
  TagNcf model(SmallOptions());
  model->Initialize(2);
  torch::NoGradGuard no_grad;
  TagNcfBatch b = MakeBatch({-1, -1, -1}, {1, 1, 1}, {4, 0, 3});
  const torch::Tensor before = model->forward(b).prediction.clone();
  // The user tables do not matter for a cold user...
  model->user_gmf->weight.add_(1.0);
  model->user_mlp->weight.add_(1.0);
  model->user_bias->weight.add_(1.0);
  EXPECT_TRUE(torch::allclose(model->forward(b).prediction, before));
  // ...the profile does: different profiles, different scores.
  EXPECT_NE(before[0].item<float>(), before[1].item<float>());
  EXPECT_NE(before[0].item<float>(), before[2].item<float>());
  // A cold user equals a known user whose rows are zero.
  model->user_gmf->weight[2].zero_();
  model->user_mlp->weight[2].zero_();
  model->user_bias->weight[2].zero_();
  TagNcfBatch known = MakeBatch({2}, {1}, {4});
  EXPECT_NEAR(model->forward(known).prediction.item<float>(), before[0].item<float>(), 1e-6);
}

TEST(TagNcfTest, ItemIdDropoutScoresThroughTheItemTags) {
  TagNcf model(SmallOptions());
  model->Initialize(2);
  torch::NoGradGuard no_grad;
  TagNcfBatch b = MakeBatch({1, 1}, {0, 1}, {1, 1});
  b.items = torch::tensor({int64_t{-1}, int64_t{-1}});  // bags still point at items 0 and 1
  const torch::Tensor before = model->forward(b).prediction.clone();
  model->item_gmf->weight.add_(1.0);
  model->item_mlp->weight.add_(1.0);
  model->item_bias->weight.add_(1.0);
  EXPECT_TRUE(torch::allclose(model->forward(b).prediction, before));
  EXPECT_NE(before[0].item<float>(), before[1].item<float>());  // different tags
}

// ScoreAllItems must equal forward() pair by pair, for every variant.
void ExpectScoreAllMatchesForward(TagNcfOptions o) {
  TagNcf model(o);
  model->Initialize(3);
  torch::NoGradGuard no_grad;
  model->item_bias->weight.normal_(0, 0.5);
  model->output->bias.fill_(0.3);
  if (o.num_users > 0) model->user_bias->weight.normal_(0, 0.5);
  const std::vector<int64_t> users = {0, 3, -1, 1};
  const std::vector<int64_t> profile_of = {0, 3, 4, 1};
  TagBags profiles = MakeBags({{0, 1}, {}, {1, 4}, {2}}, {{0.5f, 0.5f}, {}, {0.6f, 0.4f}, {1.0f}});
  torch::Tensor all = model->ScoreAllItems(torch::tensor(users, torch::kInt64), profiles,
                                           ItemRows(), /*max_chunk_elements=*/40);
  ASSERT_EQ(all.sizes(), (std::vector<int64_t>{4, 6}));
  for (size_t u = 0; u < users.size(); ++u) {
    TagNcfBatch b = MakeBatch(std::vector<int64_t>(6, users[u]), {0, 1, 2, 3, 4, 5},
                              std::vector<int64_t>(6, profile_of[u]));
    torch::Tensor expected = model->forward(b).prediction;
    EXPECT_TRUE(torch::allclose(all[u], expected, 1e-5, 1e-5))
        << "user " << users[u] << "\n" << all[u] << "\n" << expected;
  }
}

TEST(TagNcfTest, ScoreAllItemsMatchesForward) {
  ExpectScoreAllMatchesForward(SmallOptions());
  TagNcfOptions no_tags = SmallOptions();
  no_tags.use_tags = false;
  ExpectScoreAllMatchesForward(no_tags);
  TagNcfOptions gmf = SmallOptions();
  gmf.gmf_only = true;
  ExpectScoreAllMatchesForward(gmf);
  TagNcfOptions rating = SmallOptions();
  rating.mode = FeedbackMode::kExplicit;
  rating.mlp_layers = {7};
  ExpectScoreAllMatchesForward(rating);
}

TEST(TagNcfTest, PenaltyIsTheMeanSquaredNormOfTheRowsUsed) {
  TagNcfOptions o = SmallOptions();
  o.use_tags = false;
  TagNcf model(o);
  model->Initialize(4);
  TagNcfBatch b = MakeBatch({1, -1}, {2, 5}, {0, 0});
  const torch::Tensor got = model->forward(b, true).penalty;
  auto sq = [](const torch::Tensor& t) { return t.square().sum().item<double>(); };
  const double expected =
      (sq(model->user_gmf->weight[1]) + sq(model->item_gmf->weight[2]) +
       sq(model->user_mlp->weight[1]) + sq(model->item_mlp->weight[2]) +
       sq(model->user_bias->weight[1]) + sq(model->item_bias->weight[2]) +
       // the cold user contributes no user rows
       sq(model->item_gmf->weight[5]) + sq(model->item_mlp->weight[5]) +
       sq(model->item_bias->weight[5])) /
      2.0;
  EXPECT_NEAR(got.item<double>(), expected, 1e-6);
}

TEST(TrainHooksTest, ProximalTermByHand) {
  std::vector<torch::Tensor> w = {torch::tensor({1.0f, 2.0f}), torch::tensor({{0.5f}})};
  std::vector<torch::Tensor> g = {torch::tensor({0.0f, 4.0f}), torch::tensor({{1.5f}})};
  for (auto& t : w) t.set_requires_grad(true);
  torch::Tensor prox = internal::ProximalTerm(w, g, 0.2);
  // 0.2 / 2 * (1 + 4 + 1) = 0.6
  EXPECT_NEAR(prox.item<float>(), 0.6f, 1e-6);
  prox.backward();
  // d/dw = mu * (w - g)
  EXPECT_TRUE(torch::allclose(w[0].grad(), torch::tensor({0.2f, -0.4f})));
  EXPECT_TRUE(torch::allclose(w[1].grad(), torch::tensor({{-0.2f}})));
}

TEST(TrainHooksTest, ClippingScalesTheWholeUpdateLikeFlower) {
  std::vector<torch::Tensor> g = {torch::tensor({1.0f, 1.0f}), torch::tensor({0.0f})};
  std::vector<torch::Tensor> w = {torch::tensor({4.0f, 1.0f}), torch::tensor({4.0f})};  // u = (3,0),(4)
  auto [norm, clipped] = internal::ClipUpdate(w, g, 1.0);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  EXPECT_TRUE(clipped);
  EXPECT_TRUE(torch::allclose(w[0], torch::tensor({1.6f, 1.0f})));
  EXPECT_TRUE(torch::allclose(w[1], torch::tensor({0.8f})));
  EXPECT_NEAR(internal::UpdateNorm(w, g), 1.0, 1e-6);
  // Within the bound: unchanged.
  std::tie(norm, clipped) = internal::ClipUpdate(w, g, 10.0);
  EXPECT_FALSE(clipped);
  EXPECT_TRUE(torch::allclose(w[1], torch::tensor({0.8f})));
  // A zero update stays zero (Flower's Python would divide by zero).
  std::vector<torch::Tensor> same = {g[0].clone(), g[1].clone()};
  std::tie(norm, clipped) = internal::ClipUpdate(same, g, 1.0);
  EXPECT_EQ(norm, 0.0);
  EXPECT_FALSE(clipped);
  EXPECT_TRUE(torch::equal(same[0], g[0]));
  // C = 0 means off.
  std::tie(norm, clipped) = internal::ClipUpdate(w, g, 0.0);
  EXPECT_FALSE(clipped);
}

}  // namespace
}  // namespace petal::model
