// Loaders for MovieLens 100K, MovieLens latest/20M and a generic CSV.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "common/file_util.h"
#include "common/status_macros.h"
#include "model/dataset.h"
#include "model/internal/csv.h"

namespace petal::model {
namespace {

using internal::CsvReader;

// Interns external user ids, then fixes a canonical order: numeric when every
// id is an integer, lexicographic otherwise (so the order never depends on
// which file mentioned a user first).
class UserSpace {
 public:
  int32_t Intern(std::string_view id) {
    auto [it, inserted] = index_.try_emplace(std::string(id), static_cast<int32_t>(ids_.size()));
    if (inserted) ids_.push_back(it->first);
    return it->second;
  }
  size_t size() const { return ids_.size(); }

  // Canonical ids and the map from interned index to canonical index.
  std::pair<std::vector<std::string>, std::vector<int32_t>> Finish() const {
    std::vector<int64_t> numeric(ids_.size());
    bool all_numeric = true;
    for (size_t i = 0; i < ids_.size() && all_numeric; ++i) {
      const std::string& s = ids_[i];
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), numeric[i]);
      all_numeric = !s.empty() && ec == std::errc() && ptr == s.data() + s.size();
    }
    std::vector<int32_t> order(ids_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    if (all_numeric) {
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return numeric[a] != numeric[b] ? numeric[a] < numeric[b] : ids_[a] < ids_[b];
      });
    } else {
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return ids_[a] < ids_[b]; });
    }
    std::vector<std::string> sorted(ids_.size());
    std::vector<int32_t> remap(ids_.size());
    for (size_t rank = 0; rank < order.size(); ++rank) {
      sorted[rank] = ids_[order[rank]];
      remap[order[rank]] = static_cast<int32_t>(rank);
    }
    return {std::move(sorted), std::move(remap)};
  }

 private:
  std::unordered_map<std::string, int32_t> index_;
  std::vector<std::string> ids_;
};

// Free-text tag vocabulary appended after the genres of `catalog`.
class TagVocabulary {
 public:
  explicit TagVocabulary(Catalog& catalog) : catalog_(catalog) {}
  // The id of `name` (lower-cased, trimmed), adding it if new; nullopt for an empty tag.
  std::optional<int32_t> Intern(std::string_view name) {
    std::string key = internal::ToLower(internal::Trim(name));
    if (key.empty()) return std::nullopt;
    auto [it, inserted] = index_.try_emplace(key, catalog_.num_tags());
    if (inserted) catalog_.tag_names.push_back(std::move(key));
    return it->second;
  }

 private:
  Catalog& catalog_;
  std::unordered_map<std::string, int32_t> index_;
};

struct RatingRange {
  double min;
  double max;
};

RatingRange ResolveRange(const LoadOptions& options, double default_min, double default_max) {
  return {std::isnan(options.min_rating) ? default_min : options.min_rating,
          std::isnan(options.max_rating) ? default_max : options.max_rating};
}

absl::Status CheckRating(const CsvReader& reader, double rating, RatingRange range) {
  if (rating < range.min || rating > range.max) {
    return reader.Error(fmt::format("rating {} is outside [{}, {}]", rating, range.min, range.max));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  return common::ReadFileToString(path);
}

absl::Status ExpectHeader(CsvReader& reader, std::string_view expected) {
  if (!reader.Next()) {
    PETAL_RETURN_IF_ERROR(reader.status());
    return absl::InvalidArgumentError(
        fmt::format("{}: empty file (expected the header '{}')", reader.path(), expected));
  }
  std::string got;
  for (size_t i = 0; i < reader.fields().size(); ++i) {
    if (i > 0) got += ',';
    got += internal::Trim(reader.fields()[i]);
  }
  if (got != expected) {
    return reader.Error(fmt::format("expected the header '{}', got '{}'", expected, got));
  }
  return absl::OkStatus();
}

// Finalizes users, counts duplicates and builds the item tags.
absl::StatusOr<Dataset> Finish(Catalog catalog, UserSpace& users, Interactions interactions) {
  auto [ids, remap] = users.Finish();
  for (int32_t& u : interactions.users) u = remap[u];
  for (TagApplication& a : interactions.tag_applications) a.user = remap[a.user];
  Dataset ds;
  ds.stats.num_ratings = static_cast<int64_t>(interactions.size());
  ds.stats.num_tag_applications = static_cast<int64_t>(interactions.tag_applications.size());
  {
    std::unordered_set<uint64_t> seen;
    seen.reserve(interactions.size());
    for (size_t r = 0; r < interactions.size(); ++r) {
      const uint64_t key = (static_cast<uint64_t>(interactions.users[r]) << 32) |
                           static_cast<uint32_t>(interactions.items[r]);
      if (!seen.insert(key).second) ++ds.stats.num_duplicate_ratings;
    }
  }
  RebuildItemTags(catalog, interactions.tag_applications);
  catalog.BuildIndex();
  ds.catalog = std::make_shared<const Catalog>(std::move(catalog));
  ds.user_ids = std::make_shared<const std::vector<std::string>>(std::move(ids));
  ds.interactions = std::move(interactions);
  return ds;
}

const char* const kMl100kGenres[] = {"unknown",   "Action",    "Adventure", "Animation",
                                     "Children's", "Comedy",    "Crime",     "Documentary",
                                     "Drama",     "Fantasy",   "Film-Noir", "Horror",
                                     "Musical",   "Mystery",   "Romance",   "Sci-Fi",
                                     "Thriller",  "War",       "Western"};
constexpr int kMl100kNumGenres = 19;

}  // namespace

