// File: retry.h
//
// How a client waits and retries while its server is unreachable: a RetryPolicy
// (exponential backoff with jitter, bounded by attempts and/or time), the
// Backoff state machine that applies it, and a Clock so tests can run the
// schedule instantly and deterministically.
//
//   Backoff backoff(policy, SystemClock(), MakeJitterSource(/*seed=*/std::nullopt));
//   while (!TryConnect()) {
//     std::optional<absl::Duration> delay = backoff.NextDelay();
//     if (!delay) return absl::UnavailableError("giving up");
//     if (!clock.SleepUntil(clock.Now() + *delay, stop)) return absl::CancelledError();
//   }
//
// Delays: the n-th consecutive failure waits
//   base_n = min(initial_backoff * multiplier^(n-1), max_backoff)
//   wait_n = base_n * (1 - jitter * u),  u uniform in [0, 1)
// so jitter = 1 is "full jitter" (uniform in (0, base_n]], Flower's choice) and
// jitter = 0 is plain exponential backoff.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/stop_signal.h"

namespace petal::client {

struct RetryPolicy {
  // Delay before the first retry.
  absl::Duration initial_backoff = absl::Seconds(1);
  // Growth factor between consecutive delays (>= 1).
  double multiplier = 2.0;
  // Cap on a single delay (Flower's MAX_RETRY_DELAY is 20 s).
  absl::Duration max_backoff = absl::Seconds(20);
  // Fraction of each delay that is randomized away, in [0, 1].
  double jitter = 0.5;
  // Give up after this many consecutive failed attempts; 0 = no limit.
  int64_t max_attempts = 0;
  // Give up once this much time has passed since the first failure of the
  // current outage; absl::InfiniteDuration() = no limit. The last wait is cut
  // short so the final attempt happens at the limit.
  absl::Duration max_elapsed = absl::Minutes(10);

  // InvalidArgument naming the field for a negative or inconsistent value, or
  // when neither bound is finite (retrying must be bounded).
  absl::Status Validate() const;
};

// Time source with an interruptible sleep. Implementations are thread-safe.
class Clock {
 public:
  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  virtual ~Clock();

  virtual absl::Time Now() = 0;
  // Blocks until Now() >= deadline or until `stop` fires. Returns false if
  // `stop` fired (at once if it already had).
  virtual bool SleepUntil(absl::Time deadline, const StopSignal& stop) = 0;
};

// The wall clock; waits on `stop`'s condition variable. Stateless, shared.
Clock& SystemClock();

// A source of uniform doubles in [0, 1) for jitter. Each call of the returned
// function advances its own generator (not thread-safe; one per Backoff).
// With a seed the sequence is reproducible; without one it is seeded from
// std::random_device.
std::function<double()> MakeJitterSource(std::optional<uint64_t> seed);

// Applies a RetryPolicy to a sequence of failures. Not thread-safe.
class Backoff {
 public:
  // `clock` must outlive the Backoff. `uniform01` must return values in [0, 1).
  Backoff(RetryPolicy policy, Clock& clock, std::function<double()> uniform01);

  // Records one failed attempt. Returns how long to wait before the next
  // attempt, or nullopt when the policy's attempt or time budget is spent.
  std::optional<absl::Duration> NextDelay();

  // A connection was established: the budget (attempt count and clock) starts
  // over, but the delay keeps growing until the connection proves useful.
  void OnConnected();
  // The connection did useful work: everything starts over.
  void Reset();

  // Failed attempts recorded since the budget last started over.
  int64_t attempts() const { return attempts_; }
  // Time since the first of those failures (zero when there is none).
  absl::Duration elapsed();

 private:
  RetryPolicy policy_;
  Clock& clock_;
  std::function<double()> uniform01_;
  int64_t attempts_ = 0;  // failures counted against the budget
  int64_t level_ = 0;     // exponent of the next delay
  std::optional<absl::Time> outage_start_;
};

}  // namespace petal::client
