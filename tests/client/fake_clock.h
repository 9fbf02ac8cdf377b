// File: fake_clock.h
//
// A Clock for tests: time stands still until someone sleeps, and every sleep
// returns at once (advancing the time) unless the StopSignal has fired. Records
// each requested sleep so tests can check a backoff schedule exactly.
// Thread-safe.
#pragma once

#include <functional>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/retry.h"
#include "client/stop_signal.h"

namespace petal::client::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}

  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  bool SleepUntil(absl::Time deadline, const StopSignal& stop) override {
    if (stop.stopped()) return false;
    std::function<void(absl::Duration)> hook;
    absl::Duration slept;
    {
      absl::MutexLock lock(&mu_);
      slept = deadline - now_;
      sleeps_.push_back(slept);
      if (deadline > now_) now_ = deadline;
      hook = on_sleep_;
    }
    if (hook) hook(slept);
    return !stop.stopped();
  }

  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  std::vector<absl::Duration> sleeps() const {
    absl::MutexLock lock(&mu_);
    return sleeps_;
  }
  // Called (outside the lock) after each sleep with its duration.
  void set_on_sleep(std::function<void(absl::Duration)> hook) {
    absl::MutexLock lock(&mu_);
    on_sleep_ = std::move(hook);
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> sleeps_ ABSL_GUARDED_BY(mu_);
  std::function<void(absl::Duration)> on_sleep_ ABSL_GUARDED_BY(mu_);
};

}  // namespace petal::client::testing
