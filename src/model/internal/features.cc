#include "model/internal/features.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

namespace petal::model::internal {

SparseRows NormalizedItemTags(const Catalog& catalog) {
  SparseRows out = catalog.item_tags;
  for (int64_t r = 0; r < out.rows(); ++r) {
    double total = 0;
    for (int64_t k = out.offsets[r]; k < out.offsets[r + 1]; ++k) total += out.weights[k];
    if (total <= 0) continue;
    for (int64_t k = out.offsets[r]; k < out.offsets[r + 1]; ++k) {
      out.weights[k] = static_cast<float>(out.weights[k] / total);
    }
  }
  return out;
}

void AppendProfile(const SparseRows& item_tags_normalized, absl::Span<const int32_t> history_items,
                   absl::Span<const int32_t> own_tags, int64_t max_tags, double own_tag_weight,
                   SparseRows& out, absl::Span<const double> item_weights) {
  std::map<int32_t, double> weight;
  for (size_t h = 0; h < history_items.size(); ++h) {
    const int32_t item = history_items[h];
    const double scale = item_weights.empty() ? 1.0 : item_weights[h];
    auto tags = item_tags_normalized.Indices(item);
    auto w = item_tags_normalized.Weights(item);
    for (size_t k = 0; k < tags.size(); ++k) weight[tags[k]] += scale * w[k];
  }
  if (own_tag_weight > 0) {
    for (int32_t tag : own_tags) weight[tag] += own_tag_weight;
  }
  std::vector<std::pair<int32_t, double>> entries(weight.begin(), weight.end());
  if (max_tags > 0 && static_cast<int64_t>(entries.size()) > max_tags) {
    std::partial_sort(entries.begin(), entries.begin() + max_tags, entries.end(),
                      [](const auto& a, const auto& b) {
                        return a.second != b.second ? a.second > b.second : a.first < b.first;
                      });
    entries.resize(max_tags);
    std::sort(entries.begin(), entries.end());
  }
  double total = 0;
  for (const auto& e : entries) total += e.second;
  std::vector<int32_t> idx;
  std::vector<float> w;
  if (total > 0) {
    for (const auto& [tag, x] : entries) {
      if (x <= 0) continue;
      idx.push_back(tag);
      w.push_back(static_cast<float>(x / total));
    }
  }
  out.AddRow(idx, w);
}

std::vector<double> RecencyWeights(absl::Span<const int64_t> timestamps, double half_life) {
  if (!(half_life > 0)) return {};
  std::vector<size_t> order(timestamps.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  // Most recent first; among equal timestamps the later entry first.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return timestamps[a] != timestamps[b] ? timestamps[a] > timestamps[b] : a > b;
  });
  std::vector<double> weights(timestamps.size());
  for (size_t rank = 0; rank < order.size(); ++rank) {
    weights[order[rank]] = std::exp2(-static_cast<double>(rank) / half_life);
  }
  return weights;
}

}  // namespace petal::model::internal
