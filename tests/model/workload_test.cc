#include "model/workload.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "common/file_util.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace petal::model {
namespace {

using ::petal::model::testing::TempDir;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

struct Fixture {
  Dataset dataset;
  SplitData split;
};

const Fixture& SmallWorld() {
  static const Fixture* fixture = [] {
    SyntheticOptions o;
    o.num_users = 300;
    o.num_items = 250;
    o.mean_interactions = 30;
    o.tag_rate = 0.1;
    auto* f = new Fixture;
    f->dataset = GenerateSynthetic(o).value();
    f->split = LeaveOneOut(f->dataset, 99, 1).value();
    return f;
  }();
  return *fixture;
}

TagNcfOptions SmallModel() {
  TagNcfOptions o;
  o.gmf_dim = 8;
  o.mlp_embedding_dim = 8;
  o.tag_dim = 8;
  o.mlp_layers = {16, 8};
  return o;
}

std::unique_ptr<LocalWorkload> Make(const SplitData& data, TagNcfOptions options = SmallModel(),
                                    uint64_t seed = 1) {
  auto w = LocalWorkload::Create(data, options, TrainConfig(), seed, 1);
  EXPECT_TRUE(w.ok()) << w.status();
  return std::move(w).value();
}

common::NDArrays Copy(const common::NDArrays& views) { return common::NDArrays(views); }

double Distance(const common::NDArrays& a, const common::NDArrays& b) {
  double s = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    auto x = a[k].values<float>();
    auto y = b[k].values<float>();
    for (size_t i = 0; i < x.size(); ++i) s += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
  }
  return std::sqrt(s);
}

TEST(LocalWorkloadTest, GlobalArraysMatchNamesShapesAndAreViews) {
  auto w = Make(SmallWorld().split);
  const auto names = w->GlobalParameterNames();
  const auto shapes = w->GlobalParameterShapes();
  common::NDArrays views = w->GlobalArrays();
  ASSERT_EQ(names.size(), views.size());
  ASSERT_EQ(shapes.size(), views.size());
  EXPECT_EQ(names.front(), "item_gmf.weight");
  for (const auto& n : names) EXPECT_NE(n.rfind("user_", 0), 0u) << n << " is local";
  for (size_t k = 0; k < views.size(); ++k) {
    EXPECT_EQ(views[k].dtype(), common::DType::kFloat32);
    EXPECT_EQ(views[k].shape(), shapes[k]);
  }
  EXPECT_EQ(shapes[0], (common::Shape{250, 8}));
  // Zero-copy: the views follow the model; a copy does not.
  common::NDArrays snapshot = Copy(views);
  common::NDArrays changed = Copy(views);
  changed[0].mutable_values<float>()[0] += 1.0f;
  PETAL_ASSERT_OK(w->SetGlobalArrays(changed));
  EXPECT_EQ(views[0].values<float>()[0], changed[0].values<float>()[0]);
  EXPECT_NE(snapshot[0].values<float>()[0], views[0].values<float>()[0]);
  EXPECT_EQ(w->GlobalArrays()[0].data(), views[0].data());
  // Round trip.
  PETAL_ASSERT_OK(w->SetGlobalArrays(snapshot));
  EXPECT_EQ(Copy(w->GlobalArrays()), snapshot);
}

TEST(LocalWorkloadTest, EveryClientStartsFromTheSameGlobalModel) {
  const SplitData& pooled = SmallWorld().split;
  auto a = Make(RestrictToUsers(pooled, std::vector<int32_t>{1, 2, 3}).value());
  auto b = Make(RestrictToUsers(pooled, std::vector<int32_t>{10, 20, 30, 40, 50}).value());
  EXPECT_EQ(Copy(a->GlobalArrays()), Copy(b->GlobalArrays()));
  EXPECT_EQ(a->options().num_users, 3);
  EXPECT_EQ(b->options().num_users, 5);
}

