// File: local_dp.h
//
// Local differential privacy for model updates: before a client sends its
// trained weights, the update u = w - w_global (over all arrays, one L2 norm)
// is clipped to norm C and Gaussian noise N(0, (sigma * C)^2) is added to every
// element; an RDP accountant tracks the privacy spent over rounds.
//
//   LocalDp dp(options, /*seed=*/std::nullopt);
//   PETAL_ASSIGN_OR_RETURN(DpRelease r, dp.Privatize(received, &trained));
//   metrics.Set("dp_epsilon", dp.accountant().Epsilon(options.delta));
//
// What the guarantee covers: each release is the Gaussian mechanism applied
// to the clipped update. Two different local datasets (any change: one
// rating, one user, or all of them) give clipped updates at most 2C apart, so
// each round is (alpha, 2 * alpha / sigma^2)-RDP for every order alpha > 1
// (Mironov 2017, Gaussian mechanism with sensitivity 2C and noise sigma * C).
// Rounds compose additively; epsilon for a target delta uses
// eps = min_alpha RDP(alpha) + log(1/delta) / (alpha - 1), which for the
// Gaussian has the closed form eps = S + 2 sqrt(S log(1/delta)) with
// S = sum over rounds of 2 / sigma_r^2. No amplification by sampling is
// claimed (the client cannot know how the server samples). It protects what
// leaves the client (the server and anyone on the wire see only noised,
// clipped updates); it says nothing about the local state directory, and the
// noise comes from std::mt19937_64 (not hardened against floating-point side
// channels). Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/messages.h"

namespace petal::client {

struct LocalDpOptions {
  bool enabled = false;
  double clipping_norm = 1.0;     // C > 0
  double noise_multiplier = 1.0;  // sigma > 0: noise std is sigma * C
  double delta = 1e-5;            // target delta of the reported epsilon, in (0, 1)
  // InvalidArgument naming the field.
  absl::Status Validate() const;
};

// Renyi-DP accountant for repeated Gaussian mechanisms with sensitivity 2C.
class RdpAccountant {
 public:
  // Records `rounds` releases with noise multiplier `noise_multiplier` (> 0).
  void AddRounds(double noise_multiplier, int64_t rounds = 1);
  int64_t rounds() const { return rounds_; }
  // RDP at order alpha divided by alpha: sum of 2 / sigma^2 over rounds.
  double rdp_slope() const { return slope_; }
  // The smallest epsilon such that everything released so far is
  // (epsilon, delta)-DP, and the RDP order that achieves it. 0 before any round.
  double Epsilon(double delta) const;
  double OptimalOrder(double delta) const;

  // Persistence ("rounds slope" as text) so a restarted client keeps counting.
  std::string Serialize() const;
  // InvalidArgument for malformed text.
  static absl::StatusOr<RdpAccountant> Parse(const std::string& text);

 private:
  int64_t rounds_ = 0;
  double slope_ = 0.0;
};

struct DpRelease {
  double update_norm = 0.0;  // ||w - w_global|| before clipping
  bool clipped = false;      // the update was scaled down to C
};

class LocalDp {
 public:
  // `seed`: reproducible noise for tests; nullopt draws it from std::random_device.
  LocalDp(LocalDpOptions options, std::optional<uint64_t> seed);

  // Replaces `*trained` with w_global + clip(trained - w_global) + noise and
  // records one round. `reference` (w_global) and `trained` must have the same
  // count, dtypes and shapes, floating point dtypes (float32/float64) and
  // finite values: InvalidArgument naming the array otherwise (nothing changes).
  absl::StatusOr<DpRelease> Privatize(const common::NDArrays& reference, common::NDArrays* trained);

  const LocalDpOptions& options() const { return options_; }
  RdpAccountant& accountant() { return accountant_; }
  const RdpAccountant& accountant() const { return accountant_; }

 private:
  LocalDpOptions options_;
  std::mt19937_64 rng_;
  RdpAccountant accountant_;
};

}  // namespace petal::client