absl::StatusOr<Dataset> LoadMovieLens100K(const std::string& dir, const LoadOptions& options) {
  Catalog catalog;
  catalog.name = "ml-100k";
  // Genre names.
  const std::string genre_path = dir + "/u.genre";
  if (std::filesystem::exists(genre_path)) {
    PETAL_ASSIGN_OR_RETURN(std::string text, ReadFile(genre_path));
    CsvReader reader(text, genre_path, '|', /*quoting=*/false);
    std::vector<std::string> names(kMl100kNumGenres);
    std::vector<bool> seen(kMl100kNumGenres, false);
    while (reader.Next()) {
      PETAL_RETURN_IF_ERROR(reader.ExpectColumns(2));
      PETAL_ASSIGN_OR_RETURN(int64_t id, reader.Int(1, "genre id"));
      if (id < 0 || id >= kMl100kNumGenres || seen[id]) {
        return reader.Error(fmt::format("genre id {} is not a new id in [0, {})", id,
                                        kMl100kNumGenres));
      }
      seen[id] = true;
      names[id] = std::string(internal::Trim(reader.fields()[0]));
    }
    PETAL_RETURN_IF_ERROR(reader.status());
    for (int g = 0; g < kMl100kNumGenres; ++g) {
      if (!seen[g]) {
        return absl::InvalidArgumentError(fmt::format("{}: genre id {} is missing", genre_path, g));
      }
    }
    catalog.tag_names = std::move(names);
  } else {
    catalog.tag_names.assign(std::begin(kMl100kGenres), std::end(kMl100kGenres));
  }
  catalog.num_genres = kMl100kNumGenres;

  // Items.
  const std::string item_path = dir + "/u.item";
  PETAL_ASSIGN_OR_RETURN(std::string item_text, ReadFile(item_path));
  std::unordered_map<std::string, int32_t> item_index;
  {
    CsvReader reader(item_text, item_path, '|', /*quoting=*/false);
    std::vector<int32_t> genres;
    std::vector<float> ones;
    while (reader.Next()) {
      PETAL_RETURN_IF_ERROR(reader.ExpectColumns(5 + kMl100kNumGenres));
      PETAL_ASSIGN_OR_RETURN(int64_t id, reader.Int(0, "movie id"));
      (void)id;
      std::string key(internal::Trim(reader.fields()[0]));
      if (!item_index.emplace(key, catalog.num_items()).second) {
        return reader.Error(fmt::format("duplicate movie id {}", key));
      }
      genres.clear();
      for (int g = 0; g < kMl100kNumGenres; ++g) {
        std::string_view flag = internal::Trim(reader.fields()[5 + g]);
        if (flag == "1") {
          genres.push_back(g);
        } else if (flag != "0") {
          return reader.Error(
              fmt::format("column {} (genre flag): '{}' is not 0 or 1", 6 + g, flag));
        }
      }
      ones.assign(genres.size(), 1.0f);
      catalog.item_genres.AddRow(genres, ones);
      catalog.item_genome.AddRow({}, {});
      catalog.item_ids.push_back(std::move(key));
      catalog.item_titles.emplace_back(reader.fields()[1]);
    }
    PETAL_RETURN_IF_ERROR(reader.status());
  }

  // Ratings.
  const std::string data_path = dir + "/u.data";
  PETAL_ASSIGN_OR_RETURN(std::string data_text, ReadFile(data_path));
  const RatingRange range = ResolveRange(options, 1.0, 5.0);
  UserSpace users;
  Interactions interactions;
  interactions.Reserve(100000);
  CsvReader reader(data_text, data_path, '\t', /*quoting=*/false);
  while (reader.Next()) {
    PETAL_RETURN_IF_ERROR(reader.ExpectColumns(4));
    PETAL_ASSIGN_OR_RETURN(int64_t user_id, reader.Int(0, "user id"));
    (void)user_id;
    auto item = item_index.find(std::string(internal::Trim(reader.fields()[1])));
    if (item == item_index.end()) {
      return reader.Error(fmt::format("unknown item '{}' (not in {})",
                                      internal::Trim(reader.fields()[1]), item_path));
    }
    PETAL_ASSIGN_OR_RETURN(double rating, reader.Double(2, "rating"));
    PETAL_RETURN_IF_ERROR(CheckRating(reader, rating, range));
    PETAL_ASSIGN_OR_RETURN(int64_t ts, reader.Int(3, "timestamp"));
    interactions.Add(users.Intern(internal::Trim(reader.fields()[0])), item->second,
                     static_cast<float>(rating), ts);
  }
  PETAL_RETURN_IF_ERROR(reader.status());
  return Finish(std::move(catalog), users, std::move(interactions));
}