TEST(LocalWorkloadTest, SetGlobalArraysRejectsBadInputWithoutChangingTheModel) {
  auto w = Make(SmallWorld().split);
  PETAL_ASSERT_OK(w->Train(TrainConfig{.epochs = 1}).status());
  const common::NDArrays before = Copy(w->GlobalArrays());
  const std::vector<int32_t> probe = {0, 1, 2, 3, 4};
  PETAL_ASSERT_OK_AND_ASSIGN(std::vector<float> scores_before, w->ScoreUser(5, probe));

  common::NDArrays good = Copy(before);
  for (auto& a : good) {
    for (float& v : a.mutable_values<float>()) v += 0.5f;
  }
  // Too few arrays.
  ASSERT_EQ(good.size(), 12u);
  common::NDArrays fewer(good.begin(), good.end() - 1);
  EXPECT_THAT(w->SetGlobalArrays(fewer),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 12 global arrays (item_gmf.weight, item_mlp.weight")));
  // Wrong dtype in the last array (the earlier ones are valid and must not be applied).
  common::NDArrays dtype = Copy(good);
  std::vector<double> doubles(dtype.back().size(), 0.0);
  dtype.back() = *common::NDArray::FromVector<double>(dtype.back().shape(), doubles);
  EXPECT_THAT(w->SetGlobalArrays(dtype),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("global array 11 ('output.bias'): dtype float64 (expected float32)")));
  // Wrong shape.
  common::NDArrays shape = Copy(good);
  shape[2] = *common::NDArray::Zeros(common::DType::kFloat32, {249, 1});
  EXPECT_THAT(w->SetGlobalArrays(shape),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("global array 2 ('item_bias.weight'): shape (249, 1) (expected (250, 1))")));
  // NaN and Inf.
  common::NDArrays nan = Copy(good);
  nan[5].mutable_values<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(w->SetGlobalArrays(nan),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("global array 5 ('item_tag_proj.weight'): non-finite value nan at flat index 3")));
  common::NDArrays inf = Copy(good);
  inf[10].mutable_values<float>()[0] = -std::numeric_limits<float>::infinity();
  EXPECT_THAT(w->SetGlobalArrays(inf),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-finite value -inf")));
  // Nothing changed.
  EXPECT_EQ(Copy(w->GlobalArrays()), before);
  PETAL_ASSERT_OK_AND_ASSIGN(std::vector<float> scores_after, w->ScoreUser(5, probe));
  EXPECT_EQ(scores_before, scores_after);
  // The good arrays are accepted.
  PETAL_ASSERT_OK(w->SetGlobalArrays(good));
  EXPECT_EQ(Copy(w->GlobalArrays()), good);
}

TEST(LocalWorkloadTest, TrainingBeatsRandomRankingClearly) {
  auto w = Make(SmallWorld().split);
  PETAL_ASSERT_OK_AND_ASSIGN(EvalStats untrained, w->Evaluate(EvalConfig{}));
  TrainConfig c;
  c.epochs = 4;
  c.lr = 0.005;
  PETAL_ASSERT_OK_AND_ASSIGN(TrainStats t, w->Train(c));
  EXPECT_EQ(t.num_examples, static_cast<int64_t>(SmallWorld().split.train.size()));
  EXPECT_EQ(t.num_samples, 4 * 5 * t.num_examples);
  ASSERT_EQ(t.epoch_losses.size(), 4u);
  EXPECT_LT(t.epoch_losses.back(), t.epoch_losses.front());
  EXPECT_GT(t.samples_per_second, 0.0);
  EXPECT_GT(t.update_norm, 0.0);
  EXPECT_FALSE(t.clipped);
  PETAL_ASSERT_OK_AND_ASSIGN(EvalStats e, w->Evaluate(EvalConfig{}));
  EXPECT_EQ(e.ranking_cases, 300);
  EXPECT_EQ(e.num_examples, 300);
  EXPECT_EQ(e.catalog_users, 300);
  // Random ranking of 1 positive among 100 gives HR@10 = 0.10.
  EXPECT_GT(e.hit_rate, 0.30) << "untrained " << untrained.hit_rate;
  EXPECT_GT(e.ndcg, 0.15);
  EXPECT_GT(e.hit_rate, untrained.hit_rate + 0.1);
  EXPECT_LT(e.loss, untrained.loss);
  // Full catalog: one relevant item per user, so recall@10 = hits / 1 and precision = recall / 10.
  EXPECT_NEAR(e.precision, e.recall / 10.0, 1e-12);
  EXPECT_GT(e.recall, 0.05);
}

