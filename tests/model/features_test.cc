#include "model/internal/features.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::model::internal {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::IsEmpty;

// Items 0..2, normalized tag rows: item 0 = {tag 0}, item 1 = {tag 1},
// item 2 = {tag 0: 0.5, tag 2: 0.5}.
SparseRows ItemTags() {
  SparseRows rows;
  rows.AddRow(std::vector<int32_t>{0}, std::vector<float>{1.0f});
  rows.AddRow(std::vector<int32_t>{1}, std::vector<float>{1.0f});
  rows.AddRow(std::vector<int32_t>{0, 2}, std::vector<float>{0.5f, 0.5f});
  return rows;
}

TEST(AppendProfileTest, EveryItemWeighsOneWithoutItemWeights) {
  SparseRows out;
  AppendProfile(ItemTags(), std::vector<int32_t>{0, 1, 2}, {}, 0, 0.0, out);
  ASSERT_EQ(out.rows(), 1);
  EXPECT_THAT(out.Indices(0), ElementsAre(0, 1, 2));
  // tag 0: 1 + 0.5, tag 1: 1, tag 2: 0.5, over a total of 3.
  EXPECT_THAT(out.Weights(0), ElementsAre(FloatNear(0.5f, 1e-6f), FloatNear(1.0f / 3, 1e-6f),
                                          FloatNear(1.0f / 6, 1e-6f)));
}

TEST(AppendProfileTest, ItemWeightsScaleEachItemsTags) {
  SparseRows out;
  AppendProfile(ItemTags(), std::vector<int32_t>{0, 1, 2}, std::vector<int32_t>{2}, 0, 1.0, out,
                std::vector<double>{0.0, 3.0, 2.0});
  // tag 0: 0 + 2*0.5 = 1, tag 1: 3, tag 2: 2*0.5 + own 1 = 2; total 6.
  EXPECT_THAT(out.Indices(0), ElementsAre(0, 1, 2));
  EXPECT_THAT(out.Weights(0), ElementsAre(FloatNear(1.0f / 6, 1e-6f), FloatNear(0.5f, 1e-6f),
                                          FloatNear(1.0f / 3, 1e-6f)));
}

TEST(RecencyWeightsTest, HalvesEveryHalfLifeFromTheMostRecent) {
  // Ranks by time: index 1 (t=30) is the newest, then 2 (t=20), then 0 (t=10).
  EXPECT_THAT(RecencyWeights(std::vector<int64_t>{10, 30, 20}, 1.0),
              ElementsAre(DoubleNear(0.25, 1e-12), DoubleNear(1.0, 1e-12),
                          DoubleNear(0.5, 1e-12)));
  EXPECT_THAT(RecencyWeights(std::vector<int64_t>{10, 30, 20}, 2.0),
              ElementsAre(DoubleNear(0.5, 1e-12), DoubleNear(1.0, 1e-12),
                          DoubleNear(std::sqrt(0.5), 1e-12)));
}

TEST(RecencyWeightsTest, EqualTimestampsTreatTheLaterEntryAsNewer) {
  EXPECT_THAT(RecencyWeights(std::vector<int64_t>{5, 5, 5}, 1.0),
              ElementsAre(DoubleNear(0.25, 1e-12), DoubleNear(0.5, 1e-12),
                          DoubleNear(1.0, 1e-12)));
}

TEST(RecencyWeightsTest, ZeroHalfLifeMeansUniform) {
  EXPECT_THAT(RecencyWeights(std::vector<int64_t>{1, 2}, 0.0), IsEmpty());
  EXPECT_THAT(RecencyWeights({}, 3.0), IsEmpty());
}

}  // namespace
}  // namespace petal::model::internal
