#include "strategy/aggregate.h"

#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <random>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::strategy {
namespace {

using common::DType;
using common::NDArray;
using common::NDArrays;
using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

NDArrays Floats(std::vector<float> a, std::vector<float> b) {
  const int64_t na = static_cast<int64_t>(a.size());
  const int64_t nb = static_cast<int64_t>(b.size());
  return {NDArray::FromVector<float>({na}, a).value(), NDArray::FromVector<float>({nb}, b).value()};
}

NDArrays RandomModel(std::mt19937_64& rng, int64_t n) {
  std::normal_distribution<float> dist;
  std::vector<float> a(static_cast<size_t>(n));
  std::vector<double> b(7);
  for (float& v : a) v = dist(rng);
  for (double& v : b) v = dist(rng);
  return {NDArray::FromVector<float>({n}, a).value(), NDArray::FromVector<double>({7}, b).value()};
}

TEST(WeightedAverageTest, StreamingEqualsBatchAndIsCorrectlyRounded) {
  std::mt19937_64 rng(3);
  std::vector<NDArrays> models;
  std::vector<int64_t> ns;
  for (int i = 0; i < 6; ++i) {
    models.push_back(RandomModel(rng, 257));
    ns.push_back(1 + static_cast<int64_t>(rng() % 500));
  }
  WeightedAverage stream(Accumulation::kFloat64, IntegerPolicy::kRound);
  std::vector<std::pair<const NDArrays*, int64_t>> batch;
  for (size_t i = 0; i < models.size(); ++i) {
    ASSERT_THAT(stream.Add(models[i], ns[i]), IsOk());
    batch.emplace_back(&models[i], ns[i]);
  }
  EXPECT_EQ(stream.count(), 6);
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays a, stream.Result());
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays b, AggregateWeighted(batch, Accumulation::kFloat64, IntegerPolicy::kRound));
  EXPECT_EQ(a, b);
  // Each float32 element is the float64 weighted mean rounded once.
  int64_t total = 0;
  for (int64_t n : ns) total += n;
  for (int64_t e = 0; e < 257; ++e) {
    double sum = 0;
    for (size_t i = 0; i < models.size(); ++i) sum += ns[i] * static_cast<double>(models[i][0].values<float>()[e]);
    ASSERT_EQ(a[0].values<float>()[e], static_cast<float>(sum / total)) << e;
  }
}

TEST(WeightedAverageTest, Float64ModeDoesNotDependOnArrivalOrder) {
  // float64 values of wildly different magnitudes: plain summation would round
  // differently depending on the order; the compensated sum does not.
  std::mt19937_64 rng(11);
  std::normal_distribution<double> dist;
  std::vector<NDArrays> models;
  std::vector<int64_t> ns;
  for (int i = 0; i < 8; ++i) {
    std::vector<double> v(64);
    for (double& x : v) x = dist(rng) * std::pow(10.0, static_cast<double>(rng() % 17) - 8.0);
    models.push_back({NDArray::FromVector<double>({64}, v).value()});
    ns.push_back(1 + static_cast<int64_t>(rng() % 1000));
  }
  std::vector<size_t> order(models.size());
  std::iota(order.begin(), order.end(), 0u);
  std::optional<NDArrays> first;
  for (int trial = 0; trial < 20; ++trial) {
    std::shuffle(order.begin(), order.end(), rng);
    WeightedAverage avg(Accumulation::kFloat64, IntegerPolicy::kRound);
    for (size_t i : order) ASSERT_THAT(avg.Add(models[i], ns[i]), IsOk());
    PETAL_ASSERT_OK_AND_ASSIGN(NDArrays out, avg.Result());
    if (!first) {
      first = out;
    } else {
      ASSERT_EQ(out, *first) << "trial " << trial;
    }
  }
}

