#include "model/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace petal::model {

int64_t RankOfPositive(float positive, absl::Span<const float> negatives) {
  int64_t rank = 0;
  for (float s : negatives) {
    if (!(s < positive)) ++rank;  // >=, or either side NaN
  }
  return rank;
}

double HitAtK(int64_t rank, int32_t k) { return rank < k ? 1.0 : 0.0; }

double NdcgAtK(int64_t rank, int32_t k) {
  return rank < k ? 1.0 / std::log2(static_cast<double>(rank) + 2.0) : 0.0;
}

void RankingMetrics::Add(float positive, absl::Span<const float> negatives) {
  const int64_t rank = RankOfPositive(positive, negatives);
  hits_ += HitAtK(rank, k_);
  ndcg_ += NdcgAtK(rank, k_);
  ++count_;
}

std::vector<int32_t> TopK(absl::Span<const float> scores, absl::Span<const int32_t> excluded,
                          int32_t k) {
  std::vector<int32_t> candidates;
  candidates.reserve(scores.size());
  size_t e = 0;
  for (int32_t i = 0; i < static_cast<int32_t>(scores.size()); ++i) {
    while (e < excluded.size() && excluded[e] < i) ++e;
    if (e < excluded.size() && excluded[e] == i) continue;
    candidates.push_back(i);
  }
  auto better = [&scores](int32_t a, int32_t b) {
    const float sa = scores[a];
    const float sb = scores[b];
    const bool na = std::isnan(sa);
    const bool nb = std::isnan(sb);
    if (na != nb) return nb;  // non-NaN first
    if (!na && sa != sb) return sa > sb;
    return a < b;
  };
  const size_t take = std::min<size_t>(std::max<int32_t>(k, 0), candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + take, candidates.end(), better);
  candidates.resize(take);
  return candidates;
}

void CatalogMetrics::AddUser(absl::Span<const float> scores, absl::Span<const int32_t> excluded,
                             absl::Span<const int32_t> relevant) {
  if (relevant.empty()) return;
  const std::vector<int32_t> top = TopK(scores, excluded, k_);
  int64_t hits = 0;
  for (int32_t i : top) {
    if (std::binary_search(relevant.begin(), relevant.end(), i)) ++hits;
  }
  precision_ += static_cast<double>(hits) / k_;
  recall_ += static_cast<double>(hits) / static_cast<double>(relevant.size());
  ++count_;
}

double ErrorMetrics::rmse() const { return count_ ? std::sqrt(squared_ / count_) : 0.0; }

}  // namespace petal::model
