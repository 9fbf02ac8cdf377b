#include "strategy/client_manager.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>

#include "common/logging.h"

namespace petal::strategy {

ClientProxy::~ClientProxy() = default;
ClientManager::~ClientManager() = default;

namespace {

// SplitMix64 finalizer: spreads (seed, key) into a well-mixed 64-bit seed.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<int64_t> SampleIndices(int64_t n, int64_t k, uint64_t seed, uint64_t draw_key) {
  std::mt19937_64 rng(Mix(seed ^ Mix(draw_key)));
  std::vector<int64_t> pool(static_cast<size_t>(n));
  std::iota(pool.begin(), pool.end(), int64_t{0});
  // Partial Fisher-Yates with our own bounded draw (std::uniform_int_distribution
  // differs between standard libraries; this does not).
  for (int64_t i = 0; i < k; ++i) {
    const uint64_t span = static_cast<uint64_t>(n - i);
    const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % span;
    uint64_t r = rng();
    while (r >= limit) r = rng();
    std::swap(pool[static_cast<size_t>(i)], pool[static_cast<size_t>(i + static_cast<int64_t>(r % span))]);
  }
  pool.resize(static_cast<size_t>(k));
  return pool;
}

SimpleClientManager::SimpleClientManager(uint64_t seed, absl::Duration wait_timeout)
    : seed_(seed), wait_timeout_(wait_timeout) {}

int64_t SimpleClientManager::NumAvailable() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(clients_.size());
}

bool SimpleClientManager::Register(ClientProxyPtr client) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const ClientProxyPtr& c : clients_) {
      if (c->cid() == client->cid()) return false;
    }
    clients_.push_back(std::move(client));
  }
  cv_.notify_all();
  return true;
}

void SimpleClientManager::Unregister(const std::string& cid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(clients_.begin(), clients_.end(),
                           [&](const ClientProxyPtr& c) { return c->cid() == cid; });
    if (it == clients_.end()) return;
    clients_.erase(it);
  }
  cv_.notify_all();
}

std::vector<ClientProxyPtr> SimpleClientManager::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clients_;
}

bool SimpleClientManager::WaitFor(int64_t num_clients, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::nanoseconds(absl::ToInt64Nanoseconds(std::min(timeout, absl::Hours(24 * 365))));
  return cv_.wait_until(lock, deadline, [&] {
    return shutdown_ || static_cast<int64_t>(clients_.size()) >= num_clients;
  }) && !shutdown_;
}

std::vector<ClientProxyPtr> SimpleClientManager::Sample(int64_t num_clients, int64_t min_num_clients,
                                                        uint64_t draw_key) {
  if (!WaitFor(min_num_clients, wait_timeout_)) {
    common::log::Info("Waiting for {} clients ended (timeout or shutdown) with {} connected",
                      min_num_clients, NumAvailable());
  }
  std::vector<ClientProxyPtr> available = All();
  const int64_t n = static_cast<int64_t>(available.size());
  if (num_clients <= 0) return {};
  if (num_clients > n) {
    common::log::Info(
        "Sampling failed: number of available clients ({}) is less than number of requested "
        "clients ({}).",
        n, num_clients);
    return {};
  }
  std::vector<ClientProxyPtr> picked;
  picked.reserve(static_cast<size_t>(num_clients));
  for (int64_t i : SampleIndices(n, num_clients, seed_, draw_key)) {
    picked.push_back(available[static_cast<size_t>(i)]);
  }
  return picked;
}

void SimpleClientManager::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
}

bool SimpleClientManager::shut_down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutdown_;
}

}  // namespace petal::strategy
