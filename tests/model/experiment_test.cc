#include "model/experiment.h"

#include <cstdlib>
#include <set>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::model {
namespace {

using ::petal::testing::IsOkAndHolds;
using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct AllConfigs {
  DataConfig data;
  SplitConfig split;
  TagNcfOptions model;
  TrainConfig train;
  EvalConfig eval;
  PartitionOptions partition;
};

absl::Status ReadAll(const std::string& yaml_text, AllConfigs* out) {
  auto yaml = common::YamlConfig::Parse(yaml_text, "test.yaml");
  if (!yaml.ok()) return yaml.status();
  common::ConfigReader r(*yaml);
  ReadDataConfig(r, "data", &out->data);
  ReadSplitConfig(r, "split", &out->split);
  ReadModelOptions(r, "model", &out->model);
  ReadTrainConfig(r, "train", &out->train);
  ReadEvalConfig(r, "eval", &out->eval);
  ReadPartitionOptions(r, "partition", &out->partition);
  return r.Finish();
}

absl::Status ReadFresh(const std::string& yaml_text) {
  AllConfigs fresh;
  return ReadAll(yaml_text, &fresh);
}

TEST(ExperimentConfigTest, ReadsEverySection) {
  AllConfigs c;
  PETAL_ASSERT_OK(ReadAll(R"(
data: {source: ml-100k, path: /d, synthetic: {num_users: 50}}
split: {protocol: kfold, num_folds: 4, fold: 2, seed: 9}
model: {mode: explicit, gmf_dim: 8, mlp_layers: [16, 8], use_tags: false, gmf_only: true}
train: {epochs: 3, optimizer: sgd, lr: 0.5, momentum: 0.9, proximal_mu: 0.01, clipping_norm: 1}
eval: {k: 5, full_catalog: false}
partition: {scheme: dirichlet, num_partitions: 10, alpha: 0.3, seed: 4}
)",
                          &c));
  EXPECT_EQ(c.data.source, "ml-100k");
  EXPECT_EQ(c.data.path, "/d");
  EXPECT_EQ(c.data.synthetic.num_users, 50);
  EXPECT_EQ(c.split.protocol, "kfold");
  EXPECT_EQ(c.split.fold, 2);
  EXPECT_EQ(c.split.seed, 9u);
  EXPECT_EQ(c.model.mode, FeedbackMode::kExplicit);
  EXPECT_THAT(c.model.mlp_layers, ElementsAre(16, 8));
  EXPECT_FALSE(c.model.use_tags);
  EXPECT_TRUE(c.model.gmf_only);
  EXPECT_EQ(c.train.optimizer, OptimizerKind::kSgd);
  EXPECT_DOUBLE_EQ(c.train.momentum, 0.9);
  EXPECT_DOUBLE_EQ(c.train.clipping_norm, 1.0);
  EXPECT_EQ(c.eval.k, 5);
  EXPECT_FALSE(c.eval.full_catalog);
  EXPECT_EQ(c.partition.scheme, PartitionScheme::kDirichlet);
  EXPECT_DOUBLE_EQ(c.partition.alpha, 0.3);
  EXPECT_EQ(c.partition.num_partitions, 10);
}

