// File: internal/random.h
//
// A small, portable, deterministic random number generator for datasets,
// splits, partitions and negative sampling. Unlike <random>'s distributions,
// every draw here is specified bit-for-bit, so a seed gives the same partition
// on every platform and standard library (N federated processes must agree).
//
//   Rng rng(DeriveSeed(seed, user));
//   int64_t item = rng.UniformInt(num_items);
//
// Not thread-safe; use one Rng per thread or per user.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace petal::model::internal {

__extension__ typedef unsigned __int128 Uint128;  // GCC/Clang extension, fine under -Wpedantic

// SplitMix64 finalizer: a bijective 64-bit mix.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A seed for a sub-stream (e.g. one user) of the stream `seed`.
inline uint64_t DeriveSeed(uint64_t seed, uint64_t stream) {
  return Mix64(Mix64(seed) ^ Mix64(stream + 0x632BE59BD9B4E019ull));
}

// xoshiro256** seeded through SplitMix64.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { Seed(seed); }

  void Seed(uint64_t seed) {
    uint64_t x = seed;
    for (auto& s : s_) {
      x += 0x9E3779B97F4A7C15ull;
      s = Mix64(x - 0x9E3779B97F4A7C15ull);
    }
    has_spare_normal_ = false;
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n) without modulo bias (Lemire's method). n > 0.
  uint64_t UniformInt(uint64_t n) {
    Uint128 m = static_cast<Uint128>(Next()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<Uint128>(Next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in (0, 1): safe for log().
  double UniformOpen() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }

  // Standard normal (Box-Muller, caching the second value).
  double Normal() {
    if (has_spare_normal_) {
      has_spare_normal_ = false;
      return spare_normal_;
    }
    const double r = std::sqrt(-2.0 * std::log(UniformOpen()));
    const double theta = 2.0 * M_PI * Uniform();
    spare_normal_ = r * std::sin(theta);
    has_spare_normal_ = true;
    return r * std::cos(theta);
  }

  // Gamma(shape, 1) by Marsaglia-Tsang; shape > 0.
  double Gamma(double shape) {
    if (shape < 1.0) {
      // Gamma(a) = Gamma(a + 1) * U^(1/a).
      const double g = Gamma(shape + 1.0);
      return g * std::pow(UniformOpen(), 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    while (true) {
      double x;
      double v;
      do {
        x = Normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = UniformOpen();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
  }

  // Standard Gumbel: -log(-log(U)).
  double Gumbel() { return -std::log(-std::log(UniformOpen())); }

  // Fisher-Yates shuffle.
  template <typename T>
  void Shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      const size_t j = static_cast<size_t>(UniformInt(i));
      std::swap(v[i - 1], v[j]);
    }
  }

  // The full state (for saving and restoring a training run).
  std::vector<uint64_t> State() const { return {s_[0], s_[1], s_[2], s_[3]}; }
  // Restores State(); returns false (leaving the state unchanged) for a bad size or all zeros.
  bool SetState(const std::vector<uint64_t>& state) {
    if (state.size() != 4 || (state[0] | state[1] | state[2] | state[3]) == 0) return false;
    for (int i = 0; i < 4; ++i) s_[i] = state[i];
    has_spare_normal_ = false;
    return true;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t s_[4];
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

}  // namespace petal::model::internal
