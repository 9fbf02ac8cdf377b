#include "model/split.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <set>
#include <tuple>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace petal::model {
namespace {

using ::petal::model::testing::TempDir;
using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Dataset Synthetic(int users = 150, int items = 200) {
  SyntheticOptions o;
  o.num_users = users;
  o.num_items = items;
  o.mean_interactions = 25;
  o.tag_rate = 0.2;
  return GenerateSynthetic(o).value();
}

// A hand-made dataset: 3 users, 5 items, one tag.
Dataset Tiny() {
  Catalog c;
  c.name = "tiny";
  for (int i = 0; i < 5; ++i) {
    c.item_ids.push_back(std::to_string(i));
    c.item_titles.emplace_back();
    c.item_genres.AddRow({}, {});
    c.item_genome.AddRow({}, {});
  }
  c.tag_names = {"t"};
  Interactions x;
  x.Add(0, 0, 5, 10);
  x.Add(0, 1, 4, 30);  // latest of user 0 (tie with the next row: the later row wins)
  x.Add(0, 2, 3, 30);
  x.Add(1, 3, 2, 5);   // user 1 has a single interaction: no test case
  x.Add(2, 4, 1, 7);
  x.Add(2, 0, 1, 9);
  x.tag_applications = {{0, 2, 0, 31}, {0, 1, 0, 32}, {2, 4, 0, 8}};
  RebuildItemTags(c, x.tag_applications);
  c.BuildIndex();
  Dataset ds;
  ds.catalog = std::make_shared<const Catalog>(std::move(c));
  ds.user_ids = std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"a", "b", "c"});
  ds.interactions = std::move(x);
  return ds;
}

TEST(LeaveOneOutTest, HoldsOutTheLatestInteractionPerUser) {
  Dataset ds = Tiny();
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData s, LeaveOneOut(ds, 2, 1));
  EXPECT_EQ(s.protocol, "leave_one_out");
  ASSERT_EQ(s.ranking.size(), 2u);
  EXPECT_EQ(s.ranking[0].user, 0);
  EXPECT_EQ(s.ranking[0].item, 2);  // ts 30 tie: the later row
  EXPECT_EQ(s.ranking[1].user, 2);
  EXPECT_EQ(s.ranking[1].item, 0);
  EXPECT_THAT(s.test.items, ElementsAre(2, 0));
  EXPECT_THAT(s.train.items, ElementsAre(0, 1, 3, 4));
  EXPECT_THAT(s.users, ElementsAre(0, 1, 2));
  // Negatives: never-seen items only. User 0 saw 0, 1, 2: only 3 and 4 remain.
  std::vector<int32_t> negs = s.ranking[0].negatives;
  std::sort(negs.begin(), negs.end());
  EXPECT_THAT(negs, ElementsAre(3, 4));
  // The tag user 0 applied to the held-out item moved to test and left the catalog.
  EXPECT_THAT(s.test.tag_applications, ElementsAre(TagApplication{0, 2, 0, 31}));
  EXPECT_EQ(s.train.tag_applications.size(), 2u);
  EXPECT_TRUE(s.catalog->item_tags.Indices(2).empty());
  EXPECT_EQ(ds.catalog->item_tags.Indices(2).size(), 1u);  // the dataset's catalog is untouched
  EXPECT_EQ(s.catalog->item_tags.Indices(1).size(), 1u);
}

