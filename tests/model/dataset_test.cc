#include "model/dataset.h"

#include <algorithm>
#include <cmath>

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

// One u.item line: 19 genre flags, `genres` set.
std::string ItemLine(int id, const std::string& title, std::vector<int> genres) {
  std::string line = std::to_string(id) + "|" + title + "|01-Jan-1995||http://x";
  for (int g = 0; g < 19; ++g) {
    line += std::find(genres.begin(), genres.end(), g) != genres.end() ? "|1" : "|0";
  }
  return line + "\n";
}

// A tiny ML-100K folder: 3 items, 3 users (ids 10, 2, 7 so that order matters).
void WriteMl100k(const TempDir& dir, const std::string& data) {
  dir.Write("u.item", ItemLine(1, "Toy Story (1995)", {3, 4, 5}) + ItemLine(2, "GoldenEye (1995)", {1, 2, 16}) +
                          ItemLine(3, "Four Rooms (1995)", {16}));
  dir.Write("u.genre",
            "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\n"
            "Documentary|7\nDrama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\n"
            "Romance|14\nSci-Fi|15\nThriller|16\nWar|17\nWestern|18\n\n");
  dir.Write("u.data", data);
}

TEST(LoadMovieLens100KTest, LoadsCatalogAndInteractions) {
  TempDir dir("ml100k");
  WriteMl100k(dir, "10\t1\t5\t881250949\n2\t2\t3\t891717742\n7\t3\t1\t878887116\n2\t1\t4\t880606923\n");
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadMovieLens100K(dir.path()));
  const Catalog& c = *ds.catalog;
  EXPECT_EQ(c.name, "ml-100k");
  EXPECT_EQ(c.num_items(), 3);
  EXPECT_EQ(c.num_genres, 19);
  EXPECT_EQ(c.num_tags(), 19);
  EXPECT_EQ(c.tag_names[3], "Animation");
  EXPECT_EQ(c.item_titles[1], "GoldenEye (1995)");
  EXPECT_THAT(c.item_genres.Indices(0), ElementsAre(3, 4, 5));
  EXPECT_THAT(c.item_tags.Indices(1), ElementsAre(1, 2, 16));
  EXPECT_THAT(c.item_tags.Weights(1), ElementsAre(1.0f, 1.0f, 1.0f));
  EXPECT_EQ(c.FindItem("3"), 2);
  EXPECT_EQ(c.FindItem("4"), std::nullopt);
  EXPECT_EQ(c.FindGenre("Thriller"), 16);
  // Users in numeric id order, whatever the file order.
  EXPECT_THAT(*ds.user_ids, ElementsAre("2", "7", "10"));
  ASSERT_EQ(ds.interactions.size(), 4u);
  EXPECT_THAT(ds.interactions.users, ElementsAre(2, 0, 1, 0));
  EXPECT_THAT(ds.interactions.items, ElementsAre(0, 1, 2, 0));
  EXPECT_THAT(ds.interactions.ratings, ElementsAre(5.0f, 3.0f, 1.0f, 4.0f));
  EXPECT_EQ(ds.interactions.timestamps[1], 891717742);
  EXPECT_EQ(ds.stats.num_ratings, 4);
  EXPECT_EQ(ds.stats.num_duplicate_ratings, 0);
}

TEST(LoadMovieLens100KTest, KeepsDuplicateRatingsAndCountsThem) {
  TempDir dir("ml100k");
  WriteMl100k(dir, "1\t1\t5\t1\n1\t1\t4\t2\n");
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadMovieLens100K(dir.path()));
  EXPECT_EQ(ds.interactions.size(), 2u);
  EXPECT_EQ(ds.stats.num_duplicate_ratings, 1);
}

TEST(LoadMovieLens100KTest, UsesBuiltInGenreNamesWithoutUGenre) {
  TempDir dir("ml100k");
  WriteMl100k(dir, "1\t1\t5\t1\n");
  std::filesystem::remove(dir.file("u.genre"));
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadMovieLens100K(dir.path()));
  EXPECT_EQ(ds.catalog->tag_names[15], "Sci-Fi");
}

TEST(LoadMovieLens100KTest, MissingFilesAreNotFoundNamingThePath) {
  TempDir dir("ml100k");
  EXPECT_THAT(LoadMovieLens100K(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("u.item")));
  WriteMl100k(dir, "");
  std::filesystem::remove(dir.file("u.data"));
  EXPECT_THAT(LoadMovieLens100K(dir.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("u.data")));
}