absl::StatusOr<Dataset> LoadMovieLensLatest(const std::string& dir, const LoadOptions& options) {
  Catalog catalog;
  catalog.name = std::filesystem::path(dir).filename().string();
  if (catalog.name.empty()) catalog.name = std::filesystem::path(dir).parent_path().filename().string();
  if (catalog.name.empty()) catalog.name = "movielens";

  // movies.csv: movieId,title,genres. Genre ids are assigned in order of first use.
  const std::string movies_path = dir + "/movies.csv";
  PETAL_ASSIGN_OR_RETURN(std::string movies_text, ReadFile(movies_path));
  std::unordered_map<std::string, int32_t> item_index;
  std::vector<std::vector<std::string>> item_genre_names;
  std::unordered_map<std::string, int32_t> genre_ids;
  std::vector<std::string> genre_names;
  {
    CsvReader reader(movies_text, movies_path, ',', /*quoting=*/true);
    PETAL_RETURN_IF_ERROR(ExpectHeader(reader, "movieId,title,genres"));
    while (reader.Next()) {
      PETAL_RETURN_IF_ERROR(reader.ExpectColumns(3));
      PETAL_ASSIGN_OR_RETURN(int64_t id, reader.Int(0, "movieId"));
      (void)id;
      std::string key(internal::Trim(reader.fields()[0]));
      if (!item_index.emplace(key, catalog.num_items()).second) {
        return reader.Error(fmt::format("duplicate movieId {}", key));
      }
      std::vector<std::string> names;
      const std::string_view genres = internal::Trim(reader.fields()[2]);
      if (genres != "(no genres listed)") {
        for (std::string_view g : internal::SplitList(genres, '|')) {
          g = internal::Trim(g);
          if (g.empty()) return reader.Error("empty genre name");
          if (genre_ids.try_emplace(std::string(g), static_cast<int32_t>(genre_names.size()))
                  .second) {
            genre_names.emplace_back(g);
          }
          names.emplace_back(g);
        }
      }
      item_genre_names.push_back(std::move(names));
      catalog.item_ids.push_back(std::move(key));
      catalog.item_titles.emplace_back(reader.fields()[1]);
    }
    PETAL_RETURN_IF_ERROR(reader.status());
  }
  catalog.tag_names = genre_names;
  catalog.num_genres = static_cast<int32_t>(genre_names.size());
  for (const auto& names : item_genre_names) {
    std::vector<int32_t> ids;
    for (const auto& n : names) ids.push_back(genre_ids.at(n));
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::vector<float> ones(ids.size(), 1.0f);
    catalog.item_genres.AddRow(ids, ones);
  }
  auto find_item = [&](const CsvReader& reader, size_t column) -> absl::StatusOr<int32_t> {
    const std::string_view id = internal::Trim(reader.fields()[column]);
    auto it = item_index.find(std::string(id));
    if (it == item_index.end()) {
      return reader.Error(fmt::format("unknown item '{}' (not in {})", id, movies_path));
    }
    return it->second;
  };

  TagVocabulary vocabulary(catalog);
  DatasetStats extra;

  // Tag genome (optional): genome-tags.csv tagId,tag; genome-scores.csv movieId,tagId,relevance.
  const std::string genome_tags_path = dir + "/genome-tags.csv";
  const std::string genome_scores_path = dir + "/genome-scores.csv";
  std::vector<std::vector<std::pair<int32_t, float>>> genome_rows(catalog.num_items());
  if (options.load_genome && std::filesystem::exists(genome_tags_path) &&
      std::filesystem::exists(genome_scores_path)) {
    std::unordered_map<int64_t, int32_t> genome_tag_ids;
    {
      PETAL_ASSIGN_OR_RETURN(std::string text, ReadFile(genome_tags_path));
      CsvReader reader(text, genome_tags_path, ',', /*quoting=*/true);
      PETAL_RETURN_IF_ERROR(ExpectHeader(reader, "tagId,tag"));
      while (reader.Next()) {
        PETAL_RETURN_IF_ERROR(reader.ExpectColumns(2));
        PETAL_ASSIGN_OR_RETURN(int64_t tag_id, reader.Int(0, "tagId"));
        std::optional<int32_t> tag = vocabulary.Intern(reader.fields()[1]);
        if (!tag) return reader.Error("empty tag");
        if (!genome_tag_ids.emplace(tag_id, *tag).second) {
          return reader.Error(fmt::format("duplicate tagId {}", tag_id));
        }
      }
      PETAL_RETURN_IF_ERROR(reader.status());
    }
    PETAL_ASSIGN_OR_RETURN(std::string text, ReadFile(genome_scores_path));
    CsvReader reader(text, genome_scores_path, ',', /*quoting=*/false);
    PETAL_RETURN_IF_ERROR(ExpectHeader(reader, "movieId,tagId,relevance"));
    while (reader.Next()) {
      PETAL_RETURN_IF_ERROR(reader.ExpectColumns(3));
      PETAL_ASSIGN_OR_RETURN(int32_t item, find_item(reader, 0));
      PETAL_ASSIGN_OR_RETURN(int64_t tag_id, reader.Int(1, "tagId"));
      auto tag = genome_tag_ids.find(tag_id);
      if (tag == genome_tag_ids.end()) {
        return reader.Error(fmt::format("unknown tagId {} (not in {})", tag_id, genome_tags_path));
      }
      PETAL_ASSIGN_OR_RETURN(double relevance, reader.Double(2, "relevance"));
      if (relevance < 0.0 || relevance > 1.0) {
        return reader.Error(fmt::format("relevance {} is outside [0, 1]", relevance));
      }
      ++extra.num_genome_scores_total;
      if (relevance >= options.genome_min_relevance) {
        genome_rows[item].push_back({tag->second, static_cast<float>(relevance)});
        ++extra.num_genome_scores_kept;
      }
    }
    PETAL_RETURN_IF_ERROR(reader.status());
  }
  for (auto& row : genome_rows) {
    std::sort(row.begin(), row.end());
    std::vector<int32_t> ids;
    std::vector<float> rel;
    for (const auto& [t, r] : row) {
      ids.push_back(t);
      rel.push_back(r);
    }
    catalog.item_genome.AddRow(ids, rel);
  }

  // ratings.csv: userId,movieId,rating,timestamp.
  UserSpace users;
  Interactions interactions;
  const std::string ratings_path = dir + "/ratings.csv";
  {
    PETAL_ASSIGN_OR_RETURN(std::string text, ReadFile(ratings_path));
    interactions.Reserve(std::count(text.begin(), text.end(), '\n'));
    const RatingRange range = ResolveRange(options, 0.5, 5.0);
    CsvReader reader(text, ratings_path, ',', /*quoting=*/false);
    PETAL_RETURN_IF_ERROR(ExpectHeader(reader, "userId,movieId,rating,timestamp"));
    while (reader.Next()) {
      PETAL_RETURN_IF_ERROR(reader.ExpectColumns(4));
      PETAL_ASSIGN_OR_RETURN(int64_t user_id, reader.Int(0, "userId"));
      (void)user_id;
      PETAL_ASSIGN_OR_RETURN(int32_t item, find_item(reader, 1));
      PETAL_ASSIGN_OR_RETURN(double rating, reader.Double(2, "rating"));
      PETAL_RETURN_IF_ERROR(CheckRating(reader, rating, range));
      PETAL_ASSIGN_OR_RETURN(int64_t ts, reader.Int(3, "timestamp"));
      interactions.Add(users.Intern(internal::Trim(reader.fields()[0])), item,
                       static_cast<float>(rating), ts);
    }
    PETAL_RETURN_IF_ERROR(reader.status());
  }

  // tags.csv (optional): userId,movieId,tag,timestamp.
  const std::string tags_path = dir + "/tags.csv";
  if (std::filesystem::exists(tags_path)) {
    PETAL_ASSIGN_OR_RETURN(std::string text, ReadFile(tags_path));
    CsvReader reader(text, tags_path, ',', /*quoting=*/true);
    PETAL_RETURN_IF_ERROR(ExpectHeader(reader, "userId,movieId,tag,timestamp"));
    while (reader.Next()) {
      PETAL_RETURN_IF_ERROR(reader.ExpectColumns(4));
      PETAL_ASSIGN_OR_RETURN(int64_t user_id, reader.Int(0, "userId"));
      (void)user_id;
      PETAL_ASSIGN_OR_RETURN(int32_t item, find_item(reader, 1));
      std::optional<int32_t> tag = vocabulary.Intern(reader.fields()[2]);
      if (!tag) return reader.Error("empty tag");
      PETAL_ASSIGN_OR_RETURN(int64_t ts, reader.Int(3, "timestamp"));
      interactions.tag_applications.push_back(
          {users.Intern(internal::Trim(reader.fields()[0])), item, *tag, ts});
    }
    PETAL_RETURN_IF_ERROR(reader.status());
  }
  PETAL_ASSIGN_OR_RETURN(Dataset ds, Finish(std::move(catalog), users, std::move(interactions)));
  ds.stats.num_genome_scores_kept = extra.num_genome_scores_kept;
  ds.stats.num_genome_scores_total = extra.num_genome_scores_total;
  return ds;
}