TEST(LeaveOneOutTest, InvariantsOnSyntheticData) {
  Dataset ds = Synthetic();
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData s, LeaveOneOut(ds, 99, 7));
  EXPECT_EQ(s.train.size() + s.test.size(), ds.interactions.size());
  EXPECT_EQ(s.ranking.size(), static_cast<size_t>(ds.num_users()));
  EXPECT_EQ(s.test.size(), s.ranking.size());
  std::vector<std::set<int32_t>> seen(ds.num_users());
  std::vector<int64_t> latest(ds.num_users(), INT64_MIN);
  for (size_t r = 0; r < ds.interactions.size(); ++r) {
    seen[ds.interactions.users[r]].insert(ds.interactions.items[r]);
    latest[ds.interactions.users[r]] =
        std::max(latest[ds.interactions.users[r]], ds.interactions.timestamps[r]);
  }
  for (size_t r = 0; r < s.test.size(); ++r) {
    EXPECT_EQ(s.test.timestamps[r], latest[s.test.users[r]]);
  }
  for (const RankingCase& c : s.ranking) {
    ASSERT_EQ(c.negatives.size(), 99u);
    std::set<int32_t> distinct(c.negatives.begin(), c.negatives.end());
    EXPECT_EQ(distinct.size(), 99u);
    for (int32_t i : c.negatives) EXPECT_FALSE(seen[c.user].count(i)) << "user " << c.user;
  }
  // Deterministic; another seed gives other negatives but the same held-out items.
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData again, LeaveOneOut(ds, 99, 7));
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData other, LeaveOneOut(ds, 99, 8));
  for (size_t k = 0; k < s.ranking.size(); ++k) {
    EXPECT_EQ(s.ranking[k].negatives, again.ranking[k].negatives);
    EXPECT_EQ(s.ranking[k].item, other.ranking[k].item);
  }
  EXPECT_NE(s.ranking[0].negatives, other.ranking[0].negatives);
  EXPECT_THAT(LeaveOneOut(ds, -1, 7), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(KFoldTest, FoldsPartitionTheInteractions) {
  Dataset ds = Synthetic();
  const size_t n = ds.interactions.size();
  std::multiset<std::tuple<int32_t, int32_t, int64_t>> all;
  for (size_t r = 0; r < n; ++r) {
    all.insert({ds.interactions.users[r], ds.interactions.items[r], ds.interactions.timestamps[r]});
  }
  std::multiset<std::tuple<int32_t, int32_t, int64_t>> tests;
  for (int fold = 0; fold < 5; ++fold) {
    PETAL_ASSERT_OK_AND_ASSIGN(SplitData s, KFold(ds, 5, fold, 3));
    EXPECT_EQ(s.train.size() + s.test.size(), n);
    EXPECT_NEAR(static_cast<double>(s.test.size()), n / 5.0, 1.0);
    EXPECT_TRUE(s.ranking.empty());
    for (size_t r = 0; r < s.test.size(); ++r) {
      tests.insert({s.test.users[r], s.test.items[r], s.test.timestamps[r]});
    }
    // Tag applications follow their (user, item) pair.
    std::set<std::pair<int32_t, int32_t>> test_pairs;
    for (size_t r = 0; r < s.test.size(); ++r) test_pairs.insert({s.test.users[r], s.test.items[r]});
    for (const TagApplication& a : s.test.tag_applications) {
      EXPECT_TRUE(test_pairs.count({a.user, a.item}));
    }
    EXPECT_EQ(s.test.tag_applications.size() + s.train.tag_applications.size(),
              ds.interactions.tag_applications.size());
  }
  EXPECT_EQ(tests, all);  // every interaction is tested exactly once
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData a, KFold(ds, 5, 2, 3));
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData b, KFold(ds, 5, 2, 3));
  EXPECT_EQ(a.test.items, b.test.items);
  EXPECT_THAT(KFold(ds, 1, 0, 3), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_folds")));
  EXPECT_THAT(KFold(ds, 5, 5, 3), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fold")));
}

TEST(MovieLens100KFoldTest, ReadsBaseAndTestInTheDatasetSpace) {
  Dataset ds = Tiny();
  TempDir dir("folds");
  dir.Write("u1.base", "a\t0\t5\t10\nb\t3\t2\t5\n");
  dir.Write("u1.test", "c\t4\t1\t7\n");
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData s, MovieLens100KFold(ds, dir.path(), "u1"));
  EXPECT_EQ(s.protocol, "ml100k u1");
  EXPECT_THAT(s.train.users, ElementsAre(0, 1));
  EXPECT_THAT(s.test.items, ElementsAre(4));
  dir.Write("u2.base", "a\t0\t5\t10\nzz\t3\t2\t5\n");
  dir.Write("u2.test", "");
  EXPECT_THAT(MovieLens100KFold(ds, dir.path(), "u2"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("u2.base:2: unknown user 'zz'")));
  dir.Write("u3.base", "a\t9\t5\t10\n");
  EXPECT_THAT(MovieLens100KFold(ds, dir.path(), "u3"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("u3.base:1: unknown item '9'")));
  EXPECT_THAT(MovieLens100KFold(ds, dir.path(), "u4"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(MovieLens100KFold(ds, dir.path(), "u9"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("u1..u5")));
}

TEST(RestrictToUsersTest, PartsReassembleTheSplit) {
  Dataset ds = Synthetic();
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData s, LeaveOneOut(ds, 20, 1));
  std::vector<int32_t> even;
  std::vector<int32_t> odd;
  for (int32_t u = 0; u < ds.num_users(); ++u) (u % 2 ? odd : even).push_back(u);
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData a, RestrictToUsers(s, even));
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData b, RestrictToUsers(s, odd));
  EXPECT_EQ(a.catalog.get(), s.catalog.get());  // shared, not copied
  EXPECT_EQ(a.users, even);
  EXPECT_EQ(a.train.size() + b.train.size(), s.train.size());
  EXPECT_EQ(a.test.size() + b.test.size(), s.test.size());
  EXPECT_EQ(a.ranking.size() + b.ranking.size(), s.ranking.size());
  EXPECT_EQ(a.train.tag_applications.size() + b.train.tag_applications.size(),
            s.train.tag_applications.size());
  for (int32_t u : a.train.users) EXPECT_EQ(u % 2, 0);
  for (const RankingCase& c : b.ranking) {
    EXPECT_EQ(c.user % 2, 1);
    EXPECT_EQ(c.negatives, s.ranking[c.user].negatives);
  }
  EXPECT_THAT(RestrictToUsers(s, std::vector<int32_t>{1, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
  EXPECT_THAT(RestrictToUsers(s, std::vector<int32_t>{-1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside")));
}

TEST(SplitOffColdUsersTest, ColdAndWarmUsersPartitionTheSplit) {
  const Dataset ds = Synthetic();
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData split, LeaveOneOut(ds, 20, 1));
  PETAL_ASSERT_OK_AND_ASSIGN(ColdStartSplit parts, SplitOffColdUsers(split, 0.1, 7));
  EXPECT_EQ(parts.cold.users.size(), 15u);  // round(0.1 * 150 users with a case)
  EXPECT_EQ(parts.warm.users.size() + parts.cold.users.size(), split.users.size());
  std::vector<int32_t> all;
  std::merge(parts.warm.users.begin(), parts.warm.users.end(), parts.cold.users.begin(),
             parts.cold.users.end(), std::back_inserter(all));
  EXPECT_EQ(all, split.users);
  EXPECT_EQ(parts.warm.catalog.get(), split.catalog.get());
  EXPECT_EQ(parts.cold.catalog.get(), split.catalog.get());
  EXPECT_EQ(parts.warm.train.size() + parts.cold.train.size(), split.train.size());
  EXPECT_EQ(parts.warm.ranking.size() + parts.cold.ranking.size(), split.ranking.size());
  EXPECT_EQ(parts.warm.train.tag_applications.size() + parts.cold.train.tag_applications.size(),
            split.train.tag_applications.size());
  const std::set<int32_t> cold(parts.cold.users.begin(), parts.cold.users.end());
  for (int32_t u : parts.warm.train.users) EXPECT_FALSE(cold.count(u)) << u;
  for (const RankingCase& c : parts.warm.ranking) EXPECT_FALSE(cold.count(c.user)) << c.user;
  for (const RankingCase& c : parts.cold.ranking) EXPECT_TRUE(cold.count(c.user)) << c.user;
  EXPECT_EQ(parts.cold.ranking.size(), 15u);
  EXPECT_THAT(parts.cold.protocol, HasSubstr("cold users"));

  // Deterministic from the seed; another seed picks other users.
  PETAL_ASSERT_OK_AND_ASSIGN(ColdStartSplit again, SplitOffColdUsers(split, 0.1, 7));
  EXPECT_EQ(again.cold.users, parts.cold.users);
  PETAL_ASSERT_OK_AND_ASSIGN(ColdStartSplit other, SplitOffColdUsers(split, 0.1, 8));
  EXPECT_NE(other.cold.users, parts.cold.users);
}

TEST(SplitOffColdUsersTest, RejectsFractionsThatLeaveAGroupEmpty) {
  const Dataset ds = Synthetic();
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData split, LeaveOneOut(ds, 20, 1));
  for (double f : {0.0, 1.0, -0.5, std::nan("")}) {
    EXPECT_THAT(SplitOffColdUsers(split, f, 1),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fraction"))) << f;
  }
  EXPECT_THAT(SplitOffColdUsers(split, 0.001, 1),  // rounds to no cold user
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-empty")));
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData kfold, KFold(ds, 5, 0, 1));  // no ranking cases
  EXPECT_THAT(SplitOffColdUsers(kfold, 0.2, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-empty")));
}

TEST(NoSplitTest, EverythingIsTraining) {
  Dataset ds = Tiny();
  SplitData s = NoSplit(ds);
  EXPECT_EQ(s.train.size(), ds.interactions.size());
  EXPECT_TRUE(s.test.empty());
  EXPECT_EQ(s.catalog.get(), ds.catalog.get());
}

}  // namespace
}  // namespace petal::model