TEST(LocalWorkloadTest, ExplicitModeBeatsTheGlobalMean) {
  const Dataset& ds = SmallWorld().dataset;
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData split, KFold(ds, 5, 0, 1));
  TagNcfOptions o = SmallModel();
  o.mode = FeedbackMode::kExplicit;
  auto w = Make(split, o);
  double mean = 0;
  for (float r : split.train.ratings) mean += r;
  mean /= split.train.size();
  double mean_sq = 0;
  for (float r : split.test.ratings) mean_sq += (r - mean) * (r - mean);
  const double mean_rmse = std::sqrt(mean_sq / split.test.size());
  TrainConfig c;
  c.epochs = 8;
  c.lr = 0.003;
  c.embedding_reg = 0.01;
  PETAL_ASSERT_OK(w->Train(c).status());
  PETAL_ASSERT_OK_AND_ASSIGN(EvalStats e, w->Evaluate(EvalConfig{.full_catalog = false}));
  EXPECT_EQ(e.rating_count, static_cast<int64_t>(split.test.size()));
  EXPECT_EQ(e.ranking_cases, 0);
  EXPECT_LT(e.rmse, mean_rmse - 0.05) << "global mean RMSE " << mean_rmse;
  EXPECT_LE(e.mae, e.rmse);
  EXPECT_NEAR(e.loss, e.rmse * e.rmse, 1e-9);
}

TEST(LocalWorkloadTest, ColdStartUsersAreRankedThroughTheirHistory) {
  // Every test user scored as if new (no user embedding), from the profile of
  // their training history, against the same user with no history at all.
  const SplitData& pooled = SmallWorld().split;
  auto w = Make(pooled);
  TrainConfig c;
  c.epochs = 3;
  c.lr = 0.005;
  c.user_dropout = 0.3;
  PETAL_ASSERT_OK(w->Train(c).status());
  std::vector<std::vector<int32_t>> history(pooled.num_users_total());
  for (size_t r = 0; r < pooled.train.size(); ++r) {
    history[pooled.train.users[r]].push_back(pooled.train.items[r]);
  }
  auto hit_rate = [&](bool with_history) {
    double hits = 0;
    for (const RankingCase& rc : pooled.ranking) {
      std::vector<int32_t> candidates = {rc.item};
      candidates.insert(candidates.end(), rc.negatives.begin(), rc.negatives.end());
      auto scores =
          w->ScoreColdStartUser(with_history ? history[rc.user] : std::vector<int32_t>{}, {},
                                candidates)
              .value();
      int rank = 0;
      for (size_t k = 1; k < scores.size(); ++k) rank += scores[k] >= scores[0];
      hits += rank < 10;
    }
    return hits / pooled.ranking.size();
  };
  const double personal = hit_rate(true);
  const double anonymous = hit_rate(false);
  EXPECT_GT(personal, 0.2);
  EXPECT_GT(personal, anonymous + 0.02) << "anonymous " << anonymous;
}

