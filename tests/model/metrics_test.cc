#include "model/metrics.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::model {
namespace {

using ::testing::ElementsAre;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST(RankingTest, RankCountsNegativesAtOrAboveThePositive) {
  EXPECT_EQ(RankOfPositive(0.9f, {0.1f, 0.2f, 0.3f}), 0);
  EXPECT_EQ(RankOfPositive(0.5f, {0.7f, 0.2f, 0.6f}), 2);
  EXPECT_EQ(RankOfPositive(0.5f, {0.5f, 0.1f}), 1);       // a tie counts against the positive
  EXPECT_EQ(RankOfPositive(0.5f, {kNaN, 0.1f}), 1);       // so does a NaN negative
  EXPECT_EQ(RankOfPositive(kNaN, {0.1f, 0.2f, 0.3f}), 3);  // a NaN positive is last
  EXPECT_EQ(RankOfPositive(1.0f, {}), 0);
}

TEST(RankingTest, HitAndNdcgByHand) {
  EXPECT_EQ(HitAtK(0, 10), 1.0);
  EXPECT_EQ(HitAtK(9, 10), 1.0);
  EXPECT_EQ(HitAtK(10, 10), 0.0);
  EXPECT_DOUBLE_EQ(NdcgAtK(0, 10), 1.0);
  EXPECT_DOUBLE_EQ(NdcgAtK(1, 10), 1.0 / std::log2(3.0));
  EXPECT_DOUBLE_EQ(NdcgAtK(2, 10), 0.5);
  EXPECT_DOUBLE_EQ(NdcgAtK(6, 10), 1.0 / 3.0);
  EXPECT_EQ(NdcgAtK(10, 10), 0.0);
}

TEST(RankingTest, MetricsAverageOverCases) {
  RankingMetrics m(2);
  m.Add(0.9f, {0.1f, 0.2f});  // rank 0: hit, ndcg 1
  m.Add(0.5f, {0.6f, 0.1f});  // rank 1: hit, ndcg 1/log2(3)
  m.Add(0.0f, {0.6f, 0.1f});  // rank 2: miss
  m.Add(0.3f, {0.6f, 0.4f});  // rank 2: miss
  EXPECT_EQ(m.count(), 4);
  EXPECT_DOUBLE_EQ(m.hit_rate(), 0.5);
  EXPECT_DOUBLE_EQ(m.ndcg(), (1.0 + 1.0 / std::log2(3.0)) / 4.0);
  EXPECT_EQ(RankingMetrics(10).hit_rate(), 0.0);
}

TEST(TopKTest, SkipsExcludedBreaksTiesByIdAndRanksNaNLast) {
  const std::vector<float> scores = {0.5f, 0.9f, kNaN, 0.9f, 0.1f, 0.7f};
  EXPECT_THAT(TopK(scores, {}, 3), ElementsAre(1, 3, 5));
  EXPECT_THAT(TopK(scores, {1, 5}, 3), ElementsAre(3, 0, 4));
  EXPECT_THAT(TopK(scores, {0, 1, 3, 4, 5}, 3), ElementsAre(2));
  EXPECT_THAT(TopK(scores, {}, 0), ElementsAre());
  EXPECT_EQ(TopK(scores, {}, 100).size(), 6u);
}

TEST(CatalogMetricsTest, PrecisionAndRecallByHand) {
  CatalogMetrics m(2);
  // User A: top-2 after excluding item 1 is {3, 0}; relevant {0, 4}: 1 hit.
  m.AddUser(std::vector<float>{0.8f, 0.99f, 0.1f, 0.9f, 0.2f}, {1}, {0, 4});
  // User B: top-2 is {2, 4}; relevant {2}: 1 hit.
  m.AddUser(std::vector<float>{0.1f, 0.2f, 0.9f, 0.3f, 0.5f}, {}, {2});
  // User C has nothing relevant: not counted.
  m.AddUser(std::vector<float>{0.1f, 0.2f, 0.9f, 0.3f, 0.5f}, {}, {});
  EXPECT_EQ(m.count(), 2);
  EXPECT_DOUBLE_EQ(m.precision(), (0.5 + 0.5) / 2);
  EXPECT_DOUBLE_EQ(m.recall(), (0.5 + 1.0) / 2);
}

TEST(ErrorMetricsTest, RmseAndMaeByHand) {
  ErrorMetrics e;
  e.Add(3.0, 4.0);  // error -1
  e.Add(5.0, 3.0);  // error 2
  e.Add(2.5, 2.5);  // error 0
  EXPECT_EQ(e.count(), 3);
  EXPECT_DOUBLE_EQ(e.rmse(), std::sqrt(5.0 / 3.0));
  EXPECT_DOUBLE_EQ(e.mae(), 1.0);
  EXPECT_EQ(ErrorMetrics().rmse(), 0.0);
}

}  // namespace
}  // namespace petal::model
