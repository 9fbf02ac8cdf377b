// File: dataset.h
//
// The data the recommender learns from, split the way federated learning needs
// it: a PUBLIC Catalog (item ids, tag vocabulary, item-tag matrix) that every
// client shares, and PRIVATE Interactions (who rated what, when, and the tags a
// user applied) that never leave their owner.
//
//   PETAL_ASSIGN_OR_RETURN(Dataset ds, LoadMovieLens100K("/data/ml-100k"));
//   const Catalog& catalog = *ds.catalog;            // shared, immutable
//   for (size_t r = 0; r < ds.interactions.size(); ++r) { ds.interactions.items[r]; ... }
//
// Loaders never crash on bad input and never drop data silently: a missing
// file is NotFound naming the path; a malformed line, a wrong column count, an
// unknown item or an out-of-range rating is InvalidArgument "path:line: what".
// A Catalog is immutable once built and is shared through
// std::shared_ptr<const Catalog>, so hundreds of in-process clients hold one
// copy. All functions are thread-compatible (no shared mutable state).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace petal::model {

// A sparse matrix stored by rows (CSR) with float weights.
struct SparseRows {
  std::vector<int64_t> offsets = {0};  // rows() + 1 entries
  std::vector<int32_t> indices;
  std::vector<float> weights;

  int64_t rows() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t nnz() const { return static_cast<int64_t>(indices.size()); }
  absl::Span<const int32_t> Indices(int64_t row) const {
    return absl::MakeConstSpan(indices).subspan(offsets[row], offsets[row + 1] - offsets[row]);
  }
  absl::Span<const float> Weights(int64_t row) const {
    return absl::MakeConstSpan(weights).subspan(offsets[row], offsets[row + 1] - offsets[row]);
  }
  // Appends a row (entries need not be sorted; duplicates are kept as given).
  void AddRow(absl::Span<const int32_t> row_indices, absl::Span<const float> row_weights);
};

// The public item catalog.
//
// Tag vocabulary: ids [0, num_genres) are genres (names as in the data files),
// the rest are free-text tags from tag applications and the tag genome,
// lower-cased and trimmed. `item_tags` combines, per item, genres (weight 1),
// free tags applied by users (weight log2(1 + number of applications)) and
// genome tags kept by LoadOptions::genome_min_relevance (weight = relevance).
struct Catalog {
  std::string name;                    // "ml-100k", "ml-latest-small", "synthetic", ...
  std::vector<std::string> item_ids;   // external ids in catalog order
  std::vector<std::string> item_titles;  // "" when unknown
  std::vector<std::string> tag_names;  // the tag vocabulary
  int32_t num_genres = 0;
  SparseRows item_genres;  // num_items rows, genre ids, weight 1
  SparseRows item_genome;  // num_items rows, genome tag relevance (empty rows when absent)
  SparseRows item_tags;    // num_items rows over the vocabulary (see above)

  int32_t num_items() const { return static_cast<int32_t>(item_ids.size()); }
  int32_t num_tags() const { return static_cast<int32_t>(tag_names.size()); }
  // Catalog index of an external item id, or nullopt.
  std::optional<int32_t> FindItem(std::string_view id) const;
  // Vocabulary index of a free tag (matched lower-cased and trimmed), or nullopt.
  std::optional<int32_t> FindTag(std::string_view name) const;
  // Vocabulary index of a genre (exact name), or nullopt.
  std::optional<int32_t> FindGenre(std::string_view name) const;

  // Rebuilds the lookup maps from item_ids / tag_names (call after filling them).
  void BuildIndex();

 private:
  std::unordered_map<std::string, int32_t> item_index_;
  std::unordered_map<std::string, int32_t> tag_index_;    // free tags
  std::unordered_map<std::string, int32_t> genre_index_;
};

// One tag applied by one user to one item (private to the user).
struct TagApplication {
  int32_t user = 0;
  int32_t item = 0;
  int32_t tag = 0;
  int64_t timestamp = 0;
  bool operator==(const TagApplication&) const = default;
};

// Private interactions, struct-of-arrays. `users` index the dataset's user
// space (Dataset::user_ids); `items` index the Catalog.
struct Interactions {
  std::vector<int32_t> users;
  std::vector<int32_t> items;
  std::vector<float> ratings;
  std::vector<int64_t> timestamps;
  std::vector<TagApplication> tag_applications;