TEST(LocalWorkloadTest, EvaluateColdStartRanksHeldOutUsersFromTheirHistory) {
  // 20 % of the users never train; they are ranked through the tag profile of
  // their history. With tags that beats the no-tags model, which can only
  // rank every cold user the same way (item biases and the MLP on zero user
  // vectors).
  PETAL_ASSERT_OK_AND_ASSIGN(ColdStartSplit parts, SplitOffColdUsers(SmallWorld().split, 0.2, 1));
  TrainConfig c;
  c.epochs = 3;
  c.lr = 0.005;
  c.user_dropout = 0.3;
  auto tagged = Make(parts.warm);
  PETAL_ASSERT_OK(tagged->Train(c).status());
  PETAL_ASSERT_OK_AND_ASSIGN(EvalStats e, tagged->EvaluateColdStart(parts.cold, 10));
  EXPECT_EQ(e.k, 10);
  EXPECT_EQ(e.ranking_cases, static_cast<int64_t>(parts.cold.ranking.size()));
  EXPECT_EQ(e.ranking_cases, 60);

  // The same figure recomputed case by case through the public scoring call
  // (cold-start profiles do not depend on the order of the history).
  std::vector<std::vector<int32_t>> history(parts.cold.num_users_total());
  std::vector<std::vector<int32_t>> own_tags(parts.cold.num_users_total());
  const Interactions& cold_train = parts.cold.train;
  for (size_t r = 0; r < cold_train.size(); ++r) history[cold_train.users[r]].push_back(cold_train.items[r]);
  for (const TagApplication& a : parts.cold.train.tag_applications) own_tags[a.user].push_back(a.tag);
  double hits = 0;
  double ndcg = 0;
  for (const RankingCase& rc : parts.cold.ranking) {
    EXPECT_FALSE(history[rc.user].empty());
    std::vector<int32_t> candidates = {rc.item};
    candidates.insert(candidates.end(), rc.negatives.begin(), rc.negatives.end());
    PETAL_ASSERT_OK_AND_ASSIGN(auto scores,
                               tagged->ScoreColdStartUser(history[rc.user], own_tags[rc.user], candidates));
    int rank = 0;
    for (size_t k = 1; k < scores.size(); ++k) rank += scores[k] >= scores[0];
    hits += rank < 10;
    ndcg += rank < 10 ? 1.0 / std::log2(rank + 2.0) : 0.0;
  }
  EXPECT_NEAR(e.hit_rate, hits / e.ranking_cases, 1e-12);
  EXPECT_NEAR(e.ndcg, ndcg / e.ranking_cases, 1e-12);

  TagNcfOptions no_tags = SmallModel();
  no_tags.use_tags = false;
  auto plain = Make(parts.warm, no_tags);
  PETAL_ASSERT_OK(plain->Train(c).status());
  PETAL_ASSERT_OK_AND_ASSIGN(EvalStats p, plain->EvaluateColdStart(parts.cold, 10));
  EXPECT_GT(e.hit_rate, p.hit_rate + 0.05) << "no tags " << p.hit_rate;
  EXPECT_GT(e.hit_rate, 0.2);

  // Wrong inputs: warm users as "cold", another split's catalog, a bad k.
  EXPECT_THAT(tagged->EvaluateColdStart(parts.warm, 10),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has an embedding")));
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData other, LeaveOneOut(SmallWorld().dataset, 99, 2));
  PETAL_ASSERT_OK_AND_ASSIGN(ColdStartSplit other_parts, SplitOffColdUsers(other, 0.2, 1));
  EXPECT_THAT(tagged->EvaluateColdStart(other_parts.cold, 10),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("catalog")));
  EXPECT_THAT(tagged->EvaluateColdStart(parts.cold, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("k must be")));
}