TEST(WeightedAverageTest, NativeFollowsFlowersOperationOrder) {
  NDArrays a = Floats({0.1f, 1e8f}, {3.0f});
  NDArrays b = Floats({0.2f, 1.0f}, {4.0f});
  WeightedAverage avg(Accumulation::kNative, IntegerPolicy::kRound);
  ASSERT_THAT(avg.Add(a, 3), IsOk());
  ASSERT_THAT(avg.Add(b, 7), IsOk());
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays out, avg.Result());
  // (w1*3 + w2*7) / 10 with float32 rounding after every operation.
  const float e0 = (0.1f * 3.0f + 0.2f * 7.0f) / 10.0f;
  const float e1 = (1e8f * 3.0f + 1.0f * 7.0f) / 10.0f;
  EXPECT_EQ(out[0].values<float>()[0], e0);
  EXPECT_EQ(out[0].values<float>()[1], e1);
}

TEST(WeightedAverageTest, RefusesMismatchesWithoutChangingTheSum) {
  WeightedAverage avg(Accumulation::kFloat64, IntegerPolicy::kRound);
  ASSERT_THAT(avg.Add(Floats({1, 2}, {3}), 1), IsOk());
  EXPECT_THAT(avg.Add(Floats({1, 2, 3}, {3}), 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("array 0: expected shape (2,)")));
  EXPECT_THAT(avg.Add({Floats({1, 2}, {3})[0]}, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected 2 arrays, got 1")));
  NDArrays wrong_dtype = Floats({1, 2}, {3});
  wrong_dtype[1] = NDArray::FromVector<double>({1}, {3.0}).value();
  EXPECT_THAT(avg.Add(wrong_dtype, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected dtype float32, got float64")));
  EXPECT_THAT(avg.Add(Floats({1, 2}, {3}), 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_examples must be > 0")));
  EXPECT_THAT(avg.Add(Floats({1, 2}, {3}), -4), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(avg.count(), 1);
  ASSERT_THAT(avg.Add(Floats({3, 4}, {5}), 1), IsOk());
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays out, avg.Result());
  EXPECT_THAT(out[0].values<float>(), ElementsAre(2.0f, 3.0f));
  EXPECT_THAT(out[1].values<float>(), ElementsAre(4.0f));
}

TEST(WeightedAverageTest, EmptyIsAnError) {
  WeightedAverage avg(Accumulation::kFloat64, IntegerPolicy::kRound);
  EXPECT_THAT(avg.Result(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(WeightedAverageTest, Float16NativeAndFloat64Modes) {
  // [1, 2] (n=1) and [3, 4] (n=3): means 2.5 and 3.5, exact in half precision.
  NDArrays a = {NDArray::FromBytes(DType::kFloat16, {2}, std::string("\x00\x3c\x00\x40", 4)).value()};
  NDArrays b = {NDArray::FromBytes(DType::kFloat16, {2}, std::string("\x00\x42\x00\x44", 4)).value()};
  for (Accumulation acc : {Accumulation::kFloat64, Accumulation::kNative}) {
    PETAL_ASSERT_OK_AND_ASSIGN(NDArrays out, AggregateWeighted({{&a, 1}, {&b, 3}}, acc, IntegerPolicy::kRound));
    ASSERT_EQ(out[0].dtype(), DType::kFloat16);
    EXPECT_EQ(out[0].bytes(), std::string("\x00\x41\x00\x43", 4));  // 2.5, 3.5
  }
}

TEST(CheckFiniteTest, NamesTheArrayAndIndex) {
  EXPECT_THAT(CheckFinite(Floats({1, 2}, {3})), IsOk());
  EXPECT_THAT(CheckFinite(Floats({1, NAN}, {3})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("array 0 float32(2,) has a non-finite value (NaN or Inf) at flat index 1")));
  EXPECT_THAT(CheckFinite(Floats({1, 2}, {-INFINITY})), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("array 1")));
  NDArray half_inf = NDArray::FromBytes(DType::kFloat16, {1}, std::string("\x00\x7c", 2)).value();
  EXPECT_THAT(CheckFinite({half_inf}), StatusIs(absl::StatusCode::kInvalidArgument));
  NDArray ints = NDArray::FromVector<int64_t>({2}, {1, -1}).value();
  EXPECT_THAT(CheckFinite({ints}), IsOk());
}

TEST(MedianTest, OddEvenNanAndIntegers) {
  NDArrays a = Floats({1, 5}, {0});
  NDArrays b = Floats({2, 6}, {1});
  NDArrays c = Floats({9, 7}, {NAN});
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays odd, AggregateMedian({&a, &b, &c}, IntegerPolicy::kRound));
  EXPECT_THAT(odd[0].values<float>(), ElementsAre(2.0f, 6.0f));
  EXPECT_TRUE(std::isnan(odd[1].values<float>()[0]));  // like np.median
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays even, AggregateMedian({&a, &b}, IntegerPolicy::kRound));
  EXPECT_THAT(even[0].values<float>(), ElementsAre(1.5f, 5.5f));
  NDArrays i1 = {NDArray::FromVector<int32_t>({1}, {1}).value()};
  NDArrays i2 = {NDArray::FromVector<int32_t>({1}, {4}).value()};
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays im, AggregateMedian({&i1, &i2}, IntegerPolicy::kRound));
  EXPECT_THAT(im[0].values<int32_t>(), ElementsAre(2));  // 2.5 -> 2
  EXPECT_THAT(AggregateMedian({&i1, &i2}, IntegerPolicy::kReject), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AggregateMedian({}, IntegerPolicy::kRound), StatusIs(absl::StatusCode::kInvalidArgument));
  NDArrays bad = Floats({1}, {0});
  EXPECT_THAT(AggregateMedian({&a, &bad}, IntegerPolicy::kRound),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("result 1")));
}

TEST(TrimmedMeanTest, TrimsBothEnds) {
  std::vector<NDArrays> in;
  for (float v : {100.0f, 1.0f, 2.0f, 3.0f, -50.0f}) in.push_back(Floats({v}, {v}));
  std::vector<const NDArrays*> ptrs;
  for (const NDArrays& n : in) ptrs.push_back(&n);
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays out, AggregateTrimmedMean(ptrs, 0.2, IntegerPolicy::kRound));
  EXPECT_THAT(out[0].values<float>(), ElementsAre(2.0f));
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays none, AggregateTrimmedMean(ptrs, 0.0, IntegerPolicy::kRound));
  EXPECT_THAT(none[0].values<float>(), ElementsAre(11.2f));
  EXPECT_THAT(AggregateTrimmedMean(ptrs, 0.5, IntegerPolicy::kRound),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[0, 0.5)")));
  EXPECT_THAT(AggregateTrimmedMean(ptrs, -0.1, IntegerPolicy::kRound), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(KrumTest, ScoresSumTheClosestDistances) {
  std::vector<NDArrays> in;
  for (float v : {0.0f, 1.0f, 2.0f, 10.0f}) in.push_back(Floats({v}, {0}));
  std::vector<const NDArrays*> ptrs;
  for (const NDArrays& n : in) ptrs.push_back(&n);
  EXPECT_THAT(KrumScores(ptrs, 1), ::petal::testing::IsOkAndHolds(ElementsAre(1.0, 1.0, 1.0, 64.0)));
  // f = 0: c = 2 closest.
  EXPECT_THAT(KrumScores(ptrs, 0), ::petal::testing::IsOkAndHolds(ElementsAre(5.0, 2.0, 5.0, 145.0)));
  EXPECT_THAT(KrumScores(ptrs, -1), StatusIs(absl::StatusCode::kInvalidArgument));
  // A single result scores 0 (nothing to compare with).
  EXPECT_THAT(KrumScores({ptrs[0]}, 0), ::petal::testing::IsOkAndHolds(ElementsAre(0.0)));
}

TEST(FedOptStepTest, Float32FollowsNumpyOperationOrder) {
  NDArrays x = {NDArray::FromVector<float>({2}, {1.0f, -0.5f}).value()};
  NDArrays avg = {NDArray::FromVector<float>({2}, {1.3f, -0.25f}).value()};
  NDArrays m, v;
  FedOptHyperparameters hp{0.1, 0.9, 0.99, 1e-9};
  const double step = AdamStepSize(0.1, 0.9, 0.99, 1);
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays out, FedOptStep(ServerOptimizer::kAdam, hp, step, x, avg, &m, &v));
  for (int i = 0; i < 2; ++i) {
    const float xi = x[0].values<float>()[i];
    const float d = avg[0].values<float>()[i] - xi;
    const float mi = 0.9f * 0.0f + static_cast<float>(1.0 - 0.9) * d;
    const float vi = 0.99f * 0.0f + static_cast<float>(1.0 - 0.99) * (d * d);
    const float expected = xi + (static_cast<float>(step) * mi) / (std::sqrt(vi) + static_cast<float>(1e-9));
    EXPECT_EQ(out[0].values<float>()[i], expected);
    EXPECT_EQ(m[0].values<float>()[i], mi);
    EXPECT_EQ(v[0].values<float>()[i], vi);
  }
  NDArrays ints = {NDArray::FromVector<int64_t>({2}, {1, 2}).value()};
  NDArrays m2, v2;
  EXPECT_THAT(FedOptStep(ServerOptimizer::kAdam, hp, step, ints, ints, &m2, &v2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("floating-point")));
  NDArrays other = {NDArray::FromVector<float>({3}, {1, 2, 3}).value()};
  EXPECT_THAT(FedOptStep(ServerOptimizer::kYogi, hp, 0.1, x, other, &m2, &v2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected shape (2,)")));
}

TEST(FedAvgMStepTest, MomentumStartsThenAccumulates) {
  NDArrays x = {NDArray::FromVector<double>({1}, {1.0}).value()};
  NDArrays avg = {NDArray::FromVector<double>({1}, {3.5}).value()};
  NDArrays mom;
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays x1, FedAvgMStep(1.0, 0.9, x, avg, &mom));
  EXPECT_THAT(x1[0].values<double>(), ElementsAre(3.5));
  EXPECT_THAT(mom[0].values<double>(), ElementsAre(-2.5));
  NDArrays avg2 = {NDArray::FromVector<double>({1}, {3.0}).value()};
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays x2, FedAvgMStep(1.0, 0.9, x1, avg2, &mom));
  EXPECT_THAT(x2[0].values<double>(), ElementsAre(5.25));
  NDArrays none;
  PETAL_ASSERT_OK_AND_ASSIGN(NDArrays x3, FedAvgMStep(0.5, 0.0, x, avg, &none));
  EXPECT_THAT(x3[0].values<double>(), ElementsAre(2.25));
  EXPECT_TRUE(none.empty());
}

TEST(MetricsTest, WeightedAverageOfNumericMetrics) {
  common::ConfigMap a{{"acc", 0.5}, {"count", int64_t{10}}, {"name", std::string("x")}, {"flag", true}};
  common::ConfigMap b{{"acc", 1.0}};
  common::ConfigMap out = WeightedMetricsAverage({{1, &a}, {3, &b}, {0, &b}});
  EXPECT_EQ(out.size(), 2u);
  EXPECT_DOUBLE_EQ(out.GetDouble("acc").value(), 0.875);
  EXPECT_DOUBLE_EQ(out.GetDouble("count").value(), 10.0);
}

TEST(WeightedLossTest, Errors) {
  EXPECT_THAT(WeightedLossAverage({}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(WeightedLossAverage({{0, 1.0}}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseTest, NamesAndErrors) {
  EXPECT_THAT(ParseAccumulation("native"), ::petal::testing::IsOkAndHolds(Accumulation::kNative));
  EXPECT_THAT(ParseAccumulation("f32"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("float64 or native")));
  EXPECT_THAT(ParseIntegerPolicy("reject"), ::petal::testing::IsOkAndHolds(IntegerPolicy::kReject));
  EXPECT_THAT(ParseIntegerPolicy("zero"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace petal::strategy