  size_t size() const { return users.size(); }
  bool empty() const { return users.empty(); }
  void Add(int32_t user, int32_t item, float rating, int64_t timestamp) {
    users.push_back(user);
    items.push_back(item);
    ratings.push_back(rating);
    timestamps.push_back(timestamp);
  }
  void Reserve(size_t n);
};

// Counts for logs and tests.
struct DatasetStats {
  int64_t num_ratings = 0;
  int64_t num_tag_applications = 0;
  int64_t num_duplicate_ratings = 0;  // repeated (user, item) pairs, all kept
  int64_t num_genome_scores_kept = 0;
  int64_t num_genome_scores_total = 0;
};

struct Dataset {
  std::shared_ptr<const Catalog> catalog;
  std::shared_ptr<const std::vector<std::string>> user_ids;  // external id per user index
  Interactions interactions;
  DatasetStats stats;

  int32_t num_users() const { return user_ids ? static_cast<int32_t>(user_ids->size()) : 0; }
};

struct LoadOptions {
  // Accepted rating range; NaN means the format's own (ML-100K [1, 5],
  // ML latest [0.5, 5], generic CSV [0, 5]).
  double min_rating = std::numeric_limits<double>::quiet_NaN();
  double max_rating = std::numeric_limits<double>::quiet_NaN();
  // Read genome-scores.csv / genome-tags.csv when both exist (ML latest/20M).
  bool load_genome = true;
  // Genome (item, tag) pairs with relevance below this are not item tags.
  double genome_min_relevance = 0.5;
};

// MovieLens 100K: `dir`/u.data (user \t item \t rating \t timestamp), `dir`/u.item
// (19 genre flags), `dir`/u.genre for genre names (built-in names if absent).
absl::StatusOr<Dataset> LoadMovieLens100K(const std::string& dir, const LoadOptions& options = {});

// MovieLens latest / 20M / 25M format: `dir`/movies.csv, ratings.csv, tags.csv
// (optional), genome-scores.csv + genome-tags.csv (optional).
absl::StatusOr<Dataset> LoadMovieLensLatest(const std::string& dir, const LoadOptions& options = {});

// Generic CSV of interactions: user,item,rating,timestamp[,tags] where tags is
// a '|'-separated list of tags the user applied to the item. A header line
// starting with "user," is skipped. `items_path` (optional, "" for none) is a
// CSV item,genres[,tags] of the catalog ('|'-separated lists); without it the
// catalog is the set of items seen in `path` (sorted by id) and every item is
// known; with it, an item missing from the catalog is an error.
absl::StatusOr<Dataset> LoadCsv(const std::string& path, const std::string& items_path = "",
                                const LoadOptions& options = {});

// A deterministic MovieLens-like dataset: power-law item popularity, users with
// latent tastes choosing items near them, genres and tags derived from the
// items' latent factors (so tags carry taste signal), ratings 1..5 from taste
// affinity, and occasional user tag applications. Same options -> same bytes.
struct SyntheticOptions {
  int32_t num_users = 1500;
  int32_t num_items = 1000;
  int32_t num_genres = 12;
  int32_t num_tags = 80;  // free-text tags beside the genres
  int32_t latent_dim = 8;
  double mean_interactions = 60.0;  // per user (log-normal around it)
  int32_t min_interactions = 10;
  double popularity_exponent = 1.3;  // Zipf exponent of item popularity (ML-100K-like skew)
  double taste_strength = 2.5;       // weight of taste vs popularity when choosing
  double rating_noise = 0.6;
  double tag_rate = 0.05;  // chance a user tags an item they interacted with
  uint64_t seed = 42;
};
// InvalidArgument naming the option for out-of-range values.
absl::StatusOr<Dataset> GenerateSynthetic(const SyntheticOptions& options);

// Recomputes catalog.item_tags from its genres, genome and the given tag
// applications (counts per (item, tag)). Used by splits so that held-out
// interactions' tags do not leak into the public item tags.
void RebuildItemTags(Catalog& catalog, absl::Span<const TagApplication> applications);

// Indices of interactions grouped by user: offsets (num_users + 1) into `order`,
// each user's rows sorted by (timestamp, row).
struct UserIndex {
  std::vector<int64_t> offsets;
  std::vector<int64_t> order;
  absl::Span<const int64_t> Rows(int32_t user) const {
    return absl::MakeConstSpan(order).subspan(offsets[user], offsets[user + 1] - offsets[user]);
  }
};
UserIndex IndexByUser(const Interactions& interactions, int32_t num_users);

}  // namespace petal::model
