#include "model/internal/features.h"

#include <algorithm>
#include <map>

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
                   SparseRows& out) {
  std::map<int32_t, double> weight;
  for (int32_t item : history_items) {
    auto tags = item_tags_normalized.Indices(item);
    auto w = item_tags_normalized.Weights(item);
    for (size_t k = 0; k < tags.size(); ++k) weight[tags[k]] += w[k];
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

}  // namespace petal::model::internal
