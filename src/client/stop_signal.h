// File: stop_signal.h
//
// StopSignal: a one-shot, thread-safe "please stop" flag that blocking code can
// wait on with a deadline and that can run short callbacks (such as cancelling
// an in-flight gRPC call) the moment it fires.
//
//   StopSignal stop;
//   std::thread t([&] { if (!stop.WaitUntil(absl::Now() + absl::Seconds(5))) Work(); });
//   stop.Stop();  // wakes the waiter at once
//
// Every method is safe to call from any thread. Callbacks run on the thread
// that calls Stop(), while an internal lock is held: keep them short and never
// call back into the same StopSignal from one.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace petal::client {

class StopSignal {
 public:
  using CallbackId = uint64_t;

  StopSignal() = default;
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  ~StopSignal() = default;

  // Fires the signal: wakes every waiter and runs every registered callback
  // once. Later calls do nothing.
  void Stop();
  bool stopped() const;

  // Blocks until `deadline` (wall clock) or until the signal fires, whichever
  // comes first. Returns true if the signal has fired.
  bool WaitUntil(absl::Time deadline) const;

  // Registers `callback` to run when the signal fires. If it has already fired,
  // runs `callback` immediately on this thread and returns 0.
  CallbackId AddCallback(std::function<void()> callback);
  // Unregisters a callback. When this returns the callback is not running and
  // will never run. Unknown ids (and 0) are ignored.
  void RemoveCallback(CallbackId id);

 private:
  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  CallbackId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<CallbackId, std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
};

// Registers a callback for the lifetime of this object (RAII).
class ScopedStopCallback {
 public:
  ScopedStopCallback(StopSignal& signal, std::function<void()> callback)
      : signal_(signal), id_(signal.AddCallback(std::move(callback))) {}
  ScopedStopCallback(const ScopedStopCallback&) = delete;
  ScopedStopCallback& operator=(const ScopedStopCallback&) = delete;
  ~ScopedStopCallback() { signal_.RemoveCallback(id_); }

 private:
  StopSignal& signal_;
  StopSignal::CallbackId id_;
};

}  // namespace petal::client
