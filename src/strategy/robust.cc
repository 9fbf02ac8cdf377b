#include "strategy/robust.h"

#include <fmt/format.h>

#include "common/status_macros.h"

namespace petal::strategy {
namespace {

class BufferedFitAggregator final : public FitAggregator {
 public:
  BufferedFitAggregator(BufferedStrategy& strategy, int64_t server_round, SharedNDArrays current)
      : strategy_(strategy), server_round_(server_round), current_(std::move(current)) {}

  absl::Status Add(FitResult result) override {
    if (result.res.num_examples <= 0) {
      return absl::InvalidArgumentError(
          fmt::format("num_examples must be > 0, got {}", result.res.num_examples));
    }
    if (!results_.empty()) {
      PETAL_RETURN_IF_ERROR(CheckSameLayout(results_.front().res.parameters, result.res.parameters));
    }
    if (strategy_.options().integer_arrays == IntegerPolicy::kReject) {
      for (size_t a = 0; a < result.res.parameters.size(); ++a) {
        const common::DType d = result.res.parameters[a].dtype();
        if (!common::IsFloating(d)) {
          return absl::InvalidArgumentError(fmt::format(
              "array {} has dtype {}; integer and bool arrays are refused (integer_arrays: reject)",
              a, common::DTypeName(d)));
        }
      }
    }
    results_.push_back(std::move(result));
    return absl::OkStatus();
  }

  int64_t num_results() const override { return static_cast<int64_t>(results_.size()); }

  absl::StatusOr<FitAggregate> Finish(const std::vector<Failure>& failures) override {
    FitAggregate out;
    if (results_.empty()) return out;
    if (!strategy_.options().accept_failures && !failures.empty()) return out;
    PETAL_ASSIGN_OR_RETURN(NDArrays aggregated, strategy_.AggregateAll(server_round_, results_));
    PETAL_ASSIGN_OR_RETURN(NDArrays updated,
                           strategy_.ServerUpdate(server_round_, current_, std::move(aggregated)));
    out.parameters = std::move(updated);
    if (strategy_.options().fit_metrics_aggregation == MetricsAggregation::kWeightedAverage) {
      std::vector<std::pair<int64_t, const ConfigMap*>> refs;
      for (const FitResult& r : results_) refs.emplace_back(r.res.num_examples, &r.res.metrics);
      out.metrics = WeightedMetricsAverage(refs);
    }
    return out;
  }

 private:
  BufferedStrategy& strategy_;
  const int64_t server_round_;
  const SharedNDArrays current_;
  std::vector<FitResult> results_;
};

std::vector<const NDArrays*> ArraysOf(const std::vector<FitResult>& results) {
  std::vector<const NDArrays*> out;
  out.reserve(results.size());
  for (const FitResult& r : results) out.push_back(&r.res.parameters);
  return out;
}

}  // namespace

absl::StatusOr<FitAggregatorPtr> BufferedStrategy::BeginAggregateFit(int64_t server_round,
                                                                     const SharedNDArrays& current) {
  return std::make_unique<BufferedFitAggregator>(*this, server_round, current);
}

FedMedian::FedMedian(FedAvgOptions options) : BufferedStrategy(std::move(options)) {}

absl::StatusOr<NDArrays> FedMedian::AggregateAll(int64_t server_round,
                                                 const std::vector<FitResult>& results) {
  return AggregateMedian(ArraysOf(results), options().integer_arrays);
}

FedTrimmedAvg::FedTrimmedAvg(FedAvgOptions options, double beta)
    : BufferedStrategy(std::move(options)), beta_(beta) {}

absl::StatusOr<NDArrays> FedTrimmedAvg::AggregateAll(int64_t server_round,
                                                     const std::vector<FitResult>& results) {
  return AggregateTrimmedMean(ArraysOf(results), beta_, options().integer_arrays);
}

Krum::Krum(FedAvgOptions options, int64_t num_malicious_clients, int64_t num_clients_to_keep)
    : BufferedStrategy(std::move(options)),
      num_malicious_clients_(num_malicious_clients),
      num_clients_to_keep_(num_clients_to_keep) {}

absl::StatusOr<NDArrays> Krum::AggregateAll(int64_t server_round,
                                            const std::vector<FitResult>& results) {
  std::vector<const NDArrays*> arrays = ArraysOf(results);
  PETAL_ASSIGN_OR_RETURN(std::vector<double> scores, KrumScores(arrays, num_malicious_clients_));
  PETAL_ASSIGN_OR_RETURN(std::vector<size_t> picked, KrumSelect(scores, num_clients_to_keep_));
  if (num_clients_to_keep_ == 0) return *arrays[picked.front()];
  std::vector<std::pair<const NDArrays*, int64_t>> chosen;
  for (size_t i : picked) chosen.emplace_back(arrays[i], results[i].res.num_examples);
  return AggregateWeighted(chosen, options().accumulation, options().integer_arrays);
}

}  // namespace petal::strategy
