// Tests on the real MovieLens files. They read PETAL_DATA_DIR and FAIL (not
// skip) when it is unset, so a CI run that forgets the data notices.
#include <cstdlib>
#include <filesystem>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/experiment.h"
#include "model/workload.h"

namespace petal::model {
namespace {

std::string DataDir() {
  const char* dir = std::getenv("PETAL_DATA_DIR");
  return dir ? dir : "";
}

class MovieLensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(DataDir().empty())
        << "PETAL_DATA_DIR is not set: point it at a folder with ml-100k/ and ml-latest-small/ "
           "(scripts/test.sh excludes the 'movielens' label when it is unset)";
  }
};

TEST_F(MovieLensTest, Ml100kLoadsCompletely) {
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadMovieLens100K(DataDir() + "/ml-100k"));
  EXPECT_EQ(ds.num_users(), 943);
  EXPECT_EQ(ds.catalog->num_items(), 1682);
  EXPECT_EQ(ds.interactions.size(), 100000u);
  EXPECT_EQ(ds.catalog->num_genres, 19);
  EXPECT_EQ(ds.catalog->num_tags(), 19);
  EXPECT_EQ(ds.stats.num_duplicate_ratings, 0);
  EXPECT_EQ(ds.catalog->tag_names[0], "unknown");
  EXPECT_EQ(ds.catalog->item_titles[0], "Toy Story (1995)");
  // Every user rated at least 20 movies (the dataset's guarantee).
  std::vector<int> count(943, 0);
  for (int32_t u : ds.interactions.users) ++count[u];
  EXPECT_GE(*std::min_element(count.begin(), count.end()), 20);
}

TEST_F(MovieLensTest, Ml100kFoldsAndLeaveOneOut) {
  const std::string dir = DataDir() + "/ml-100k";
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadMovieLens100K(dir));
  for (int k = 1; k <= 5; ++k) {
    PETAL_ASSERT_OK_AND_ASSIGN(SplitData s, MovieLens100KFold(ds, dir, "u" + std::to_string(k)));
    EXPECT_EQ(s.train.size(), 80000u);
    EXPECT_EQ(s.test.size(), 20000u);
  }
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData loo, LeaveOneOut(ds, 99, 1));
  EXPECT_EQ(loo.ranking.size(), 943u);
  EXPECT_EQ(loo.train.size(), 100000u - 943u);
  for (const RankingCase& c : loo.ranking) EXPECT_EQ(c.negatives.size(), 99u);
}

TEST_F(MovieLensTest, MlLatestSmallLoadsGenresAndUserTags) {
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadMovieLensLatest(DataDir() + "/ml-latest-small"));
  EXPECT_EQ(ds.catalog->name, "ml-latest-small");
  EXPECT_EQ(ds.num_users(), 610);
  EXPECT_EQ(ds.catalog->num_items(), 9742);
  EXPECT_EQ(ds.interactions.size(), 100836u);
  EXPECT_EQ(ds.interactions.tag_applications.size(), 3683u);
  EXPECT_EQ(ds.catalog->num_genres, 19);  // 20 labels minus "(no genres listed)"
  EXPECT_GT(ds.catalog->num_tags(), 1000);
  ASSERT_TRUE(ds.catalog->FindItem("1").has_value());
  EXPECT_EQ(ds.catalog->item_titles[*ds.catalog->FindItem("1")], "Toy Story (1995)");
  // Half-star ratings survive.
  EXPECT_NE(std::find(ds.interactions.ratings.begin(), ds.interactions.ratings.end(), 0.5f),
            ds.interactions.ratings.end());
}

TEST_F(MovieLensTest, MlLatestSmallSplitsForBothProtocols) {
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadMovieLensLatest(DataDir() + "/ml-latest-small"));
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData loo, LeaveOneOut(ds, 99, 1));
  EXPECT_EQ(loo.ranking.size(), 610u);  // every user rated at least 20 movies
  EXPECT_EQ(loo.train.size(), 100836u - 610u);
  for (const RankingCase& c : loo.ranking) EXPECT_EQ(c.negatives.size(), 99u);
  // The seeded 5-fold rating protocol: the test folds partition the ratings.
  size_t test_total = 0;
  for (int32_t fold = 0; fold < 5; ++fold) {
    PETAL_ASSERT_OK_AND_ASSIGN(SplitData s, KFold(ds, 5, fold, 1));
    EXPECT_EQ(s.train.size() + s.test.size(), 100836u);
    EXPECT_NEAR(static_cast<double>(s.test.size()), 100836.0 / 5, 1.0);
    test_total += s.test.size();
  }
  EXPECT_EQ(test_total, 100836u);
}

TEST_F(MovieLensTest, ShortTrainingOnMl100kBeatsRandom) {
  DataConfig data;
  data.source = "ml-100k";
  SplitConfig split;
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadDataset(data));
  PETAL_ASSERT_OK_AND_ASSIGN(SplitData s, MakeSplit(ds, data, split));
  TagNcfOptions o;
  o.gmf_dim = 16;
  o.mlp_embedding_dim = 16;
  o.tag_dim = 8;
  o.mlp_layers = {32, 16};
  PETAL_ASSERT_OK_AND_ASSIGN(auto w, LocalWorkload::Create(std::move(s), o, TrainConfig(), 1, 1));
  TrainConfig c;
  c.epochs = 1;
  c.batch_size = 512;
  c.lr = 0.003;
  PETAL_ASSERT_OK(w->Train(c).status());
  PETAL_ASSERT_OK_AND_ASSIGN(EvalStats e, w->Evaluate(EvalConfig{.full_catalog = false}));
  EXPECT_EQ(e.ranking_cases, 943);
  EXPECT_GT(e.hit_rate, 0.3);
}

TEST_F(MovieLensTest, ClientPartitionsOfMlLatestCoverAllUsers) {
  DataConfig data;
  data.source = "ml-latest";
  SplitConfig split;
  PartitionOptions p{PartitionScheme::kDirichlet, 5, 0.5, 1, 1};
  int32_t users = 0;
  for (int32_t id = 0; id < 5; ++id) {
    PETAL_ASSERT_OK_AND_ASSIGN(SplitData mine, LoadClientData(data, split, p, id));
    users += static_cast<int32_t>(mine.users.size());
  }
  EXPECT_EQ(users, 610);
}

}  // namespace
}  // namespace petal::model
