#include "client/retry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

namespace petal::client {
namespace {

class WallClock final : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  bool SleepUntil(absl::Time deadline, const StopSignal& stop) override {
    return !stop.WaitUntil(deadline);
  }
};

}  // namespace

absl::Status RetryPolicy::Validate() const {
  if (initial_backoff < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("retry.initial_backoff must be >= 0");
  }
  if (!(multiplier >= 1.0) || !std::isfinite(multiplier)) {
    return absl::InvalidArgumentError(
        fmt::format("retry.multiplier must be a finite number >= 1 (got {})", multiplier));
  }
  if (max_backoff < initial_backoff) {
    return absl::InvalidArgumentError(
        fmt::format("retry.max_backoff ({}) must be >= retry.initial_backoff ({})",
                    absl::FormatDuration(max_backoff), absl::FormatDuration(initial_backoff)));
  }
  if (!(jitter >= 0.0 && jitter <= 1.0)) {
    return absl::InvalidArgumentError(
        fmt::format("retry.jitter must be in [0, 1] (got {})", jitter));
  }
  if (max_attempts < 0) {
    return absl::InvalidArgumentError(
        fmt::format("retry.max_attempts must be >= 0 (got {})", max_attempts));
  }
  if (max_elapsed < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("retry.max_elapsed must be >= 0");
  }
  if (max_attempts == 0 && max_elapsed == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        "retry is unbounded: set retry.max_attempts > 0 or a finite retry.max_elapsed");
  }
  return absl::OkStatus();
}

Clock::~Clock() = default;

Clock& SystemClock() {
  static WallClock clock;  // stateless, so sharing it is sharing nothing
  return clock;
}

std::function<double()> MakeJitterSource(std::optional<uint64_t> seed) {
  const uint64_t s =
      seed.has_value() ? *seed : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  return [engine = std::mt19937_64(s), dist = std::uniform_real_distribution<double>(
                                           0.0, 1.0)]() mutable { return dist(engine); };
}

Backoff::Backoff(RetryPolicy policy, Clock& clock, std::function<double()> uniform01)
    : policy_(std::move(policy)), clock_(clock), uniform01_(std::move(uniform01)) {}

std::optional<absl::Duration> Backoff::NextDelay() {
  const absl::Time now = clock_.Now();
  if (!outage_start_.has_value()) outage_start_ = now;
  ++attempts_;
  if (policy_.max_attempts > 0 && attempts_ >= policy_.max_attempts) return std::nullopt;
  const absl::Duration spent = now - *outage_start_;
  if (spent >= policy_.max_elapsed) return std::nullopt;

  // base = min(initial * multiplier^level, max), computed in double seconds so
  // large levels saturate instead of overflowing.
  const double initial_s = absl::ToDoubleSeconds(policy_.initial_backoff);
  const double max_s = absl::ToDoubleSeconds(policy_.max_backoff);
  const double base_s =
      std::min(max_s, initial_s * std::pow(policy_.multiplier, static_cast<double>(level_)));
  ++level_;
  double u = uniform01_();
  u = std::clamp(u, 0.0, 1.0);
  absl::Duration wait = absl::Seconds(base_s * (1.0 - policy_.jitter * u));
  wait = std::min(wait, policy_.max_elapsed - spent);
  return wait;
}

void Backoff::OnConnected() {
  attempts_ = 0;
  outage_start_.reset();
}

void Backoff::Reset() {
  OnConnected();
  level_ = 0;
}

absl::Duration Backoff::elapsed() {
  if (!outage_start_.has_value()) return absl::ZeroDuration();
  return clock_.Now() - *outage_start_;
}

}  // namespace petal::client