absl::StatusOr<Dataset> LoadCsv(const std::string& path, const std::string& items_path,
                                const LoadOptions& options) {
  Catalog catalog;
  catalog.name = std::filesystem::path(path).stem().string();
  std::unordered_map<std::string, int32_t> item_index;
  // Catalog rows gathered as names first: genres get ids before free tags.
  std::vector<std::vector<std::string>> item_genre_names;
  std::vector<std::vector<std::string>> item_catalog_tags;
  std::unordered_map<std::string, int32_t> genre_ids;
  std::vector<std::string> genre_names;
  const bool has_catalog = !items_path.empty();
  if (has_catalog) {
    PETAL_ASSIGN_OR_RETURN(std::string text, ReadFile(items_path));
    CsvReader reader(text, items_path, ',', /*quoting=*/true);
    bool first = true;
    while (reader.Next()) {
      if (first) {
        first = false;
        if (internal::ToLower(internal::Trim(reader.fields()[0])) == "item") continue;
      }
      PETAL_RETURN_IF_ERROR(reader.ExpectColumns(2, 3));
      std::string key(internal::Trim(reader.fields()[0]));
      if (key.empty()) return reader.Error("empty item id");
      if (!item_index.emplace(key, catalog.num_items()).second) {
        return reader.Error(fmt::format("duplicate item id {}", key));
      }
      std::vector<std::string> genres;
      for (std::string_view g : internal::SplitList(internal::Trim(reader.fields()[1]), '|')) {
        g = internal::Trim(g);
        if (g.empty()) return reader.Error("empty genre name");
        if (genre_ids.try_emplace(std::string(g), static_cast<int32_t>(genre_names.size())).second) {
          genre_names.emplace_back(g);
        }
        genres.emplace_back(g);
      }
      std::vector<std::string> tags;
      if (reader.fields().size() == 3) {
        for (std::string_view t : internal::SplitList(internal::Trim(reader.fields()[2]), '|')) {
          if (internal::Trim(t).empty()) return reader.Error("empty tag");
          tags.emplace_back(t);
        }
      }
      item_genre_names.push_back(std::move(genres));
      item_catalog_tags.push_back(std::move(tags));
      catalog.item_ids.push_back(std::move(key));
      catalog.item_titles.emplace_back();
    }
    PETAL_RETURN_IF_ERROR(reader.status());
  }

  PETAL_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const RatingRange range = ResolveRange(options, 0.0, 5.0);
  struct Row {
    int32_t user;
    std::string item;
    float rating;
    int64_t ts;
    std::vector<std::string> tags;
    int64_t line;
  };
  std::vector<Row> rows;
  UserSpace users;
  {
    CsvReader reader(text, path, ',', /*quoting=*/true);
    bool first = true;
    while (reader.Next()) {
      if (first) {
        first = false;
        if (internal::ToLower(internal::Trim(reader.fields()[0])) == "user") continue;
      }
      PETAL_RETURN_IF_ERROR(reader.ExpectColumns(4, 5));
      const std::string_view user = internal::Trim(reader.fields()[0]);
      const std::string_view item = internal::Trim(reader.fields()[1]);
      if (user.empty()) return reader.Error("empty user id");
      if (item.empty()) return reader.Error("empty item id");
      if (has_catalog && !item_index.count(std::string(item))) {
        return reader.Error(fmt::format("unknown item '{}' (not in {})", item, items_path));
      }
      PETAL_ASSIGN_OR_RETURN(double rating, reader.Double(2, "rating"));
      PETAL_RETURN_IF_ERROR(CheckRating(reader, rating, range));
      PETAL_ASSIGN_OR_RETURN(int64_t ts, reader.Int(3, "timestamp"));
      Row row{users.Intern(user), std::string(item), static_cast<float>(rating), ts, {},
              reader.line()};
      if (reader.fields().size() == 5) {
        for (std::string_view t : internal::SplitList(internal::Trim(reader.fields()[4]), '|')) {
          if (internal::Trim(t).empty()) return reader.Error("empty tag");
          row.tags.emplace_back(t);
        }
      }
      rows.push_back(std::move(row));
    }
    PETAL_RETURN_IF_ERROR(reader.status());
  }
  if (!has_catalog) {
    // The catalog is every item seen, ordered like users (numeric ids numerically).
    UserSpace item_space;
    for (const Row& r : rows) item_space.Intern(r.item);
    auto [ids, remap] = item_space.Finish();
    (void)remap;
    for (const std::string& id : ids) {
      item_index.emplace(id, catalog.num_items());
      catalog.item_ids.push_back(id);
      catalog.item_titles.emplace_back();
      item_genre_names.emplace_back();
      item_catalog_tags.emplace_back();
    }
  }
  catalog.tag_names = genre_names;
  catalog.num_genres = static_cast<int32_t>(genre_names.size());
  for (const auto& names : item_genre_names) {
    std::vector<int32_t> ids;
    for (const auto& n : names) ids.push_back(genre_ids.at(n));
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::vector<float> ones(ids.size(), 1.0f);
    catalog.item_genres.AddRow(ids, ones);
  }
  // Catalog tags (public) enter the item tags like genome tags with relevance 1.
  TagVocabulary vocabulary(catalog);
  std::vector<std::vector<std::pair<int32_t, float>>> catalog_rows(catalog.num_items());
  for (int32_t i = 0; i < catalog.num_items(); ++i) {
    for (const std::string& t : item_catalog_tags[i]) {
      catalog_rows[i].push_back({*vocabulary.Intern(t), 1.0f});
    }
    std::sort(catalog_rows[i].begin(), catalog_rows[i].end());
    catalog_rows[i].erase(std::unique(catalog_rows[i].begin(), catalog_rows[i].end()),
                          catalog_rows[i].end());
    std::vector<int32_t> ids;
    std::vector<float> w;
    for (const auto& [t, x] : catalog_rows[i]) {
      ids.push_back(t);
      w.push_back(x);
    }
    catalog.item_genome.AddRow(ids, w);
  }
  Interactions interactions;
  interactions.Reserve(rows.size());
  for (const Row& r : rows) {
    const int32_t item = item_index.at(r.item);
    interactions.Add(r.user, item, r.rating, r.ts);
    for (const std::string& t : r.tags) {
      interactions.tag_applications.push_back({r.user, item, *vocabulary.Intern(t), r.ts});
    }
  }
  return Finish(std::move(catalog), users, std::move(interactions));
}

}  // namespace petal::model
