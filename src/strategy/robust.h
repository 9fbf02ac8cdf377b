// File: robust.h
//
// Byzantine-robust aggregation (Flower's FedMedian, FedTrimmedAvg and Krum,
// legacy API). These need every result of the round at once, so their
// aggregator buffers the results (memory O(clients x model), unavoidable for
// order statistics); sampling and evaluation are FedAvg's. num_examples is
// ignored except by MultiKrum's final weighted average.
//
//   FedMedian      element-wise median (mean of the two middle values for an even K)
//   FedTrimmedAvg  element-wise mean after dropping floor(beta*K) values at each end
//                  (beta in [0, 0.5), default 0.2)
//   Krum           score_i = sum of the K-f-2 smallest squared distances to the
//                  others; num_clients_to_keep = 0 returns the best result as is
//                  (first index on ties), k > 0 (MultiKrum) the weighted FedAvg
//                  of the k best. Defaults f = 0, k = 0.
#pragma once

#include "strategy/fedavg.h"

namespace petal::strategy {

// A FedAvg-family strategy whose aggregation needs all results together.
class BufferedStrategy : public FedAvg {
 public:
  using FedAvg::FedAvg;
  absl::StatusOr<FitAggregatorPtr> BeginAggregateFit(int64_t server_round,
                                                     const SharedNDArrays& current) override;
  // Aggregates the round's results (at least one, all with the same layout).
  virtual absl::StatusOr<NDArrays> AggregateAll(int64_t server_round,
                                                const std::vector<FitResult>& results) = 0;
};

class FedMedian final : public BufferedStrategy {
 public:
  explicit FedMedian(FedAvgOptions options);
  std::string_view name() const override { return "fedmedian"; }
  absl::StatusOr<NDArrays> AggregateAll(int64_t server_round,
                                        const std::vector<FitResult>& results) override;
};

class FedTrimmedAvg final : public BufferedStrategy {
 public:
  FedTrimmedAvg(FedAvgOptions options, double beta);
  std::string_view name() const override { return "fedtrimmedavg"; }
  absl::StatusOr<NDArrays> AggregateAll(int64_t server_round,
                                        const std::vector<FitResult>& results) override;

 private:
  double beta_;
};

class Krum final : public BufferedStrategy {
 public:
  Krum(FedAvgOptions options, int64_t num_malicious_clients, int64_t num_clients_to_keep);
  std::string_view name() const override { return "krum"; }
  absl::StatusOr<NDArrays> AggregateAll(int64_t server_round,
                                        const std::vector<FitResult>& results) override;

 private:
  int64_t num_malicious_clients_;
  int64_t num_clients_to_keep_;
};

}  // namespace petal::strategy
