#include "model/partition.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::model {
namespace {

using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

SplitData MakeSplit(int users = 300) {
  SyntheticOptions o;
  o.num_users = users;
  o.num_items = 300;
  o.mean_interactions = 20;
  Dataset ds = GenerateSynthetic(o).value();
  return LeaveOneOut(ds, 10, 1).value();
}

// Every user of the split appears in exactly one partition.
void ExpectExactCover(const SplitData& split, const std::vector<std::vector<int32_t>>& parts) {
  std::vector<int> count(split.num_users_total(), 0);
  for (const auto& p : parts) {
    EXPECT_TRUE(std::is_sorted(p.begin(), p.end()));
    for (int32_t u : p) ++count[u];
  }
  for (int32_t u : split.users) EXPECT_EQ(count[u], 1) << "user " << u;
  int64_t total = 0;
  for (const auto& p : parts) total += static_cast<int64_t>(p.size());
  EXPECT_EQ(total, static_cast<int64_t>(split.users.size()));
}

TEST(PartitionTest, IidCoversUsersWithBalancedSizes) {
  SplitData s = MakeSplit();
  PartitionOptions o{PartitionScheme::kIid, 7, 0.5, 1, 11};
  PETAL_ASSERT_OK_AND_ASSIGN(auto parts, PartitionUsers(s, o));
  ASSERT_EQ(parts.size(), 7u);
  ExpectExactCover(s, parts);
  size_t lo = SIZE_MAX;
  size_t hi = 0;
  for (const auto& p : parts) {
    lo = std::min(lo, p.size());
    hi = std::max(hi, p.size());
  }
  EXPECT_LE(hi - lo, 1u);
  PETAL_ASSERT_OK_AND_ASSIGN(auto again, PartitionUsers(s, o));
  EXPECT_EQ(parts, again);
  o.seed = 12;
  PETAL_ASSERT_OK_AND_ASSIGN(auto other, PartitionUsers(s, o));
  ExpectExactCover(s, other);
  EXPECT_NE(parts, other);
}

TEST(PartitionTest, PerUserGivesOnePartitionPerUser) {
  SplitData s = MakeSplit(40);
  PartitionOptions o{PartitionScheme::kPerUser, 0, 0.5, 1, 0};
  PETAL_ASSERT_OK_AND_ASSIGN(auto parts, PartitionUsers(s, o));
  ASSERT_EQ(parts.size(), 40u);
  for (int32_t k = 0; k < 40; ++k) EXPECT_EQ(parts[k], std::vector<int32_t>{k});
  o.num_partitions = 40;
  PETAL_EXPECT_OK(PartitionUsers(s, o));
  o.num_partitions = 39;
  EXPECT_THAT(PartitionUsers(s, o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("number of users (40)")));
}

// Mean over partitions of the share of the partition's most common label.
double MeanDominantShare(const SplitData& s, const std::vector<std::vector<int32_t>>& parts) {
  const std::vector<int32_t> label = DominantGenres(s);
  double sum = 0;
  for (const auto& p : parts) {
    std::map<int32_t, int> counts;
    int best = 0;
    for (int32_t u : p) best = std::max(best, ++counts[label[u]]);
    sum += static_cast<double>(best) / p.size();
  }
  return sum / parts.size();
}

TEST(PartitionTest, DirichletCoversUsersAndSkewsGenresWithSmallAlpha) {
  SplitData s = MakeSplit();
  PartitionOptions skewed{PartitionScheme::kDirichlet, 6, 0.1, 2, 5};
  PartitionOptions mixed{PartitionScheme::kDirichlet, 6, 100.0, 2, 5};
  PETAL_ASSERT_OK_AND_ASSIGN(auto a, PartitionUsers(s, skewed));
  PETAL_ASSERT_OK_AND_ASSIGN(auto b, PartitionUsers(s, mixed));
  ExpectExactCover(s, a);
  ExpectExactCover(s, b);
  for (const auto& p : a) EXPECT_GE(p.size(), 2u);
  EXPECT_GT(MeanDominantShare(s, a), MeanDominantShare(s, b) + 0.1);
  PETAL_ASSERT_OK_AND_ASSIGN(auto again, PartitionUsers(s, skewed));
  EXPECT_EQ(a, again);
}

TEST(PartitionTest, DominantGenreIsTheMostFrequentTrainingGenre) {
  SplitData s = MakeSplit(50);
  const std::vector<int32_t> label = DominantGenres(s);
  const Catalog& c = *s.catalog;
  std::vector<std::vector<int>> counts(50, std::vector<int>(c.num_genres, 0));
  for (size_t r = 0; r < s.train.size(); ++r) {
    for (int32_t g : c.item_genres.Indices(s.train.items[r])) ++counts[s.train.users[r]][g];
  }
  for (int32_t u = 0; u < 50; ++u) {
    const auto best = std::max_element(counts[u].begin(), counts[u].end()) - counts[u].begin();
    EXPECT_EQ(label[u], best);
  }
}

TEST(PartitionTest, RejectsBadOptions) {
  SplitData s = MakeSplit(30);
  EXPECT_THAT(PartitionUsers(s, {PartitionScheme::kIid, 0, 0.5, 1, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_partitions")));
  EXPECT_THAT(PartitionUsers(s, {PartitionScheme::kIid, 31, 0.5, 1, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[1, 30]")));
  EXPECT_THAT(PartitionUsers(s, {PartitionScheme::kDirichlet, 3, 0.0, 1, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("alpha")));
  EXPECT_THAT(PartitionUsers(s, {PartitionScheme::kDirichlet, 3, 0.5, 11, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min_partition_size")));
  EXPECT_THAT(ParsePartitionScheme("random"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("iid, dirichlet, per_user")));
}

}  // namespace
}  // namespace petal::model
