#include "client/local_dp.h"

#include <fmt/format.h>

#include <cmath>
#include <sstream>
#include <utility>
#include <vector>

namespace petal::client {
namespace {

using common::DType;
using common::NDArray;

// Element i of a float32/float64 array as double.
double At(const NDArray& a, int64_t i) {
  return a.dtype() == DType::kFloat64 ? a.values<double>()[i] : a.values<float>()[i];
}

}  // namespace

absl::Status LocalDpOptions::Validate() const {
  if (!(clipping_norm > 0.0) || !std::isfinite(clipping_norm)) {
    return absl::InvalidArgumentError(
        fmt::format("privacy.clipping_norm must be a finite number > 0 (got {})", clipping_norm));
  }
  if (!(noise_multiplier > 0.0) || !std::isfinite(noise_multiplier)) {
    return absl::InvalidArgumentError(fmt::format(
        "privacy.noise_multiplier must be a finite number > 0 (got {})", noise_multiplier));
  }
  if (!(delta > 0.0 && delta < 1.0)) {
    return absl::InvalidArgumentError(
        fmt::format("privacy.delta must be in (0, 1) (got {})", delta));
  }
  return absl::OkStatus();
}

void RdpAccountant::AddRounds(double noise_multiplier, int64_t rounds) {
  rounds_ += rounds;
  slope_ += static_cast<double>(rounds) * 2.0 / (noise_multiplier * noise_multiplier);
}

double RdpAccountant::Epsilon(double delta) const {
  if (rounds_ == 0) return 0.0;
  const double log_inv_delta = std::log(1.0 / delta);
  return slope_ + 2.0 * std::sqrt(slope_ * log_inv_delta);
}

double RdpAccountant::OptimalOrder(double delta) const {
  if (rounds_ == 0) return 0.0;
  return 1.0 + std::sqrt(std::log(1.0 / delta) / slope_);
}

std::string RdpAccountant::Serialize() const {
  return fmt::format("rdp-gaussian-v1 {} {:.17g}\n", rounds_, slope_);
}

absl::StatusOr<RdpAccountant> RdpAccountant::Parse(const std::string& text) {
  std::istringstream in(text);
  std::string tag;
  RdpAccountant a;
  if (!(in >> tag >> a.rounds_ >> a.slope_) || tag != "rdp-gaussian-v1" || a.rounds_ < 0 ||
      !(a.slope_ >= 0.0) || !std::isfinite(a.slope_) || (a.rounds_ == 0) != (a.slope_ == 0.0)) {
    return absl::InvalidArgumentError(
        "privacy accountant state is malformed (expected 'rdp-gaussian-v1 <rounds> <slope>')");
  }
  return a;
}

LocalDp::LocalDp(LocalDpOptions options, std::optional<uint64_t> seed)
    : options_(std::move(options)),
      rng_(seed.has_value() ? *seed
                            : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()) {}

absl::StatusOr<DpRelease> LocalDp::Privatize(const common::NDArrays& reference,
                                             common::NDArrays* trained) {
  if (reference.size() != trained->size()) {
    return absl::InvalidArgumentError(fmt::format(
        "local DP: {} reference arrays but {} trained arrays", reference.size(), trained->size()));
  }
  double squared = 0.0;
  for (size_t k = 0; k < reference.size(); ++k) {
    const NDArray& r = reference[k];
    const NDArray& t = (*trained)[k];
    if (r.dtype() != t.dtype() || r.shape() != t.shape() ||
        (r.dtype() != DType::kFloat32 && r.dtype() != DType::kFloat64)) {
      return absl::InvalidArgumentError(
          fmt::format("local DP: array {}: reference {} and trained {} (need equal float32/float64 "
                      "arrays)",
                      k, r.DebugString(), t.DebugString()));
    }
    for (int64_t i = 0; i < r.size(); ++i) {
      const double u = At(t, i) - At(r, i);
      if (!std::isfinite(u)) {
        return absl::InvalidArgumentError(
            fmt::format("local DP: array {}: element {} is not finite", k, i));
      }
      squared += u * u;
    }
  }
  DpRelease release;
  release.update_norm = std::sqrt(squared);
  const double c = options_.clipping_norm;
  const double scale = release.update_norm > c ? c / release.update_norm : 1.0;
  release.clipped = scale < 1.0;
  std::normal_distribution<double> noise(0.0, options_.noise_multiplier * c);
  for (size_t k = 0; k < reference.size(); ++k) {
    const NDArray& r = reference[k];
    NDArray& t = (*trained)[k];
    for (int64_t i = 0; i < r.size(); ++i) {
      const double value = At(r, i) + scale * (At(t, i) - At(r, i)) + noise(rng_);
      if (t.dtype() == DType::kFloat64) {
        t.mutable_values<double>()[i] = value;
      } else {
        t.mutable_values<float>()[i] = static_cast<float>(value);
      }
    }
  }
  accountant_.AddRounds(options_.noise_multiplier);
  return release;
}

}  // namespace petal::client
