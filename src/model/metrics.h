// File: metrics.h
//
// Recommender metrics as plain functions and accumulators (no LibTorch), so
// they can be checked by hand:
//   - leave-one-out ranking: HR@K and NDCG@K of the held-out item among its
//     sampled negatives (He et al., NCF);
//   - full-catalog Precision@K / Recall@K: every item the user has not
//     trained on is ranked, relevant = the user's held-out items;
//   - rating error: RMSE and MAE.
//
// Ties and NaN count against the positive (a pessimistic rank), so a constant
// or broken scorer never looks good. Thread-compatible.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace petal::model {

// 0-based rank of the positive: how many negatives score >= it (or are NaN,
// or all of them when the positive is NaN).
int64_t RankOfPositive(float positive, absl::Span<const float> negatives);
// 1 if rank < k else 0.
double HitAtK(int64_t rank, int32_t k);
// 1 / log2(rank + 2) if rank < k else 0.
double NdcgAtK(int64_t rank, int32_t k);

// Mean HR@K and NDCG@K over cases.
class RankingMetrics {
 public:
  explicit RankingMetrics(int32_t k) : k_(k) {}
  void Add(float positive, absl::Span<const float> negatives);
  int64_t count() const { return count_; }
  double hit_rate() const { return count_ ? hits_ / count_ : 0.0; }
  double ndcg() const { return count_ ? ndcg_ / count_ : 0.0; }

 private:
  int32_t k_;
  int64_t count_ = 0;
  double hits_ = 0;
  double ndcg_ = 0;
};

// The k best items by score, best first; `excluded` (ascending) are skipped;
// ties go to the lower item id; NaN scores rank last.
std::vector<int32_t> TopK(absl::Span<const float> scores, absl::Span<const int32_t> excluded,
                          int32_t k);

// Mean Precision@K and Recall@K over users with at least one relevant item.
class CatalogMetrics {
 public:
  explicit CatalogMetrics(int32_t k) : k_(k) {}
  // `scores` for every catalog item; `excluded` and `relevant` ascending item ids.
  void AddUser(absl::Span<const float> scores, absl::Span<const int32_t> excluded,
               absl::Span<const int32_t> relevant);
  int64_t count() const { return count_; }
  double precision() const { return count_ ? precision_ / count_ : 0.0; }
  double recall() const { return count_ ? recall_ / count_ : 0.0; }

 private:
  int32_t k_;
  int64_t count_ = 0;
  double precision_ = 0;
  double recall_ = 0;
};

// RMSE and MAE of predictions against targets.
class ErrorMetrics {
 public:
  void Add(double prediction, double target) {
    const double e = prediction - target;
    squared_ += e * e;
    absolute_ += e < 0 ? -e : e;
    ++count_;
  }
  int64_t count() const { return count_; }
  double rmse() const;
  double mae() const { return count_ ? absolute_ / count_ : 0.0; }

 private:
  int64_t count_ = 0;
  double squared_ = 0;
  double absolute_ = 0;
};

}  // namespace petal::model