TEST(LocalWorkloadTest, ProximalTermKeepsWeightsNearTheGlobalModel) {
  const SplitData& split = SmallWorld().split;
  TrainConfig c;
  c.epochs = 1;
  c.lr = 0.01;
  auto free_run = Make(split);
  auto prox_run = Make(split);
  const common::NDArrays start = Copy(free_run->GlobalArrays());
  PETAL_ASSERT_OK(free_run->SetGlobalArrays(start));
  PETAL_ASSERT_OK(prox_run->SetGlobalArrays(start));
  PETAL_ASSERT_OK_AND_ASSIGN(TrainStats a, free_run->Train(c));
  c.proximal_mu = 50.0;
  PETAL_ASSERT_OK_AND_ASSIGN(TrainStats b, prox_run->Train(c));
  EXPECT_LT(b.update_norm, 0.5 * a.update_norm);
  EXPECT_NEAR(b.update_norm, Distance(Copy(prox_run->GlobalArrays()), start), 1e-3);
}

TEST(LocalWorkloadTest, ClippingBoundsTheUpdateNorm) {
  const SplitData& split = SmallWorld().split;
  auto w = Make(split);
  const common::NDArrays start = Copy(w->GlobalArrays());
  PETAL_ASSERT_OK(w->SetGlobalArrays(start));
  TrainConfig c;
  c.epochs = 1;
  c.clipping_norm = 0.05;
  PETAL_ASSERT_OK_AND_ASSIGN(TrainStats t, w->Train(c));
  ASSERT_GT(t.update_norm, 0.05);
  EXPECT_TRUE(t.clipped);
  EXPECT_NEAR(Distance(Copy(w->GlobalArrays()), start), 0.05, 1e-4);
  // A generous bound changes nothing.
  auto v = Make(split);
  PETAL_ASSERT_OK(v->SetGlobalArrays(start));
  c.clipping_norm = 1e6;
  PETAL_ASSERT_OK_AND_ASSIGN(TrainStats u, v->Train(c));
  EXPECT_FALSE(u.clipped);
  EXPECT_NEAR(Distance(Copy(v->GlobalArrays()), start), u.update_norm, 1e-3);
}

TEST(LocalWorkloadTest, TrainingIsDeterministicFromTheSeed) {
  const SplitData& split = SmallWorld().split;
  auto a = Make(split);
  auto b = Make(split);
  PETAL_ASSERT_OK_AND_ASSIGN(TrainStats ta, a->Train(TrainConfig{.epochs = 1}));
  PETAL_ASSERT_OK_AND_ASSIGN(TrainStats tb, b->Train(TrainConfig{.epochs = 1}));
  EXPECT_EQ(ta.loss, tb.loss);
  EXPECT_EQ(Copy(a->GlobalArrays()), Copy(b->GlobalArrays()));
}