TEST(LoadMovieLens100KTest, MalformedLinesNameFileAndLine) {
  struct Case {
    std::string data;
    std::string message;
  };
  const Case cases[] = {
      {"1\t1\t5\t1\n1\t2\t5\n", "u.data:2: expected 4 columns separated by '\\t', got 3"},
      {"1\t1\t5\t1\n\n1\t9\t5\t1\n", "u.data:3: unknown item '9'"},
      {"1\t1\t6\t1\n", "u.data:1: rating 6 is outside [1, 5]"},
      {"1\t1\t0\t1\n", "u.data:1: rating 0 is outside [1, 5]"},
      {"1\t1\tfive\t1\n", "u.data:1: column 3 (rating): 'five' is not a finite number"},
      {"1\t1\t5\tyesterday\n", "u.data:1: column 4 (timestamp): 'yesterday' is not an integer"},
      {"x\t1\t5\t1\n", "u.data:1: column 1 (user id): 'x' is not an integer"},
  };
  for (const Case& c : cases) {
    TempDir dir("ml100k");
    WriteMl100k(dir, c.data);
    EXPECT_THAT(LoadMovieLens100K(dir.path()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.data;
  }
}

TEST(LoadMovieLens100KTest, MalformedItemFileIsAnError) {
  TempDir dir("ml100k");
  WriteMl100k(dir, "1\t1\t5\t1\n");
  dir.Write("u.item", ItemLine(1, "A", {1}) + "2|B|x||y|0|0\n");
  EXPECT_THAT(LoadMovieLens100K(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("u.item:2: expected 24 columns separated by '|', got 7")));
  std::string bad_flag = ItemLine(1, "A", {1});
  bad_flag[bad_flag.size() - 2] = '2';
  dir.Write("u.item", bad_flag);
  EXPECT_THAT(LoadMovieLens100K(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not 0 or 1")));
  dir.Write("u.item", ItemLine(1, "A", {1}) + ItemLine(1, "B", {2}));
  EXPECT_THAT(LoadMovieLens100K(dir.path()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("u.item:2: duplicate movie id 1")));
}

TEST(LoadMovieLens100KTest, RatingRangeCanBeConfigured) {
  TempDir dir("ml100k");
  WriteMl100k(dir, "1\t1\t5\t1\n");
  LoadOptions options;
  options.max_rating = 4.0;
  EXPECT_THAT(LoadMovieLens100K(dir.path(), options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside [1, 4]")));
}

void WriteLatest(const TempDir& dir) {
  dir.Write("movies.csv",
            "movieId,title,genres\n"
            "1,Toy Story (1995),Adventure|Animation|Children\n"
            "2,\"American President, The (1995)\",Comedy|Drama|Romance\n"
            "5,Unknown Film (2018),(no genres listed)\n");
  dir.Write("ratings.csv",
            "userId,movieId,rating,timestamp\n"
            "1,1,4.0,964982703\n"
            "1,2,3.5,964981247\n"
            "15,5,0.5,964982224\n"
            "3,1,5.0,964983815\n");
  dir.Write("tags.csv",
            "userId,movieId,tag,timestamp\n"
            "3,1,Pixar,1445714994\n"
            "1,1,pixar ,1445714996\n"
            "1,2,\"politics, satire\",1445715000\n"
            "20,2,funny,1445715001\n");
}

TEST(LoadMovieLensLatestTest, LoadsGenresTagsAndUsers) {
  TempDir dir("ml-latest-small");
  WriteLatest(dir);
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadMovieLensLatest(dir.path()));
  const Catalog& c = *ds.catalog;
  EXPECT_EQ(c.name, dir.path().substr(dir.path().rfind('/') + 1));
  EXPECT_EQ(c.num_items(), 3);
  EXPECT_EQ(c.item_titles[1], "American President, The (1995)");
  // Genres in order of first use; "(no genres listed)" means none.
  EXPECT_THAT(std::vector<std::string>(c.tag_names.begin(), c.tag_names.begin() + c.num_genres),
              ElementsAre("Adventure", "Animation", "Children", "Comedy", "Drama", "Romance"));
  EXPECT_EQ(c.item_genres.Indices(2).size(), 0u);
  // Free tags lower-cased and trimmed: "Pixar" and "pixar " are one tag.
  ASSERT_TRUE(c.FindTag("PIXAR").has_value());
  const int32_t pixar = *c.FindTag("pixar");
  EXPECT_EQ(c.num_tags(), c.num_genres + 3);
  EXPECT_TRUE(c.FindTag("politics, satire").has_value());
  // Item 1: its three genres (weight 1) and pixar applied twice (log2(1 + 2)).
  EXPECT_THAT(c.item_tags.Indices(0), ElementsAre(0, 1, 2, pixar));
  EXPECT_FLOAT_EQ(c.item_tags.Weights(0)[3], static_cast<float>(std::log2(3.0)));
  // Users from ratings and tags, numeric order; user 20 only tagged.
  EXPECT_THAT(*ds.user_ids, ElementsAre("1", "3", "15", "20"));
  EXPECT_EQ(ds.interactions.size(), 4u);
  EXPECT_FLOAT_EQ(ds.interactions.ratings[2], 0.5f);
  ASSERT_EQ(ds.interactions.tag_applications.size(), 4u);
  EXPECT_EQ(ds.interactions.tag_applications[0], (TagApplication{1, 0, pixar, 1445714994}));
  EXPECT_EQ(ds.interactions.tag_applications[3].user, 3);
}

TEST(LoadMovieLensLatestTest, ReadsTheTagGenomeAboveTheThreshold) {
  TempDir dir("ml-20m");
  WriteLatest(dir);
  dir.Write("genome-tags.csv", "tagId,tag\n1,pixar animation\n2,funny\n");
  dir.Write("genome-scores.csv", "movieId,tagId,relevance\n1,1,0.9\n1,2,0.2\n2,2,0.75\n");
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadMovieLensLatest(dir.path()));
  const Catalog& c = *ds.catalog;
  const int32_t pixar_animation = *c.FindTag("pixar animation");
  const int32_t funny = *c.FindTag("funny");
  EXPECT_EQ(ds.stats.num_genome_scores_total, 3);
  EXPECT_EQ(ds.stats.num_genome_scores_kept, 2);
  EXPECT_THAT(c.item_genome.Indices(0), ElementsAre(pixar_animation));
  EXPECT_THAT(c.item_genome.Weights(0), ElementsAre(0.9f));
  // Item 2: genome "funny" (0.75) plus one application of the same tag (log2(2) = 1).
  auto tags = c.item_tags.Indices(1);
  auto weights = c.item_tags.Weights(1);
  const auto at = std::find(tags.begin(), tags.end(), funny) - tags.begin();
  ASSERT_LT(at, static_cast<long>(tags.size()));
  EXPECT_FLOAT_EQ(weights[at], 1.75f);

  LoadOptions no_genome;
  no_genome.load_genome = false;
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset plain, LoadMovieLensLatest(dir.path(), no_genome));
  EXPECT_FALSE(plain.catalog->FindTag("pixar animation").has_value());
}

TEST(LoadMovieLensLatestTest, TagsFileIsOptional) {
  TempDir dir("ml");
  WriteLatest(dir);
  std::filesystem::remove(dir.file("tags.csv"));
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadMovieLensLatest(dir.path()));
  EXPECT_TRUE(ds.interactions.tag_applications.empty());
  EXPECT_EQ(ds.catalog->num_tags(), ds.catalog->num_genres);
}

TEST(LoadMovieLensLatestTest, ErrorsNameFileAndLine) {
  struct Case {
    std::string file;
    std::string contents;
    std::string message;
  };
  const Case cases[] = {
      {"ratings.csv", "user,movie,rating,ts\n1,1,4,1\n",
       "ratings.csv:1: expected the header 'userId,movieId,rating,timestamp'"},
      {"ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,99,4.0,1\n",
       "ratings.csv:3: unknown item '99'"},
      {"ratings.csv", "userId,movieId,rating,timestamp\n1,1,5.5,1\n",
       "ratings.csv:2: rating 5.5 is outside [0.5, 5]"},
      {"ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0\n",
       "ratings.csv:2: expected 4 columns separated by ',', got 3"},
      {"ratings.csv", "", "ratings.csv: empty file"},
      {"tags.csv", "userId,movieId,tag,timestamp\n1,7,funny,1\n", "tags.csv:2: unknown item '7'"},
      {"tags.csv", "userId,movieId,tag,timestamp\n1,1,\"unterminated,1\n",
       "tags.csv:2: unterminated quoted field"},
      {"tags.csv", "userId,movieId,tag,timestamp\n1,1,  ,1\n", "tags.csv:2: empty tag"},
      {"movies.csv", "movieId,title,genres\n1,A,Comedy\nx,B,Drama\n",
       "movies.csv:3: column 1 (movieId): 'x' is not an integer"},
      {"movies.csv", "movieId,title,genres\n1,A,Comedy||Drama\n", "movies.csv:2: empty genre name"},
      {"movies.csv", "movieId,title,genres\n1,A,Comedy\n1,B,Drama\n",
       "movies.csv:3: duplicate movieId 1"},
      {"movies.csv", "movieId,title,genres\n1,A\n", "movies.csv:2: expected 3 columns"},
      {"movies.csv", "movieId,title\n1,A\n", "movies.csv:1: expected the header"},
      {"ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\nu7,1,4.0,1\n",
       "ratings.csv:3: column 1 (userId): 'u7' is not an integer"},
      {"ratings.csv", "userId,movieId,rating,timestamp\n1,1,nan,1\n",
       "ratings.csv:2: column 3 (rating): 'nan' is not a finite number"},
      {"ratings.csv", "userId,movieId,rating,timestamp\n1,1,0.0,1\n",
       "ratings.csv:2: rating 0 is outside [0.5, 5]"},
      {"ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1,extra\n",
       "ratings.csv:2: expected 4 columns separated by ',', got 5"},
      {"tags.csv", "userId,movieId,tag,timestamp\n1,1,funny\n",
       "tags.csv:2: expected 4 columns separated by ',', got 3"},
      {"tags.csv", "userId,movieId,tag,timestamp\n1,1,funny,later\n",
       "tags.csv:2: column 4 (timestamp): 'later' is not an integer"},
      {"tags.csv", "user,movie,tag,time\n1,1,funny,1\n",
       "tags.csv:1: expected the header 'userId,movieId,tag,timestamp'"},
  };
  for (const Case& c : cases) {
    TempDir dir("ml");
    WriteLatest(dir);
    dir.Write(c.file, c.contents);
    EXPECT_THAT(LoadMovieLensLatest(dir.path()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.file << ": " << c.contents;
  }
  TempDir empty("ml");
  EXPECT_THAT(LoadMovieLensLatest(empty.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("movies.csv")));
  TempDir no_ratings("ml");
  WriteLatest(no_ratings);
  std::filesystem::remove(no_ratings.file("ratings.csv"));
  EXPECT_THAT(LoadMovieLensLatest(no_ratings.path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("ratings.csv")));
}

TEST(LoadMovieLensLatestTest, MalformedGenomeFilesNameFileAndLine) {
  struct Case {
    std::string tags;
    std::string scores;
    std::string message;
  };
  const std::string good_tags = "tagId,tag\n1,pixar animation\n";
  const std::string good_scores = "movieId,tagId,relevance\n1,1,0.9\n";
  const Case cases[] = {
      {good_tags, "movieId,tagId,relevance\n1,1,0.9\n1,7,0.9\n",
       "genome-scores.csv:3: unknown tagId 7"},
      {good_tags, "movieId,tagId,relevance\n1,1,1.5\n",
       "genome-scores.csv:2: relevance 1.5 is outside [0, 1]"},
      {good_tags, "movieId,tagId,relevance\n99,1,0.5\n", "genome-scores.csv:2: unknown item '99'"},
      {good_tags, "movieId,tagId,relevance\n1,1\n",
       "genome-scores.csv:2: expected 3 columns separated by ',', got 2"},
      {"tagId,tag\n1,a\n1,b\n", good_scores, "genome-tags.csv:3: duplicate tagId 1"},
      {"tagId,tag\n1, \n", good_scores, "genome-tags.csv:2: empty tag"},
  };
  for (const Case& c : cases) {
    TempDir dir("ml-20m");
    WriteLatest(dir);
    dir.Write("genome-tags.csv", c.tags);
    dir.Write("genome-scores.csv", c.scores);
    EXPECT_THAT(LoadMovieLensLatest(dir.path()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.tags << c.scores;
  }
}

TEST(LoadCsvTest, LoadsInteractionsWithUserTags) {
  TempDir dir("csv");
  const std::string path = dir.Write(
      "reviews.csv",
      "user,item,rating,timestamp,tags\n"
      "alice,B0002,5,100,gift|Durable\n"
      "bob,B0001,3,101,\n"
      "alice,B0001,4,102\n");
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadCsv(path));
  const Catalog& c = *ds.catalog;
  EXPECT_EQ(c.name, "reviews");
  EXPECT_THAT(c.item_ids, ElementsAre("B0001", "B0002"));
  EXPECT_EQ(c.num_genres, 0);
  EXPECT_THAT(*ds.user_ids, ElementsAre("alice", "bob"));
  EXPECT_THAT(ds.interactions.items, ElementsAre(1, 0, 0));
  ASSERT_EQ(ds.interactions.tag_applications.size(), 2u);
  EXPECT_EQ(c.tag_names[ds.interactions.tag_applications[1].tag], "durable");
  // Applied tags become item tags (log2(1 + 1) = 1).
  EXPECT_EQ(c.item_tags.Indices(1).size(), 2u);
  EXPECT_TRUE(c.item_tags.Indices(0).empty());
}

TEST(LoadCsvTest, UsesAnItemCatalogWhenGiven) {
  TempDir dir("csv");
  const std::string items = dir.Write("items.csv", "item,genres,tags\n10,Books|Kids,bestseller\n20,Tools,\n");
  const std::string path = dir.Write("r.csv", "1,20,4.5,7\n2,10,1,8\n");
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, LoadCsv(path, items));
  const Catalog& c = *ds.catalog;
  EXPECT_THAT(c.item_ids, ElementsAre("10", "20"));
  EXPECT_EQ(c.num_genres, 3);
  const int32_t bestseller = *c.FindTag("bestseller");
  EXPECT_THAT(c.item_tags.Indices(0), ElementsAre(0, 1, bestseller));
  EXPECT_THAT(ds.interactions.items, ElementsAre(1, 0));

  const std::string unknown = dir.Write("u.csv", "1,20,4,7\n1,30,4,8\n");
  EXPECT_THAT(LoadCsv(unknown, items),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("u.csv:2: unknown item '30'")));
}

TEST(LoadCsvTest, MalformedInputIsAnError) {
  TempDir dir("csv");
  EXPECT_THAT(LoadCsv(dir.file("missing.csv")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(LoadCsv(dir.Write("a.csv", "1,2,3\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a.csv:1: expected 4 to 5 columns separated by ',', got 3")));
  EXPECT_THAT(LoadCsv(dir.Write("b.csv", "1,2,9,1\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rating 9 is outside [0, 5]")));
  EXPECT_THAT(LoadCsv(dir.Write("c.csv", ",2,3,1\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("c.csv:1: empty user id")));
  EXPECT_THAT(LoadCsv(dir.Write("d.csv", "1,2,3,1,a||b\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("d.csv:1: empty tag")));
  EXPECT_THAT(LoadCsv(dir.Write("f.csv", "user,item,rating,timestamp\n1,2,good,1\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("f.csv:2: column 3 (rating): 'good' is not a finite number")));
  EXPECT_THAT(LoadCsv(dir.Write("g.csv", "1,,3,1\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("g.csv:1: empty item id")));
  EXPECT_THAT(LoadCsv(dir.Write("h.csv", "1,2,3,1,a,b\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("h.csv:1: expected 4 to 5 columns separated by ',', got 6")));
  const std::string good = dir.Write("r.csv", "1,10,4,7\n");
  EXPECT_THAT(LoadCsv(good, dir.Write("i1.csv", "10,Books\n10,Tools\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("i1.csv:2: duplicate item id 10")));
  EXPECT_THAT(LoadCsv(good, dir.Write("i2.csv", "10\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("i2.csv:1: expected 2 to 3 columns separated by ',', got 1")));
  EXPECT_THAT(LoadCsv(good, dir.file("no-items.csv")), StatusIs(absl::StatusCode::kNotFound));
  LoadOptions stars;
  stars.min_rating = 1;
  stars.max_rating = 10;
  PETAL_EXPECT_OK(LoadCsv(dir.Write("e.csv", "1,2,9,1\n"), "", stars));
}

TEST(RebuildItemTagsTest, CombinesGenresGenomeAndApplicationCounts) {
  Catalog c;
  c.item_ids = {"a", "b"};
  c.tag_names = {"g0", "g1", "t0", "t1"};
  c.num_genres = 2;
  c.item_genres.AddRow(std::vector<int32_t>{1}, std::vector<float>{1});
  c.item_genres.AddRow({}, {});
  c.item_genome.AddRow(std::vector<int32_t>{3}, std::vector<float>{0.5f});
  c.item_genome.AddRow({}, {});
  std::vector<TagApplication> apps = {{0, 0, 2, 1}, {1, 0, 2, 2}, {2, 0, 2, 3}, {0, 0, 3, 4}};
  RebuildItemTags(c, apps);
  EXPECT_THAT(c.item_tags.Indices(0), ElementsAre(1, 2, 3));
  EXPECT_THAT(c.item_tags.Weights(0), ElementsAre(1.0f, 2.0f, 1.5f));  // log2(1+3)=2, 0.5+log2(2)
  EXPECT_TRUE(c.item_tags.Indices(1).empty());
}

TEST(IndexByUserTest, GroupsByUserSortedByTimeThenRow) {
  Interactions x;
  x.Add(1, 0, 1, 50);
  x.Add(0, 1, 1, 20);
  x.Add(1, 2, 1, 10);
  x.Add(1, 3, 1, 50);
  const UserIndex index = IndexByUser(x, 3);
  EXPECT_THAT(index.Rows(0), ElementsAre(1));
  EXPECT_THAT(index.Rows(1), ElementsAre(2, 0, 3));
  EXPECT_TRUE(index.Rows(2).empty());
}

TEST(SyntheticTest, IsDeterministicAndSeedDependent) {
  SyntheticOptions o;
  o.num_users = 200;
  o.num_items = 300;
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset a, GenerateSynthetic(o));
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset b, GenerateSynthetic(o));
  EXPECT_EQ(a.interactions.items, b.interactions.items);
  EXPECT_EQ(a.interactions.ratings, b.interactions.ratings);
  EXPECT_EQ(a.interactions.timestamps, b.interactions.timestamps);
  EXPECT_EQ(a.interactions.tag_applications, b.interactions.tag_applications);
  EXPECT_EQ(a.catalog->item_tags.indices, b.catalog->item_tags.indices);
  o.seed = 43;
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset c, GenerateSynthetic(o));
  EXPECT_NE(a.interactions.items, c.interactions.items);
}

TEST(SyntheticTest, HasAMovieLensLikeShape) {
  SyntheticOptions o;
  o.num_users = 400;
  o.num_items = 500;
  PETAL_ASSERT_OK_AND_ASSIGN(Dataset ds, GenerateSynthetic(o));
  const Catalog& c = *ds.catalog;
  EXPECT_EQ(ds.num_users(), 400);
  EXPECT_EQ(c.num_items(), 500);
  EXPECT_EQ(c.num_tags(), o.num_genres + o.num_tags);
  // Every user has at least min_interactions distinct items.
  std::vector<std::vector<int32_t>> per_user(400);
  for (size_t r = 0; r < ds.interactions.size(); ++r) {
    per_user[ds.interactions.users[r]].push_back(ds.interactions.items[r]);
    EXPECT_GE(ds.interactions.ratings[r], 1.0f);
    EXPECT_LE(ds.interactions.ratings[r], 5.0f);
  }
  for (auto& items : per_user) {
    EXPECT_GE(static_cast<int32_t>(items.size()), o.min_interactions);
    std::sort(items.begin(), items.end());
    EXPECT_EQ(std::adjacent_find(items.begin(), items.end()), items.end());
  }
  // Power-law popularity: the 10% most popular items hold far more than 10%.
  std::vector<int64_t> counts(500, 0);
  for (int32_t i : ds.interactions.items) ++counts[i];
  std::sort(counts.rbegin(), counts.rend());
  int64_t top = 0;
  for (int k = 0; k < 50; ++k) top += counts[k];
  EXPECT_GT(static_cast<double>(top) / ds.interactions.size(), 0.3);
  // Every item has 1 to 3 genres; tags were applied.
  for (int32_t i = 0; i < c.num_items(); ++i) {
    EXPECT_GE(c.item_genres.Indices(i).size(), 1u);
    EXPECT_LE(c.item_genres.Indices(i).size(), 3u);
  }
  EXPECT_GT(ds.interactions.tag_applications.size(), 0u);
  for (const TagApplication& a : ds.interactions.tag_applications) {
    EXPECT_GE(a.tag, c.num_genres);
    EXPECT_LT(a.tag, c.num_tags());
  }
}

TEST(SyntheticTest, RejectsBadOptionsNamingThem) {
  SyntheticOptions o;
  o.num_items = 1;
  EXPECT_THAT(GenerateSynthetic(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'num_items'")));
  o = SyntheticOptions();
  o.tag_rate = 1.5;
  EXPECT_THAT(GenerateSynthetic(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'tag_rate'")));
  o = SyntheticOptions();
  o.min_interactions = 5000;
  EXPECT_THAT(GenerateSynthetic(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'min_interactions'")));
}

}  // namespace
}  // namespace petal::model
