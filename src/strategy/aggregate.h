// File: aggregate.h
//
// The numeric kernels behind the strategies (Flower's
// flwr/server/strategy/aggregate.py and the optimizer steps of fedopt/fedavgm),
// as free functions over NDArrays, tested on their own. No state, no I/O.
//
// Numerics. Flower computes in each array's own dtype with NumPy 1.x rules
// (a Python float meeting a float32 array is rounded to float32 first; float16
// operations round after every step). The kernels reproduce that operation for
// operation where the order is deterministic (FedOpt/FedAvgM steps, median,
// Krum scores' selection, the non-inplace weighted average in
// Accumulation::kNative). Where Flower's order is not reproducible while
// streaming (its default in-place FedAvg scales by n_i/N before summing, which
// needs every result first) Petal's default Accumulation::kFloat64 sums
// n_i * w_i in float64 and rounds once: more accurate than Flower, and equal to
// it within Flower's own rounding error (docs/server.md has the measurements).
//
// Integer and bool arrays: Flower's in-place FedAvg casts the factor n_i/N to
// the integer dtype, which zeroes the array ([1,2],[3,5] with n=1,3 -> [0,0]),
// and its other path silently turns the array into float64. Petal does neither:
// IntegerPolicy::kRound (default) averages in float64 and rounds half to even
// back into the same dtype (bool: a weighted majority, ties to false);
// IntegerPolicy::kReject refuses such arrays with InvalidArgument.
//
// Every function is thread-safe (no shared state). Errors are InvalidArgument
// naming the result and array index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/aligned_alloc.h"
#include "common/messages.h"
#include "common/ndarray.h"
#include "common/scalar.h"

namespace petal::strategy {

using common::ConfigMap;
using common::NDArray;
using common::NDArrays;

enum class Accumulation {
  kFloat64,  // sum n_i * w_i in float64 (compensated for float64 arrays), divide by N,
             // round once to the dtype: in practice independent of the arrival order
  kNative,   // Flower's aggregate(): (w_1*n_1 + w_2*n_2 + ...) / N in order, each operation
             // in the dtype NumPy 1.x computes it in, result stored in the array's dtype
};
enum class IntegerPolicy {
  kRound,   // float64 weighted mean rounded half-to-even into the integer dtype
  kReject,  // InvalidArgument for any integer or bool array
};

// "float64" / "native", "round" / "reject".
absl::StatusOr<Accumulation> ParseAccumulation(std::string_view name);
absl::StatusOr<IntegerPolicy> ParseIntegerPolicy(std::string_view name);

// OK when `arrays` has the same number of arrays as `reference` and each has
// the same dtype and shape. InvalidArgument naming the first difference.
absl::Status CheckSameLayout(const NDArrays& reference, const NDArrays& arrays);
// OK when no floating-point element is NaN or +/-Inf. InvalidArgument naming
// the array and element index otherwise.
absl::Status CheckFinite(const NDArrays& arrays);

namespace internal {
// Returns common::AllocateAligned memory of `nbytes` bytes.
struct AlignedDeleter {
  size_t nbytes = 0;
  void operator()(double* p) const { common::FreeAligned(p, nbytes); }
};
}  // namespace internal

// Streaming weighted average sum(n_i * w_i) / sum(n_i): Add() each result as it
// arrives; memory is one accumulator the size of the model (float64 mode:
// 8 bytes per element). The first Add fixes the layout. Not thread-safe.
class WeightedAverage {
 public:
  WeightedAverage(Accumulation accumulation, IntegerPolicy integer_policy);

  // InvalidArgument (state unchanged) if num_examples <= 0, the layout differs
  // from the first result, or an integer array meets IntegerPolicy::kReject.
  absl::Status Add(const NDArrays& arrays, int64_t num_examples);
  int64_t count() const { return count_; }
  int64_t total_examples() const { return total_examples_; }
  // The average. FailedPrecondition if nothing was added.
  absl::StatusOr<NDArrays> Result() const;

 private:
  // common::AllocateAligned memory (model-sized buffers are reused across
  // rounds), written in full by the first Add (never read before), so never
  // zero-filled.
  using Buffer = std::unique_ptr<double[], internal::AlignedDeleter>;
  struct Slot {
    common::DType dtype = common::DType::kFloat32;
    common::Shape shape;
    // float64 mode and integer arrays: the float64 sum. Native mode: the running
    // sum, exactly representable in `native_dtype`, the dtype NumPy would hold
    // it in at this point (value-based casting may widen it).
    Buffer sum;
    Buffer low;  // float64 mode, float64 arrays: the compensation term of `sum`
    common::DType native_dtype = common::DType::kFloat64;
  };
  absl::Status CheckLayout(const NDArrays& arrays) const;
  static Buffer NewBuffer(int64_t size);

