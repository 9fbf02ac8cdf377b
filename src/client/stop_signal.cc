#include "client/stop_signal.h"

#include <utility>

namespace petal::client {

void StopSignal::Stop() {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  stopped_ = true;
  // Callbacks run under the lock so that RemoveCallback() can promise that a
  // callback is not running once it returns.
  for (auto& [id, callback] : callbacks_) callback();
  callbacks_.clear();
}

bool StopSignal::stopped() const {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

bool StopSignal::WaitUntil(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto fired = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopped_; };
  mu_.AwaitWithDeadline(absl::Condition(&fired), deadline);
  return stopped_;
}

StopSignal::CallbackId StopSignal::AddCallback(std::function<void()> callback) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_) {
      const CallbackId id = next_id_++;
      callbacks_.emplace(id, std::move(callback));
      return id;
    }
  }
  callback();
  return 0;
}

void StopSignal::RemoveCallback(CallbackId id) {
  if (id == 0) return;
  absl::MutexLock lock(&mu_);
  callbacks_.erase(id);
}

}  // namespace petal::client
