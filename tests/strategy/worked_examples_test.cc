// The worked examples of flower-wire.md section B, computed by Flower's own
// Python code, reproduced through Petal's strategies.
#include <cmath>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "strategy/aggregate.h"
#include "strategy/registry.h"

namespace petal::strategy {
namespace {

using common::NDArray;
using common::NDArrays;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::petal::testing::StatusIs;

NDArrays Scalar1(double v) { return {NDArray::FromVector<double>({1}, {v}).value()}; }

FitResult Result(NDArrays arrays, int64_t n) {
  FitResult r;
  r.client = std::make_shared<ClientProxy>("c");
  r.res.status = common::SuccessStatus();
  r.res.parameters = std::move(arrays);
  r.res.num_examples = n;
  return r;
}

// Runs the golden scenario: x0 = [1]; round 1 replies 2 (n=1), 4 (n=3);
// round 2 replies 3 (n=1), 3 (n=3). Returns the global value after each round.
std::vector<double> RunGoldenScenario(const std::string& name, common::ConfigMap params = {}) {
  StrategyConfig config;
  config.name = name;
  config.params = std::move(params);
  config.initial_parameters = Scalar1(1.0);
  auto strategy = MakeStrategy(std::move(config));
  EXPECT_TRUE(strategy.ok()) << strategy.status();
  if (!strategy.ok()) return {};
  SimpleClientManager manager(1);
  auto init = (*strategy)->InitializeParameters(manager);
  EXPECT_TRUE(init.ok() && init->has_value());
  SharedNDArrays global = common::Share(**init);
  std::vector<double> out;
  const double replies[2][2] = {{2.0, 4.0}, {3.0, 3.0}};
  for (int round = 1; round <= 2; ++round) {
    std::vector<FitResult> results;
    results.push_back(Result(Scalar1(replies[round - 1][0]), 1));
    results.push_back(Result(Scalar1(replies[round - 1][1]), 3));
    auto agg = (*strategy)->AggregateFit(round, global, std::move(results), {});
    EXPECT_TRUE(agg.ok()) << agg.status();
    if (!agg.ok() || !agg->parameters) return out;
    global = common::Share(*std::move(agg->parameters));
    out.push_back((*global)[0].values<double>()[0]);
  }
  return out;
}

TEST(WorkedExamplesTest, FedAvgWeightedMean) {
  EXPECT_THAT(RunGoldenScenario("fedavg"), ElementsAre(3.5, 3.0));
}

TEST(WorkedExamplesTest, FedAdamLegacyDefaults) {
  EXPECT_THAT(RunGoldenScenario("fedadam"),
              ElementsAre(DoubleNear(1.074245978543, 1e-12), DoubleNear(1.158661184007, 1e-12)));
}

TEST(WorkedExamplesTest, FedYogiLegacyDefaults) {
  EXPECT_THAT(RunGoldenScenario("fedyogi"),
              ElementsAre(DoubleNear(1.009960159363, 1e-12), DoubleNear(1.023188170260, 1e-12)));
}

TEST(WorkedExamplesTest, FedAdagradLegacyDefaults) {
  EXPECT_THAT(RunGoldenScenario("fedadagrad"),
              ElementsAre(DoubleNear(1.099999999960, 1e-12), DoubleNear(1.160508326695, 1e-12)));
}

TEST(WorkedExamplesTest, FedAvgMMomentum) {
  EXPECT_THAT(RunGoldenScenario("fedavgm", {{"server_momentum", 0.9}}), ElementsAre(3.5, 5.25));
}

TEST(WorkedExamplesTest, FedProxAggregatesLikeFedAvg) {
  EXPECT_THAT(RunGoldenScenario("fedprox", {{"proximal_mu", 0.5}}), ElementsAre(3.5, 3.0));
}

TEST(WorkedExamplesTest, NonInplaceAverageOfFloatArrays) {
  NDArrays a = {NDArray::FromVector<double>({2}, {1, 2}).value()};
  NDArrays b = {NDArray::FromVector<double>({2}, {3, 5}).value()};
  for (Accumulation acc : {Accumulation::kFloat64, Accumulation::kNative}) {
    PETAL_ASSERT_OK_AND_ASSIGN(NDArrays out,
                               AggregateWeighted({{&a, 1}, {&b, 3}}, acc, IntegerPolicy::kRound));
    EXPECT_THAT(out[0].values<double>(), ElementsAre(2.5, 4.25));
  }
}

TEST(WorkedExamplesTest, IntegerArraysAreRoundedNotZeroed) {
  // Flower's in-place FedAvg gives [0, 0] here (the factor is cast to int);
  // Petal averages in float64 ([2.5, 4.25]) and rounds half to even.
  NDArrays a = {NDArray::FromVector<int64_t>({2}, {1, 2}).value()};
  NDArrays b = {NDArray::FromVector<int64_t>({2}, {3, 5}).value()};
  PETAL_ASSERT_OK_AND_ASSIGN(
      NDArrays out, AggregateWeighted({{&a, 1}, {&b, 3}}, Accumulation::kFloat64, IntegerPolicy::kRound));
  EXPECT_EQ(out[0].dtype(), common::DType::kInt64);
  EXPECT_THAT(out[0].values<int64_t>(), ElementsAre(2, 4));
  EXPECT_THAT(AggregateWeighted({{&a, 1}, {&b, 3}}, Accumulation::kFloat64, IntegerPolicy::kReject),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("array 0 has dtype int64")));
}

TEST(WorkedExamplesTest, WeightedEvaluationLoss) {
  EXPECT_THAT(WeightedLossAverage({{1, 0.5}, {3, 1.0}}), ::petal::testing::IsOkAndHolds(0.875));
}

TEST(WorkedExamplesTest, MedianAndTrimmedMean) {
  std::vector<NDArrays> inputs;
  for (double v : {0.0, 1.0, 2.0, 10.0}) inputs.push_back(Scalar1(v));
  std::vector<const NDArrays*> ptrs;
  for (const NDArrays& in : inputs) ptrs.push_back(&in);
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays median, AggregateMedian(ptrs, IntegerPolicy::kRound));
  EXPECT_THAT(median[0].values<double>(), ElementsAre(1.5));
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays trimmed, AggregateTrimmedMean(ptrs, 0.25, IntegerPolicy::kRound));
  EXPECT_THAT(trimmed[0].values<double>(), ElementsAre(1.5));
}

