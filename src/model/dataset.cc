#include "model/dataset.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "model/internal/csv.h"

namespace petal::model {

void SparseRows::AddRow(absl::Span<const int32_t> row_indices, absl::Span<const float> row_weights) {
  indices.insert(indices.end(), row_indices.begin(), row_indices.end());
  weights.insert(weights.end(), row_weights.begin(), row_weights.end());
  offsets.push_back(static_cast<int64_t>(indices.size()));
}

std::optional<int32_t> Catalog::FindItem(std::string_view id) const {
  auto it = item_index_.find(std::string(id));
  if (it == item_index_.end()) return std::nullopt;
  return it->second;
}

std::optional<int32_t> Catalog::FindTag(std::string_view name) const {
  auto it = tag_index_.find(internal::ToLower(internal::Trim(name)));
  if (it == tag_index_.end()) return std::nullopt;
  return it->second;
}

std::optional<int32_t> Catalog::FindGenre(std::string_view name) const {
  auto it = genre_index_.find(std::string(name));
  if (it == genre_index_.end()) return std::nullopt;
  return it->second;
}

void Catalog::BuildIndex() {
  item_index_.clear();
  tag_index_.clear();
  genre_index_.clear();
  item_index_.reserve(item_ids.size());
  for (int32_t i = 0; i < num_items(); ++i) item_index_.emplace(item_ids[i], i);
  for (int32_t t = 0; t < num_tags(); ++t) {
    if (t < num_genres) {
      genre_index_.emplace(tag_names[t], t);
    } else {
      tag_index_.emplace(internal::ToLower(internal::Trim(tag_names[t])), t);
    }
  }
}

void Interactions::Reserve(size_t n) {
  users.reserve(n);
  items.reserve(n);
  ratings.reserve(n);
  timestamps.reserve(n);
}

void RebuildItemTags(Catalog& catalog, absl::Span<const TagApplication> applications) {
  const int32_t num_items = catalog.num_items();
  // Applications per item, counted per tag.
  std::vector<std::vector<std::pair<int32_t, int32_t>>> per_item(num_items);
  for (const TagApplication& a : applications) per_item[a.item].push_back({a.tag, 1});
  SparseRows rows;
  rows.offsets.reserve(num_items + 1);
  std::map<int32_t, float> row;
  std::vector<int32_t> idx;
  std::vector<float> w;
  for (int32_t i = 0; i < num_items; ++i) {
    row.clear();
    if (i < catalog.item_genres.rows()) {
      for (int32_t g : catalog.item_genres.Indices(i)) row[g] += 1.0f;
    }
    if (i < catalog.item_genome.rows()) {
      auto tags = catalog.item_genome.Indices(i);
      auto rel = catalog.item_genome.Weights(i);
      for (size_t k = 0; k < tags.size(); ++k) row[tags[k]] += rel[k];
    }
    std::map<int32_t, int32_t> counts;
    for (const auto& [tag, one] : per_item[i]) counts[tag] += one;
    for (const auto& [tag, count] : counts) {
      row[tag] += static_cast<float>(std::log2(1.0 + count));
    }
    idx.clear();
    w.clear();
    for (const auto& [tag, weight] : row) {
      idx.push_back(tag);
      w.push_back(weight);
    }
    rows.AddRow(idx, w);
  }
  catalog.item_tags = std::move(rows);
}

UserIndex IndexByUser(const Interactions& interactions, int32_t num_users) {
  UserIndex index;
  index.offsets.assign(num_users + 1, 0);
  for (int32_t u : interactions.users) ++index.offsets[u + 1];
  for (int32_t u = 0; u < num_users; ++u) index.offsets[u + 1] += index.offsets[u];
  index.order.resize(interactions.size());
  std::vector<int64_t> next(index.offsets.begin(), index.offsets.end() - 1);
  for (size_t r = 0; r < interactions.size(); ++r) {
    index.order[next[interactions.users[r]]++] = static_cast<int64_t>(r);
  }
  const auto& ts = interactions.timestamps;
  for (int32_t u = 0; u < num_users; ++u) {
    std::sort(index.order.begin() + index.offsets[u], index.order.begin() + index.offsets[u + 1],
              [&ts](int64_t a, int64_t b) { return ts[a] != ts[b] ? ts[a] < ts[b] : a < b; });
  }
  return index;
}

}  // namespace petal::model