TEST(LocalWorkloadTest, InvalidConfigsAndDivergenceAreErrors) {
  auto w = Make(SmallWorld().split);
  EXPECT_THAT(w->Train(TrainConfig{.batch_size = 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("batch_size")));
  EXPECT_THAT(w->Evaluate(EvalConfig{.k = 0}), StatusIs(absl::StatusCode::kInvalidArgument));
  const common::NDArrays before = Copy(w->GlobalArrays());
  TrainConfig wild;
  wild.optimizer = OptimizerKind::kSgd;
  wild.lr = 1e30;
  EXPECT_THAT(w->Train(wild), StatusIs(absl::StatusCode::kInternal, HasSubstr("restored")));
  EXPECT_EQ(Copy(w->GlobalArrays()), before);
  // Still usable afterwards.
  PETAL_EXPECT_OK(w->Train(TrainConfig{.epochs = 1}).status());
}

TEST(LocalWorkloadTest, CreateRejectsInconsistentData) {
  SplitData bad = SmallWorld().split;
  bad.train.items[0] = 9999;
  EXPECT_THAT(LocalWorkload::Create(bad, SmallModel(), TrainConfig(), 1, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside the catalog")));
  SplitData other = RestrictToUsers(SmallWorld().split, std::vector<int32_t>{1, 2}).value();
  other.users = {1};
  EXPECT_THAT(LocalWorkload::Create(other, SmallModel(), TrainConfig(), 1, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("user 2 is not one of")));
  TagNcfOptions zero = SmallModel();
  zero.gmf_dim = 0;
  EXPECT_THAT(LocalWorkload::Create(SmallWorld().split, zero, TrainConfig(), 1, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("gmf_dim")));
  EXPECT_THAT(LocalWorkload::Create(SmallWorld().split, SmallModel(), TrainConfig(), 1, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("threads")));
}

TEST(LocalWorkloadTest, ColdStartScoringUsesTheHistory) {
  auto w = Make(SmallWorld().split);
  PETAL_ASSERT_OK(w->Train(TrainConfig{.epochs = 1}).status());
  const std::vector<int32_t> items = {0, 1, 2, 3};
  PETAL_ASSERT_OK_AND_ASSIGN(auto empty, w->ScoreColdStartUser({}, {}, items));
  PETAL_ASSERT_OK_AND_ASSIGN(auto fan, w->ScoreColdStartUser(std::vector<int32_t>{5, 6, 7}, {}, items));
  const int32_t tag = SmallWorld().split.catalog->num_genres;  // the first free tag
  PETAL_ASSERT_OK_AND_ASSIGN(auto tagger,
                             w->ScoreColdStartUser(std::vector<int32_t>{5, 6, 7}, std::vector<int32_t>{tag}, items));
  ASSERT_EQ(empty.size(), 4u);
  EXPECT_NE(empty, fan);
  EXPECT_NE(fan, tagger);
  for (float s : fan) EXPECT_TRUE(std::isfinite(s));
  EXPECT_THAT(w->ScoreColdStartUser(std::vector<int32_t>{250}, {}, items),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("history item 250")));
  EXPECT_THAT(w->ScoreColdStartUser({}, std::vector<int32_t>{-1}, items),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tag -1")));
  EXPECT_THAT(w->ScoreUser(100000, items), StatusIs(absl::StatusCode::kNotFound));
}

TEST(LocalWorkloadTest, LocalStateSurvivesARestart) {
  const SplitData client = RestrictToUsers(SmallWorld().split, std::vector<int32_t>{3, 4, 5, 6, 7}).value();
  for (OptimizerKind kind : {OptimizerKind::kAdam, OptimizerKind::kAdagrad, OptimizerKind::kSgd,
                             OptimizerKind::kAdamW}) {
    SCOPED_TRACE(std::string(OptimizerKindName(kind)));
    TempDir dir(std::string(OptimizerKindName(kind)));
    TrainConfig c;
    c.epochs = 2;
    c.optimizer = kind;
    c.lr = kind == OptimizerKind::kSgd ? 0.5 : 0.01;
    c.momentum = kind == OptimizerKind::kSgd ? 0.9 : 0.0;
    auto w = Make(client);
    PETAL_ASSERT_OK(w->Train(c).status());
    const common::NDArrays globals = Copy(w->GlobalArrays());
    PETAL_ASSERT_OK(w->SaveLocalState(dir.path()));
    EXPECT_TRUE(std::filesystem::exists(LocalWorkload::LocalStatePath(dir.path())));
    // Only local arrays are in the state: no global parameter appears.
    PETAL_ASSERT_OK_AND_ASSIGN(common::NamedArrays saved,
                               common::ReadNpz(LocalWorkload::LocalStatePath(dir.path())));
    for (const auto& [name, a] : saved) EXPECT_EQ(name.find("item_"), std::string::npos) << name;

    // A "restarted" client: fresh workload, the server's globals, then the local state.
    auto restarted = Make(client);
    PETAL_ASSERT_OK(restarted->SetGlobalArrays(globals));
    const std::vector<int32_t> items = {0, 5, 9, 42};
    PETAL_ASSERT_OK_AND_ASSIGN(auto fresh_scores, restarted->ScoreUser(4, items));
    PETAL_ASSERT_OK(restarted->LoadLocalState(dir.path()));
    PETAL_ASSERT_OK_AND_ASSIGN(auto expected, w->ScoreUser(4, items));
    PETAL_ASSERT_OK_AND_ASSIGN(auto restored, restarted->ScoreUser(4, items));
    EXPECT_EQ(restored, expected);
    EXPECT_NE(fresh_scores, expected);
    // Both continue identically (optimizer state and sampling RNG restored too).
    PETAL_ASSERT_OK(w->SetGlobalArrays(globals));
    c.epochs = 1;
    PETAL_ASSERT_OK_AND_ASSIGN(TrainStats a, w->Train(c));
    PETAL_ASSERT_OK_AND_ASSIGN(TrainStats b, restarted->Train(c));
    EXPECT_EQ(a.loss, b.loss);
    EXPECT_EQ(Copy(w->GlobalArrays()), Copy(restarted->GlobalArrays()));
  }
}

TEST(LocalWorkloadTest, LoadLocalStateRejectsForeignOrDamagedState) {
  TempDir dir("state");
  const SplitData mine = RestrictToUsers(SmallWorld().split, std::vector<int32_t>{3, 4, 5}).value();
  const SplitData theirs = RestrictToUsers(SmallWorld().split, std::vector<int32_t>{3, 4, 8}).value();
  auto w = Make(mine);
  PETAL_ASSERT_OK(w->Train(TrainConfig{.epochs = 1}).status());
  EXPECT_THAT(w->LoadLocalState(dir.path()), StatusIs(absl::StatusCode::kNotFound));
  PETAL_ASSERT_OK(w->SaveLocalState(dir.path()));

  auto other = Make(theirs);
  const std::vector<int32_t> items = {1, 2, 3};
  PETAL_ASSERT_OK_AND_ASSIGN(auto before, other->ScoreUser(3, items));
  EXPECT_THAT(other->LoadLocalState(dir.path()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("different set of users")));
  TagNcfOptions bigger = SmallModel();
  bigger.gmf_dim = 16;
  auto different = Make(mine, bigger);
  EXPECT_THAT(different->LoadLocalState(dir.path()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("other model options")));
  // A damaged file.
  const std::string path = LocalWorkload::LocalStatePath(dir.path());
  std::string bytes = common::ReadFileToString(path).value();
  bytes[bytes.size() / 2] ^= 0x20;
  PETAL_ASSERT_OK(common::WriteFileAtomically(path, bytes));
  EXPECT_THAT(w->LoadLocalState(dir.path()), StatusIs(absl::StatusCode::kInvalidArgument));
  // A state with a NaN user embedding.
  TempDir nan_dir("nan");
  PETAL_ASSERT_OK(w->SaveLocalState(nan_dir.path()));
  common::NamedArrays arrays = common::ReadNpz(LocalWorkload::LocalStatePath(nan_dir.path())).value();
  for (auto& [name, a] : arrays) {
    if (name == "param/user_gmf.weight") a.mutable_values<float>()[0] = NAN;
  }
  PETAL_ASSERT_OK(common::WriteNpz(LocalWorkload::LocalStatePath(nan_dir.path()), arrays));
  PETAL_ASSERT_OK_AND_ASSIGN(auto mine_before, w->ScoreUser(3, items));
  EXPECT_THAT(w->LoadLocalState(nan_dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-finite")));
  PETAL_ASSERT_OK_AND_ASSIGN(auto mine_after, w->ScoreUser(3, items));
  EXPECT_EQ(mine_before, mine_after);
  PETAL_ASSERT_OK_AND_ASSIGN(auto after, other->ScoreUser(3, items));
  EXPECT_EQ(before, after);
}

TEST(LocalWorkloadTest, AllArraysHoldsEveryParameter) {
  auto w = Make(SmallWorld().split);
  common::NamedArrays all = w->AllArrays();
  EXPECT_EQ(all.size(), w->GlobalParameterNames().size() + 3);
  EXPECT_EQ(all[0].first, "user_gmf.weight");
  EXPECT_EQ(all[0].second.shape(), (common::Shape{300, 8}));
}

}  // namespace
}  // namespace petal::model