TEST(WorkedExamplesTest, KrumAndMultiKrum) {
  std::vector<FitResult> results;
  for (double v : {0.0, 1.0, 2.0, 10.0}) results.push_back(Result(Scalar1(v), 1));
  auto run = [&](int64_t keep) {
    StrategyConfig config;
    config.name = "krum";
    config.params = {{"num_malicious_clients", int64_t{1}}, {"num_clients_to_keep", keep}};
    auto strategy = MakeStrategy(std::move(config)).value();
    std::vector<FitResult> copy;
    for (const FitResult& r : results) copy.push_back(Result(r.res.parameters, 1));
    auto agg = strategy->AggregateFit(1, common::Share({}), std::move(copy), {});
    EXPECT_TRUE(agg.ok()) << agg.status();
    return (*agg->parameters)[0].values<double>()[0];
  };
  EXPECT_EQ(run(0), 0.0);
  EXPECT_EQ(run(2), 0.5);
}

TEST(WorkedExamplesTest, KrumTiesPickTheFirstIndex) {
  EXPECT_THAT(KrumSelect({1.0, 1.0, 1.0, 64.0}, 0), ::petal::testing::IsOkAndHolds(ElementsAre(0u)));
  // MultiKrum averages in Flower's order: argsort(scores)[::-1][K-k:].
  EXPECT_THAT(KrumSelect({3.0, 1.0, 2.0, 1.0}, 3),
              ::petal::testing::IsOkAndHolds(ElementsAre(2u, 3u, 1u)));
  EXPECT_THAT(KrumSelect({3.0, 1.0}, 3), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(WorkedExamplesTest, AdamStepSizeUsesRoundPlusOne) {
  EXPECT_DOUBLE_EQ(AdamStepSize(0.1, 0.9, 0.99, 1),
                   0.1 * std::sqrt(1 - std::pow(0.99, 2.0)) / (1 - std::pow(0.9, 2.0)));
}

}  // namespace
}  // namespace petal::strategy
