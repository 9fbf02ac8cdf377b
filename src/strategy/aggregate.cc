#include "strategy/aggregate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include <fmt/format.h>

#include "common/status_macros.h"
#include "strategy/internal/numeric.h"

namespace petal::strategy {
namespace {

using common::DType;
using internal::Cast;
using internal::DispatchFloat;
using internal::Half;
using internal::Load;
using internal::Store;

bool IsIntegerLike(DType dtype) { return !common::IsFloating(dtype); }

absl::Status IntegerRejected(size_t index, DType dtype) {
  return absl::InvalidArgumentError(fmt::format(
      "array {} has dtype {}; integer and bool arrays are refused (integer_arrays: reject)", index,
      common::DTypeName(dtype)));
}

absl::StatusOr<NDArray> Allocate(DType dtype, const common::Shape& shape) {
  return NDArray::Zeros(dtype, shape);
}

// Gathers element `e` of array `a` of every result into `out` as T.
template <typename T>
void Gather(const std::vector<const NDArrays*>& results, size_t a, int64_t e, std::vector<T>* out) {
  out->clear();
  for (const NDArrays* r : results) out->push_back(Load<T>((*r)[a].data(), e));
}

void GatherInteger(const std::vector<const NDArrays*>& results, size_t a, int64_t e,
                   std::vector<double>* out) {
  out->clear();
  for (const NDArrays* r : results) {
    out->push_back(internal::LoadIntegerAsDouble((*r)[a].dtype(), (*r)[a].data(), e));
  }
}

// Total order on values with NaN last, so sorting never misbehaves.
template <typename T>
bool LessNanLast(T a, T b) {
  const double x = internal::ToDouble(a);
  const double y = internal::ToDouble(b);
  if (std::isnan(x)) return false;
  if (std::isnan(y)) return true;
  return x < y;
}

template <typename T>
bool AnyNan(const std::vector<T>& values) {
  for (const T& v : values) {
    if (std::isnan(internal::ToDouble(v))) return true;
  }
  return false;
}

// Checks that every result has the layout of the first.
absl::Status CheckAllSameLayout(const std::vector<const NDArrays*>& results) {
  if (results.empty()) return absl::InvalidArgumentError("no results to aggregate");
  for (size_t i = 1; i < results.size(); ++i) {
    absl::Status s = CheckSameLayout(*results[0], *results[i]);
    if (!s.ok()) return common::Annotate(s, fmt::format("result {}", i));
  }
  return absl::OkStatus();
}

absl::Status CheckIntegerPolicy(const NDArrays& arrays, IntegerPolicy policy) {
  if (policy != IntegerPolicy::kReject) return absl::OkStatus();
  for (size_t a = 0; a < arrays.size(); ++a) {
    if (IsIntegerLike(arrays[a].dtype())) return IntegerRejected(a, arrays[a].dtype());
  }
  return absl::OkStatus();
}

// The mean of the two middle values as np.mean computes it for each dtype.
template <typename T>
T MeanOfTwo(T a, T b);
template <>
float MeanOfTwo(float a, float b) {
  return (a + b) / 2.0f;
}
template <>
double MeanOfTwo(double a, double b) {
  return (a + b) / 2.0;
}
template <>
Half MeanOfTwo(Half a, Half b) {
  // float16 means accumulate in float32, divide in float32, then round to half.
  return Half::Round((a.v + b.v) / 2.0f);
}

absl::Status CheckFloatingPair(const NDArrays& x, const NDArrays& y, std::string_view what) {
  absl::Status s = CheckSameLayout(x, y);
  if (!s.ok()) return common::Annotate(s, what);
  for (size_t a = 0; a < x.size(); ++a) {
    if (!common::IsFloating(x[a].dtype())) {
      return absl::InvalidArgumentError(fmt::format(
          "array {} has dtype {}; server-side optimizers need floating-point arrays", a,
          common::DTypeName(x[a].dtype())));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Accumulation> ParseAccumulation(std::string_view name) {
  if (name == "float64") return Accumulation::kFloat64;
  if (name == "native") return Accumulation::kNative;
  return absl::InvalidArgumentError(
      fmt::format("unknown accumulation '{}' (expected float64 or native)", name));
}

absl::StatusOr<IntegerPolicy> ParseIntegerPolicy(std::string_view name) {
  if (name == "round") return IntegerPolicy::kRound;
  if (name == "reject") return IntegerPolicy::kReject;
  return absl::InvalidArgumentError(
      fmt::format("unknown integer_arrays policy '{}' (expected round or reject)", name));
}

absl::Status CheckSameLayout(const NDArrays& reference, const NDArrays& arrays) {
  if (arrays.size() != reference.size()) {
    return absl::InvalidArgumentError(
        fmt::format("expected {} arrays, got {}", reference.size(), arrays.size()));
  }
  for (size_t a = 0; a < arrays.size(); ++a) {
    if (arrays[a].dtype() != reference[a].dtype()) {
      return absl::InvalidArgumentError(fmt::format("array {}: expected dtype {}, got {}", a,
                                                    common::DTypeName(reference[a].dtype()),
                                                    common::DTypeName(arrays[a].dtype())));
    }
    if (arrays[a].shape() != reference[a].shape()) {
      return absl::InvalidArgumentError(fmt::format("array {}: expected shape {}, got {}", a,
                                                    common::ShapeToString(reference[a].shape()),
                                                    common::ShapeToString(arrays[a].shape())));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(const NDArrays& arrays) {
  for (size_t a = 0; a < arrays.size(); ++a) {
    const NDArray& arr = arrays[a];
    int64_t bad = -1;
    switch (arr.dtype()) {
      case DType::kFloat32: {
        absl::Span<const float> v = arr.values<float>();
        for (size_t i = 0; i < v.size(); ++i) {
          if (!std::isfinite(v[i])) {
            bad = static_cast<int64_t>(i);
            break;
          }
        }
        break;
      }
      case DType::kFloat64: {
        absl::Span<const double> v = arr.values<double>();
        for (size_t i = 0; i < v.size(); ++i) {
          if (!std::isfinite(v[i])) {
            bad = static_cast<int64_t>(i);
            break;
          }
        }
        break;
      }
      case DType::kFloat16: {
        for (int64_t i = 0; i < arr.size(); ++i) {
          uint16_t bits;
          std::memcpy(&bits, arr.data() + i * 2, 2);
          if ((bits & 0x7c00) == 0x7c00) {
            bad = i;
            break;
          }
        }
        break;
      }
      default:
        break;
    }
    if (bad >= 0) {
      return absl::InvalidArgumentError(
          fmt::format("array {} {} has a non-finite value (NaN or Inf) at flat index {}", a,
                      arr.DebugString(), bad));
    }
  }
  return absl::OkStatus();
}

// --- WeightedAverage ---------------------------------------------------------

WeightedAverage::WeightedAverage(Accumulation accumulation, IntegerPolicy integer_policy)
    : accumulation_(accumulation), integer_policy_(integer_policy) {}

absl::Status WeightedAverage::CheckLayout(const NDArrays& arrays) const {
  if (arrays.size() != slots_.size()) {
    return absl::InvalidArgumentError(
        fmt::format("expected {} arrays, got {}", slots_.size(), arrays.size()));
  }
  for (size_t a = 0; a < arrays.size(); ++a) {
    if (arrays[a].dtype() != slots_[a].dtype) {
      return absl::InvalidArgumentError(fmt::format("array {}: expected dtype {}, got {}", a,
                                                    common::DTypeName(slots_[a].dtype),
                                                    common::DTypeName(arrays[a].dtype())));
    }
    if (arrays[a].shape() != slots_[a].shape) {
      return absl::InvalidArgumentError(fmt::format("array {}: expected shape {}, got {}", a,
                                                    common::ShapeToString(slots_[a].shape),
                                                    common::ShapeToString(arrays[a].shape())));
    }
  }
  return absl::OkStatus();
}

namespace {
// acc[i] = term(i) for the first result (the accumulator is uninitialized
// before it), acc[i] += term(i) for the others.
template <typename Term>
void Fold(bool first, int64_t size, double* acc, const Term& term) {
  if (first) {
    for (int64_t i = 0; i < size; ++i) acc[i] = term(i);
  } else {
    for (int64_t i = 0; i < size; ++i) acc[i] += term(i);
  }
}
}  // namespace

WeightedAverage::Buffer WeightedAverage::NewBuffer(int64_t size) {
  const size_t nbytes = static_cast<size_t>(size) * sizeof(double);
  return Buffer(static_cast<double*>(common::AllocateAligned(nbytes)), internal::AlignedDeleter{nbytes});
}

absl::Status WeightedAverage::Add(const NDArrays& arrays, int64_t num_examples) {
  if (num_examples <= 0) {
    return absl::InvalidArgumentError(
        fmt::format("num_examples must be > 0, got {}", num_examples));
  }
  if (total_examples_ > std::numeric_limits<int64_t>::max() - num_examples) {
    return absl::InvalidArgumentError("total num_examples overflows int64");
  }
  PETAL_RETURN_IF_ERROR(CheckIntegerPolicy(arrays, integer_policy_));
  const bool first = count_ == 0;
  if (first) {
    slots_.clear();
    slots_.reserve(arrays.size());
    for (const NDArray& arr : arrays) {
      Slot slot;
      slot.dtype = arr.dtype();
      slot.shape = arr.shape();
      slot.sum = NewBuffer(arr.size());
      if (accumulation_ == Accumulation::kFloat64 && arr.dtype() == DType::kFloat64) {
        slot.low = NewBuffer(arr.size());
      }
      slots_.push_back(std::move(slot));
    }
  } else {
    PETAL_RETURN_IF_ERROR(CheckLayout(arrays));
  }

  const double n = static_cast<double>(num_examples);
  for (size_t a = 0; a < arrays.size(); ++a) {
    const NDArray& w = arrays[a];
    Slot& slot = slots_[a];
    const int64_t size = w.size();
    double* acc = slot.sum.get();
    // The first result initializes the (uninitialized) accumulator; later ones add to it.
    if (!common::IsFloating(w.dtype())) {
      Fold(first, size, acc, [&](int64_t i) { return n * internal::LoadIntegerAsDouble(w.dtype(), w.data(), i); });
      continue;
    }
    if (accumulation_ == Accumulation::kFloat64) {
      if (w.dtype() == DType::kFloat32) {
        // n * w is exact in float64 (24 + 31 bits), and sums of the same
        // parameter across clients stay exact in practice: no compensation needed
        // for the result not to depend on the arrival order.
        const float* src = reinterpret_cast<const float*>(w.data());
        Fold(first, size, acc, [&](int64_t i) { return n * static_cast<double>(src[i]); });
      } else if (w.dtype() == DType::kFloat16) {
        Fold(first, size, acc, [&](int64_t i) { return n * internal::ToDouble(Load<Half>(w.data(), i)); });
      } else {
        // float64: products round, so sum them with TwoSum compensation (~106
        // bits): the result does not depend on the order results arrive in, and
        // a resumed run reproduces an uninterrupted one.
        double* low = slot.low.get();
        const double* src = reinterpret_cast<const double*>(w.data());
        if (first) {
          for (int64_t i = 0; i < size; ++i) {
            acc[i] = n * src[i];
            low[i] = 0.0;
          }
          continue;
        }
        for (int64_t i = 0; i < size; ++i) {
          const double p = n * src[i];
          const double s = acc[i] + p;
          const double b = s - acc[i];
          low[i] += (acc[i] - (s - b)) + (p - b);
          acc[i] = s;
        }
      }
      continue;
    }
    // Native: Flower's aggregate(): term = layer * n, then sum += term, each in
    // the dtype NumPy picks (internal::PromoteWithCount); values held as doubles.
    const bool zero_dim = w.ndim() == 0;
    const DType term_dtype = internal::PromoteWithCount(w.dtype(), n, zero_dim);
    const DType add_dtype = first ? term_dtype : internal::WiderFloat(slot.native_dtype, term_dtype);
    DispatchFloat(w.dtype(), [&](auto wtag) {
      using W = decltype(wtag);
      DispatchFloat(term_dtype, [&](auto ttag) {
        using T = decltype(ttag);
        const T nt = Cast<T>(n);
        if (first) {
          for (int64_t i = 0; i < size; ++i) {
            acc[i] = internal::ToDouble(Cast<T>(internal::ToDouble(Load<W>(w.data(), i))) * nt);
          }
          return;
        }
        DispatchFloat(add_dtype, [&](auto atag) {
          using A = decltype(atag);
          for (int64_t i = 0; i < size; ++i) {
            const T term = Cast<T>(internal::ToDouble(Load<W>(w.data(), i))) * nt;
            acc[i] = internal::ToDouble(Cast<A>(acc[i]) + Cast<A>(internal::ToDouble(term)));
          }
        });
      });
    });
    slot.native_dtype = add_dtype;
  }
  ++count_;
  total_examples_ += num_examples;
  return absl::OkStatus();
}

absl::StatusOr<NDArrays> WeightedAverage::Result() const {
  if (count_ == 0) return absl::FailedPreconditionError("no results were added");
  const double total = static_cast<double>(total_examples_);
  NDArrays out;
  out.reserve(slots_.size());
  for (const Slot& slot : slots_) {
    // Every element is written below.
    PETAL_ASSIGN_OR_RETURN(NDArray result, NDArray::ForOverwrite(slot.dtype, slot.shape));
    const int64_t size = result.size();
    std::byte* dst = result.mutable_data();
    const double* acc = slot.sum.get();
    if (!common::IsFloating(slot.dtype)) {
      for (int64_t i = 0; i < size; ++i) internal::StoreRoundedInteger(slot.dtype, dst, i, acc[i] / total);
    } else if (accumulation_ == Accumulation::kFloat64) {
      const double* low = slot.low.get();
      DispatchFloat(slot.dtype, [&](auto tag) {
        using T = decltype(tag);
        for (int64_t i = 0; i < size; ++i) {
          Store<T>(dst, i, internal::FromDouble<T>((low ? acc[i] + low[i] : acc[i]) / total));
        }
      });
    } else {
      // sum / N in NumPy's dtype, then stored in the array's own dtype.
      const DType div_dtype =
          internal::PromoteWithCount(slot.native_dtype, total, slot.shape.empty());
      DispatchFloat(slot.dtype, [&](auto otag) {
        using O = decltype(otag);
        DispatchFloat(div_dtype, [&](auto dtag) {
          using D = decltype(dtag);
          const D nt = Cast<D>(total);
          for (int64_t i = 0; i < size; ++i) {
            Store<O>(dst, i, Cast<O>(internal::ToDouble(Cast<D>(acc[i]) / nt)));
          }
        });
      });
    }
    out.push_back(std::move(result));
  }
  return out;
}

absl::StatusOr<NDArrays> AggregateWeighted(
    const std::vector<std::pair<const NDArrays*, int64_t>>& results, Accumulation accumulation,
    IntegerPolicy integer_policy) {
  WeightedAverage avg(accumulation, integer_policy);
  for (size_t i = 0; i < results.size(); ++i) {
    absl::Status s = avg.Add(*results[i].first, results[i].second);
    if (!s.ok()) return common::Annotate(s, fmt::format("result {}", i));
  }
  return avg.Result();
}

absl::StatusOr<double> WeightedLossAverage(const std::vector<std::pair<int64_t, double>>& results) {
  if (results.empty()) return absl::InvalidArgumentError("no evaluation results to average");
  int64_t total = 0;
  for (const auto& [n, loss] : results) total += n;
  if (total <= 0) {
    return absl::InvalidArgumentError(
        fmt::format("total num_examples is {}; cannot average losses", total));
  }
  double weighted = 0.0;
  for (const auto& [n, loss] : results) weighted += static_cast<double>(n) * loss;
  return weighted / static_cast<double>(total);
}

absl::StatusOr<NDArrays> AggregateMedian(const std::vector<const NDArrays*>& results,
                                         IntegerPolicy integer_policy) {
  PETAL_RETURN_IF_ERROR(CheckAllSameLayout(results));
  PETAL_RETURN_IF_ERROR(CheckIntegerPolicy(*results[0], integer_policy));
  const size_t k = results.size();
  NDArrays out;
  for (size_t a = 0; a < results[0]->size(); ++a) {
    const NDArray& ref = (*results[0])[a];
    PETAL_ASSIGN_OR_RETURN(NDArray result, Allocate(ref.dtype(), ref.shape()));
    std::byte* dst = result.mutable_data();
    const bool handled = DispatchFloat(ref.dtype(), [&](auto tag) {
      using T = decltype(tag);
      std::vector<T> values;
      values.reserve(k);
      for (int64_t e = 0; e < ref.size(); ++e) {
        Gather<T>(results, a, e, &values);
        if (AnyNan(values)) {
          Store<T>(dst, e, Cast<T>(std::numeric_limits<double>::quiet_NaN()));
          continue;
        }
        std::sort(values.begin(), values.end(), LessNanLast<T>);
        Store<T>(dst, e, k % 2 == 1 ? values[k / 2] : MeanOfTwo(values[k / 2 - 1], values[k / 2]));
      }
    });
    if (!handled) {
      std::vector<double> values;
      for (int64_t e = 0; e < ref.size(); ++e) {
        GatherInteger(results, a, e, &values);
        std::sort(values.begin(), values.end());
        const double m = k % 2 == 1 ? values[k / 2] : (values[k / 2 - 1] + values[k / 2]) / 2.0;
        internal::StoreRoundedInteger(ref.dtype(), dst, e, m);
      }
    }
    out.push_back(std::move(result));
  }
  return out;
}

absl::StatusOr<NDArrays> AggregateTrimmedMean(const std::vector<const NDArrays*>& results,
                                              double beta, IntegerPolicy integer_policy) {
  if (!(beta >= 0.0 && beta < 0.5)) {
    return absl::InvalidArgumentError(
        fmt::format("trimmed-mean beta must be in [0, 0.5), got {}", beta));
  }
  PETAL_RETURN_IF_ERROR(CheckAllSameLayout(results));
  PETAL_RETURN_IF_ERROR(CheckIntegerPolicy(*results[0], integer_policy));
  const size_t k = results.size();
  const size_t cut = static_cast<size_t>(beta * static_cast<double>(k));
  const size_t lo = cut;
  const size_t hi = k - cut;
  if (lo >= hi) {
    return absl::InvalidArgumentError(
        fmt::format("trimming {} of {} values from each end leaves nothing", cut, k));
  }
  const double count = static_cast<double>(hi - lo);
  NDArrays out;
  for (size_t a = 0; a < results[0]->size(); ++a) {
    const NDArray& ref = (*results[0])[a];
    PETAL_ASSIGN_OR_RETURN(NDArray result, Allocate(ref.dtype(), ref.shape()));
    std::byte* dst = result.mutable_data();
    const bool handled = DispatchFloat(ref.dtype(), [&](auto tag) {
      using T = decltype(tag);
      std::vector<T> values;
      values.reserve(k);
      for (int64_t e = 0; e < ref.size(); ++e) {
        Gather<T>(results, a, e, &values);
        if (AnyNan(values)) {
          Store<T>(dst, e, Cast<T>(std::numeric_limits<double>::quiet_NaN()));
          continue;
        }
        std::sort(values.begin(), values.end(), LessNanLast<T>);
        double sum = 0.0;
        for (size_t i = lo; i < hi; ++i) sum += internal::ToDouble(values[i]);
        Store<T>(dst, e, internal::FromDouble<T>(sum / count));
      }
    });
    if (!handled) {
      std::vector<double> values;
      for (int64_t e = 0; e < ref.size(); ++e) {
        GatherInteger(results, a, e, &values);
        std::sort(values.begin(), values.end());
        double sum = 0.0;
        for (size_t i = lo; i < hi; ++i) sum += values[i];
        internal::StoreRoundedInteger(ref.dtype(), dst, e, sum / count);
      }
    }
    out.push_back(std::move(result));
  }
  return out;
}

absl::StatusOr<std::vector<double>> KrumScores(const std::vector<const NDArrays*>& results,
                                               int64_t num_malicious) {
  PETAL_RETURN_IF_ERROR(CheckAllSameLayout(results));
  if (num_malicious < 0) {
    return absl::InvalidArgumentError(
        fmt::format("num_malicious_clients must be >= 0, got {}", num_malicious));
  }
  const size_t k = results.size();
  std::vector<double> dist(k * k, 0.0);
  // Work through each array in chunks: convert the chunk of every result to
  // float64 once (K x kChunk doubles), then accumulate the pairwise distances.
  constexpr int64_t kChunk = 4096;
  std::vector<double> chunk(k * static_cast<size_t>(kChunk));
  for (size_t a = 0; a < results[0]->size(); ++a) {
    const int64_t size = (*results[0])[a].size();
    for (int64_t begin = 0; begin < size; begin += kChunk) {
      const int64_t len = std::min(kChunk, size - begin);
      for (size_t r = 0; r < k; ++r) {
        const NDArray& arr = (*results[r])[a];
        double* dst = chunk.data() + r * static_cast<size_t>(kChunk);
        if (!DispatchFloat(arr.dtype(), [&](auto tag) {
              using T = decltype(tag);
              for (int64_t e = 0; e < len; ++e) dst[e] = internal::ToDouble(Load<T>(arr.data(), begin + e));
            })) {
          for (int64_t e = 0; e < len; ++e) {
            dst[e] = internal::LoadIntegerAsDouble(arr.dtype(), arr.data(), begin + e);
          }
        }
      }
      for (size_t i = 0; i < k; ++i) {
        const double* x = chunk.data() + i * static_cast<size_t>(kChunk);
        for (size_t j = i + 1; j < k; ++j) {
          const double* y = chunk.data() + j * static_cast<size_t>(kChunk);
          double s = 0.0;
          for (int64_t e = 0; e < len; ++e) {
            const double d = x[e] - y[e];
            s += d * d;
          }
          dist[i * k + j] += s;
          dist[j * k + i] += s;
        }
      }
    }
  }
  const int64_t closest = std::max<int64_t>(1, static_cast<int64_t>(k) - num_malicious - 2);
  std::vector<double> scores(k, 0.0);
  std::vector<double> row(k);
  for (size_t i = 0; i < k; ++i) {
    std::copy(dist.begin() + static_cast<ptrdiff_t>(i * k),
              dist.begin() + static_cast<ptrdiff_t>((i + 1) * k), row.begin());
    std::sort(row.begin(), row.end());
    // Position 0 is the client itself (distance 0); sum positions 1..closest.
    double s = 0.0;
    for (size_t p = 1; p <= static_cast<size_t>(closest) && p < k; ++p) s += row[p];
    scores[i] = s;
  }
  return scores;
}

absl::StatusOr<std::vector<size_t>> KrumSelect(const std::vector<double>& scores, int64_t to_keep) {
  if (scores.empty()) return absl::InvalidArgumentError("no scores to select from");
  if (to_keep < 0 || to_keep > static_cast<int64_t>(scores.size())) {
    return absl::InvalidArgumentError(fmt::format(
        "num_clients_to_keep is {} but there are {} results", to_keep, scores.size()));
  }
  if (to_keep == 0) {
    size_t best = 0;
    for (size_t i = 1; i < scores.size(); ++i) {
      if (scores[i] < scores[best]) best = i;
    }
    return std::vector<size_t>{best};
  }
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  std::vector<size_t> picked;
  for (int64_t i = to_keep - 1; i >= 0; --i) picked.push_back(order[static_cast<size_t>(i)]);
  return picked;
}

double AdamStepSize(double eta, double beta_1, double beta_2, int64_t server_round) {
  const double r = static_cast<double>(server_round) + 1.0;
  return eta * std::sqrt(1.0 - std::pow(beta_2, r)) / (1.0 - std::pow(beta_1, r));
}

absl::StatusOr<NDArrays> FedOptStep(ServerOptimizer optimizer, const FedOptHyperparameters& hp,
                                    double step_size, const NDArrays& x, const NDArrays& avg,
                                    NDArrays* m, NDArrays* v) {
  PETAL_RETURN_IF_ERROR(CheckFloatingPair(x, avg, "aggregate vs current model"));
  for (NDArrays* state : {m, v}) {
    if (state->empty()) {
      for (const NDArray& arr : x) {
        PETAL_ASSIGN_OR_RETURN(NDArray z, NDArray::Zeros(arr.dtype(), arr.shape()));
        state->push_back(std::move(z));
      }
    } else {
      PETAL_RETURN_IF_ERROR(CheckFloatingPair(x, *state, "optimizer state vs current model"));
    }
  }
  NDArrays out;
  out.reserve(x.size());
  for (size_t a = 0; a < x.size(); ++a) {
    // Every element of the three is written below.
    PETAL_ASSIGN_OR_RETURN(NDArray next, NDArray::ForOverwrite(x[a].dtype(), x[a].shape()));
    // Fresh buffers for m and v (the old ones may be shared views).
    PETAL_ASSIGN_OR_RETURN(NDArray m_next, NDArray::ForOverwrite(x[a].dtype(), x[a].shape()));
    PETAL_ASSIGN_OR_RETURN(NDArray v_next, NDArray::ForOverwrite(x[a].dtype(), x[a].shape()));
    DispatchFloat(x[a].dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T b1 = Cast<T>(hp.beta_1);
      const T one_minus_b1 = Cast<T>(1.0 - hp.beta_1);
      const T b2 = Cast<T>(hp.beta_2);
      const T one_minus_b2 = Cast<T>(1.0 - hp.beta_2);
      const T step = Cast<T>(step_size);
      const T tau = Cast<T>(hp.tau);
      const std::byte* xs = x[a].data();
      const std::byte* as = avg[a].data();
      const std::byte* ms = (*m)[a].data();
      const std::byte* vs = (*v)[a].data();
      for (int64_t i = 0; i < x[a].size(); ++i) {
        const T xi = Load<T>(xs, i);
        const T delta = Load<T>(as, i) - xi;
        const T mi = b1 * Load<T>(ms, i) + one_minus_b1 * delta;
        const T vold = Load<T>(vs, i);
        T vi = vold;
        switch (optimizer) {
          case ServerOptimizer::kAdagrad:
            vi = vold + delta * delta;
            break;
          case ServerOptimizer::kAdam:
            vi = b2 * vold + one_minus_b2 * (delta * delta);
            break;
          case ServerOptimizer::kYogi: {
            const T d2 = delta * delta;
            vi = vold - (one_minus_b2 * d2) * internal::Sign(vold - d2);
            break;
          }
        }
        Store<T>(m_next.mutable_data(), i, mi);
        Store<T>(v_next.mutable_data(), i, vi);
        Store<T>(next.mutable_data(), i, xi + (step * mi) / (internal::Sqrt(vi) + tau));
      }
    });
    (*m)[a] = std::move(m_next);
    (*v)[a] = std::move(v_next);
    out.push_back(std::move(next));
  }
  return out;
}

absl::StatusOr<NDArrays> FedAvgMStep(double learning_rate, double momentum, const NDArrays& x,
                                     const NDArrays& avg, NDArrays* momentum_vector) {
  PETAL_RETURN_IF_ERROR(CheckFloatingPair(x, avg, "aggregate vs current model"));
  const bool use_momentum = momentum > 0.0;
  const bool first = momentum_vector->empty();
  if (use_momentum && !first) {
    PETAL_RETURN_IF_ERROR(CheckFloatingPair(x, *momentum_vector, "momentum vs current model"));
  }
  NDArrays out;
  NDArrays new_momentum;
  for (size_t a = 0; a < x.size(); ++a) {
    // Every element is written below (mom's only when momentum is used).
    PETAL_ASSIGN_OR_RETURN(NDArray next, NDArray::ForOverwrite(x[a].dtype(), x[a].shape()));
    NDArray mom;
    if (use_momentum) {
      PETAL_ASSIGN_OR_RETURN(mom, NDArray::ForOverwrite(x[a].dtype(), x[a].shape()));
    }
    DispatchFloat(x[a].dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T mu = Cast<T>(momentum);
      const T lr = Cast<T>(learning_rate);
      for (int64_t i = 0; i < x[a].size(); ++i) {
        const T xi = Load<T>(x[a].data(), i);
        T g = xi - Load<T>(avg[a].data(), i);
        if (use_momentum) {
          if (!first) g = mu * Load<T>((*momentum_vector)[a].data(), i) + g;
          Store<T>(mom.mutable_data(), i, g);
        }
        Store<T>(next.mutable_data(), i, xi - lr * g);
      }
    });
    out.push_back(std::move(next));
    new_momentum.push_back(std::move(mom));
  }
  if (use_momentum) *momentum_vector = std::move(new_momentum);
  return out;
}

ConfigMap WeightedMetricsAverage(const std::vector<std::pair<int64_t, const ConfigMap*>>& results) {
  struct Acc {
    double weighted = 0.0;
    double weight = 0.0;
  };
  std::map<std::string, Acc, std::less<>> acc;
  for (const auto& [n, metrics] : results) {
    if (n <= 0 || metrics == nullptr) continue;
    for (const auto& [key, value] : *metrics) {
      double v;
      if (const double* d = std::get_if<double>(&value)) {
        v = *d;
      } else if (const int64_t* i = std::get_if<int64_t>(&value)) {
        v = static_cast<double>(*i);
      } else if (const uint64_t* u = std::get_if<uint64_t>(&value)) {
        v = static_cast<double>(*u);
      } else {
        continue;
      }
      Acc& a = acc[key];
      a.weighted += static_cast<double>(n) * v;
      a.weight += static_cast<double>(n);
    }
  }
  ConfigMap out;
  for (const auto& [key, a] : acc) out.Set(key, a.weighted / a.weight);
  return out;
}

}  // namespace petal::strategy