TEST(ExperimentConfigTest, BadValuesAndUnknownKeysNameTheKey) {
  EXPECT_THAT(ReadFresh("model: {gmf_dimm: 8}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.gmf_dimm")));
  EXPECT_THAT(ReadFresh("train: {lr: -1}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("train.lr")));
  EXPECT_THAT(ReadFresh("data: {source: ml-1m}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("data.source")));
  EXPECT_THAT(ReadFresh("split: {protocol: kfold, num_folds: 3, fold: 4}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("split.fold")));
  EXPECT_THAT(ReadFresh("model: {mlp_layers: [8, 0]}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.mlp_layers")));
  EXPECT_THAT(ReadFresh("train: {optimizer: rmsprop}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("train.optimizer")));
  EXPECT_THAT(ReadFresh("partition: {scheme: random}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("partition.scheme")));
  EXPECT_THAT(ReadFresh("split: {cold_users: 1.0}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("split.cold_users")));
  EXPECT_THAT(ReadFresh("split: {protocol: kfold, cold_users: 0.1}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs protocol leave_one_out")));
  AllConfigs c;
  PETAL_ASSERT_OK(ReadAll("split: {cold_users: 0.25}\n", &c));
  EXPECT_DOUBLE_EQ(c.split.cold_users, 0.25);
}

TEST(ExperimentConfigTest, ResolvesMovieLensPathsFromTheEnvironment) {
  const char* saved = std::getenv("PETAL_DATA_DIR");
  const std::string restore = saved ? saved : "";
  DataConfig c;
  c.source = "ml-100k";
  unsetenv("PETAL_DATA_DIR");
  EXPECT_THAT(ResolveDataPath(c),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PETAL_DATA_DIR is not set")));
  setenv("PETAL_DATA_DIR", "/data", 1);
  EXPECT_THAT(ResolveDataPath(c), IsOkAndHolds("/data/ml-100k"));
  c.source = "ml-latest";
  EXPECT_THAT(ResolveDataPath(c), IsOkAndHolds("/data/ml-latest-small"));
  c.path = "$PETAL_DATA_DIR/ml-25m";
  EXPECT_THAT(ResolveDataPath(c), IsOkAndHolds("/data/ml-25m"));
  c.path = "/elsewhere";
  EXPECT_THAT(ResolveDataPath(c), IsOkAndHolds("/elsewhere"));
  if (saved) {
    setenv("PETAL_DATA_DIR", restore.c_str(), 1);
  } else {
    unsetenv("PETAL_DATA_DIR");
  }
}

TEST(LoadClientDataTest, ProcessesAgreeOnPartitionsAndTestCases) {
  DataConfig data;
  data.synthetic.num_users = 120;
  data.synthetic.num_items = 150;
  data.synthetic.mean_interactions = 15;
  SplitConfig split;
  split.num_negatives = 30;
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadDataset(data));
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData pooled, MakeSplit(ds, data, split));
  PartitionOptions partitions{PartitionScheme::kDirichlet, 4, 0.5, 1, 3};
  std::set<int32_t> seen;
  size_t cases = 0;
  for (int32_t id = 0; id < 4; ++id) {
    PETAL_ASSERT_OK_AND_ASSIGN(SplitData mine, LoadClientData(data, split, partitions, id));
    for (int32_t u : mine.users) EXPECT_TRUE(seen.insert(u).second) << "user " << u << " twice";
    for (const RankingCase& c : mine.ranking) {
      EXPECT_EQ(c.item, pooled.ranking[c.user].item);
      EXPECT_EQ(c.negatives, pooled.ranking[c.user].negatives);
    }
    cases += mine.ranking.size();
  }
  EXPECT_EQ(seen.size(), 120u);
  EXPECT_EQ(cases, pooled.ranking.size());
  EXPECT_THAT(LoadClientData(data, split, partitions, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("partition_id")));
  split.cold_users = 0.1;  // a petal-train evaluation; clients train all their users
  EXPECT_THAT(LoadClientData(data, split, partitions, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("split.cold_users")));
}

TEST(MakeSplitTest, Ml100kFoldNeedsMl100kData) {
  DataConfig data;
  SplitConfig split;
  split.protocol = "ml100k_fold";
  SyntheticOptions o;
  o.num_users = 10;
  o.num_items = 20;
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, GenerateSynthetic(o));
  EXPECT_THAT(MakeSplit(ds, data, split),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs data.source ml-100k")));
}

}  // namespace
}  // namespace petal::model

namespace petal::model {
namespace {

TEST(MakeSplitTest, ValidationHoldsOutFromTheTrainingPartOnly) {
  DataConfig data;
  data.synthetic.num_users = 60;
  data.synthetic.num_items = 100;
  data.synthetic.mean_interactions = 15;
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadDataset(data));
  SplitConfig split;
  split.num_negatives = 20;
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData test, MakeSplit(ds, data, split));
  split.validation = true;
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData validation, MakeSplit(ds, data, split));
  EXPECT_EQ(validation.protocol, "leave_one_out (validation)");
  EXPECT_EQ(validation.train.size() + validation.test.size(), test.train.size());
  ASSERT_EQ(validation.ranking.size(), test.ranking.size());
  for (size_t k = 0; k < test.ranking.size(); ++k) {
    const RankingCase& held = test.ranking[k];
    // The validation item is not the test item, and the test item is nowhere in the data.
    EXPECT_NE(validation.ranking[k].item, held.item);
    for (size_t r = 0; r < validation.train.size(); ++r) {
      if (validation.train.users[r] == held.user) {
        EXPECT_NE(validation.train.items[r], held.item);
      }
    }
  }
  split.protocol = "kfold";
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData kfold_validation, MakeSplit(ds, data, split));
  split.validation = false;
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData kfold_test, MakeSplit(ds, data, split));
  EXPECT_EQ(kfold_validation.train.size() + kfold_validation.test.size(), kfold_test.train.size());
  EXPECT_EQ(kfold_validation.protocol, "kfold 1/5 (validation)");
}

}  // namespace
}  // namespace petal::model
