#include "model/options.h"

#include <cmath>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::model {
namespace {

using ::petal::testing::IsOkAndHolds;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

TEST(OptionsTest, ParsesNames) {
  EXPECT_THAT(ParseFeedbackMode("explicit"), IsOkAndHolds(FeedbackMode::kExplicit));
  EXPECT_THAT(ParseFeedbackMode("both"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseOptimizerKind("adamw"), IsOkAndHolds(OptimizerKind::kAdamW));
  EXPECT_THAT(ParseOptimizerKind("lbfgs"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("adam, adamw, adagrad or sgd")));
  EXPECT_EQ(OptimizerKindName(OptimizerKind::kSgd), "sgd");
}

TEST(OptionsTest, ValidatesModelOptions) {
  TagNcfOptions o;
  o.num_items = 10;
  PETAL_EXPECT_OK(ValidateTagNcfOptions(o));
  o.mlp_layers = {};
  EXPECT_THAT(ValidateTagNcfOptions(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                                 HasSubstr("model.mlp_layers")));
  o.gmf_only = true;  // no MLP: layers do not matter
  PETAL_EXPECT_OK(ValidateTagNcfOptions(o));
  o.tag_dim = 0;
  EXPECT_THAT(ValidateTagNcfOptions(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                                 HasSubstr("model.tag_dim")));
  o.use_tags = false;
  PETAL_EXPECT_OK(ValidateTagNcfOptions(o));
  o.profile_half_life = -1.0;
  EXPECT_THAT(ValidateTagNcfOptions(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                                 HasSubstr("model.profile_half_life")));
  o.profile_half_life = std::nan("");
  EXPECT_THAT(ValidateTagNcfOptions(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                                 HasSubstr("model.profile_half_life")));
  o.profile_half_life = 20.0;
  PETAL_EXPECT_OK(ValidateTagNcfOptions(o));
  o.num_items = 0;
  EXPECT_THAT(ValidateTagNcfOptions(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                                 HasSubstr("num_items")));
}

TEST(OptionsTest, MergesFlowerFitConfig) {
  TrainConfig defaults;
  common::ConfigMap config{{"local_epochs", int64_t{3}},
                           {"learning_rate", 0.01},
                           {"proximal_mu", 0.1},
                           {"clipping_norm", 2.5},
                           {"optimizer", std::string("sgd")},
                           {"server_round", int64_t{4}}};
  PETAL_ASSERT_OK_AND_ASSIGN(TrainConfig c, MergeTrainConfig(defaults, config));
  EXPECT_EQ(c.epochs, 3);
  EXPECT_DOUBLE_EQ(c.lr, 0.01);
  EXPECT_DOUBLE_EQ(c.proximal_mu, 0.1);
  EXPECT_DOUBLE_EQ(c.clipping_norm, 2.5);
  EXPECT_EQ(c.optimizer, OptimizerKind::kSgd);
  EXPECT_EQ(c.batch_size, defaults.batch_size);
  // The new API's spelling, and integers where floats are expected.
  PETAL_ASSERT_OK_AND_ASSIGN(c, MergeTrainConfig(defaults, {{"proximal-mu", int64_t{1}}}));
  EXPECT_DOUBLE_EQ(c.proximal_mu, 1.0);
}

TEST(OptionsTest, FitConfigErrorsNameTheKey) {
  TrainConfig defaults;
  EXPECT_THAT(MergeTrainConfig(defaults, {{"lr", std::string("fast")}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lr")));
  EXPECT_THAT(MergeTrainConfig(defaults, {{"lr", -1.0}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fit config: lr must be")));
  EXPECT_THAT(MergeTrainConfig(defaults, {{"batch_size", int64_t{0}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("batch_size")));
  EXPECT_THAT(MergeTrainConfig(defaults, {{"clipping_norm", -1.0}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("clipping_norm")));
  EXPECT_THAT(MergeTrainConfig(defaults, {{"epochs", int64_t{1} << 40}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_THAT(MergeTrainConfig(defaults, {{"optimizer", std::string("rmsprop")}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("optimizer")));
}

TEST(OptionsTest, MergesEvaluateConfig) {
  PETAL_ASSERT_OK_AND_ASSIGN(EvalConfig c,
                             MergeEvalConfig(EvalConfig(), {{"k", int64_t{5}}, {"full_catalog", false}}));
  EXPECT_EQ(c.k, 5);
  EXPECT_FALSE(c.full_catalog);
  EXPECT_THAT(MergeEvalConfig(EvalConfig(), {{"k", int64_t{0}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("k must be >= 1")));
}

TEST(OptionsTest, StatsBecomeFlowerMetrics) {
  EvalStats e;
  e.k = 10;
  e.loss = 0.5;
  e.ranking_cases = 3;
  e.hit_rate = 0.6;
  e.ndcg = 0.4;
  common::ConfigMap m = ToConfigMap(e);
  EXPECT_THAT(m.GetDouble("hr@10"), IsOkAndHolds(0.6));
  EXPECT_THAT(m.GetDouble("ndcg@10"), IsOkAndHolds(0.4));
  EXPECT_FALSE(m.Contains("rmse"));
  TrainStats t;
  t.loss = 0.25;
  t.update_norm = 3.0;
  t.clipped = true;
  common::ConfigMap tm = ToConfigMap(t);
  EXPECT_THAT(tm.GetDouble("train_loss"), IsOkAndHolds(0.25));
  EXPECT_THAT(tm.GetBool("clipped"), IsOkAndHolds(true));
}

}  // namespace
}  // namespace petal::model