  Accumulation accumulation_;
  IntegerPolicy integer_policy_;
  std::vector<Slot> slots_;
  int64_t count_ = 0;
  int64_t total_examples_ = 0;
};

// Batch form of WeightedAverage over (arrays, num_examples) pairs, in order.
absl::StatusOr<NDArrays> AggregateWeighted(
    const std::vector<std::pair<const NDArrays*, int64_t>>& results, Accumulation accumulation,
    IntegerPolicy integer_policy);

// Flower's weighted_loss_avg: sum(n_i * loss_i) / sum(n_i), summed in order in
// float64. InvalidArgument if the results are empty or sum(n_i) <= 0.
absl::StatusOr<double> WeightedLossAverage(const std::vector<std::pair<int64_t, double>>& results);

// Element-wise median across results (np.median(axis=0)): the middle value,
// or for an even count the mean of the two middle values computed as NumPy's
// np.mean does in the array's dtype. num_examples is ignored.
absl::StatusOr<NDArrays> AggregateMedian(const std::vector<const NDArrays*>& results,
                                         IntegerPolicy integer_policy);

// Element-wise trimmed mean (Flower's _trim_mean): sort the K values, drop
// floor(beta * K) from each end, average the rest (summed in float64, rounded
// once). InvalidArgument unless 0 <= beta < 0.5.
absl::StatusOr<NDArrays> AggregateTrimmedMean(const std::vector<const NDArrays*>& results,
                                              double beta, IntegerPolicy integer_policy);

// Krum scores (Flower's aggregate_krum): D_ij = squared Euclidean distance of
// the flattened results (computed in float64); score_i = sum of the
// c = max(1, K - f - 2) smallest D_ij over j != i (ascending, in order).
absl::StatusOr<std::vector<double>> KrumScores(const std::vector<const NDArrays*>& results,
                                               int64_t num_malicious);
// Krum's choice: the indices of the `to_keep` lowest scores in the order
// Flower's aggregate_krum averages them (np.argsort(scores)[::-1][K-to_keep:],
// with ties broken by index), or for to_keep == 0 the single argmin (first
// index on ties). InvalidArgument if to_keep > K.
absl::StatusOr<std::vector<size_t>> KrumSelect(const std::vector<double>& scores, int64_t to_keep);

// --- Server-side optimizers (FedOpt family, FedAvgM) -----------------------

enum class ServerOptimizer { kAdagrad, kAdam, kYogi };

struct FedOptHyperparameters {
  double eta = 0.1;
  double beta_1 = 0.0;
  double beta_2 = 0.0;
  double tau = 1e-9;
};

// FedAdam's bias-corrected step size for round r:
// eta * sqrt(1 - beta_2^(r+1)) / (1 - beta_1^(r+1)) (note the +1, as Flower).
double AdamStepSize(double eta, double beta_1, double beta_2, int64_t server_round);

// One FedOpt step (Flower's FedAdagrad/FedAdam/FedYogi.aggregate_fit after the
// FedAvg): delta = avg - x; m = b1*m + (1-b1)*delta; v per optimizer;
// x' = x + step_size * m / (sqrt(v) + tau), in each array's dtype. `m` and `v`
// are updated in place (empty: start from zeros). InvalidArgument for layout
// mismatches or non-floating arrays.
absl::StatusOr<NDArrays> FedOptStep(ServerOptimizer optimizer, const FedOptHyperparameters& hp,
                                    double step_size, const NDArrays& x, const NDArrays& avg,
                                    NDArrays* m, NDArrays* v);

// One FedAvgM server step (Flower's FedAvgM with server-side optimization):
// g = x - avg; with momentum > 0: m = g when `momentum_vector` is empty,
// else m = momentum * m + g, and g = m; x' = x - learning_rate * g.
absl::StatusOr<NDArrays> FedAvgMStep(double learning_rate, double momentum, const NDArrays& x,
                                     const NDArrays& avg, NDArrays* momentum_vector);

// --- Metrics ---------------------------------------------------------------

// For every numeric metric (int or float) that appears in the results: the
// num_examples-weighted mean over the results that report it, as a double.
// Non-numeric metrics are skipped. Results with num_examples <= 0 are skipped.
ConfigMap WeightedMetricsAverage(const std::vector<std::pair<int64_t, const ConfigMap*>>& results);

}  // namespace petal::strategy
