// File: client_manager.h
//
// The pool of connected clients that strategies sample from (Python Flower's
// ClientProxy / ClientManager / SimpleClientManager), without any transport:
// src/server plugs its gRPC streams in as ClientProxy subclasses, tests plug in
// plain fakes.
//
//   SimpleClientManager manager(/*seed=*/42);
//   manager.Register(std::make_shared<ClientProxy>("a"));
//   std::vector<ClientProxyPtr> picked = manager.Sample(2, /*min_num_clients=*/2, round_seed);
//
// Sampling follows SimpleClientManager.sample: wait (bounded) until at least
// min_num_clients are connected, return nothing when fewer than num_clients are
// available, otherwise pick num_clients distinct clients uniformly at random.
// The draw is a pure function of (seed, draw key, registration order), so a
// resumed run samples the same positions as an uninterrupted one.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace petal::strategy {

// A connected participant as strategies see it: an identity. Transports derive
// from it to add a way of talking to the client. Thread-safe (immutable here).
class ClientProxy {
 public:
  explicit ClientProxy(std::string cid) : cid_(std::move(cid)) {}
  ClientProxy(const ClientProxy&) = delete;
  ClientProxy& operator=(const ClientProxy&) = delete;
  virtual ~ClientProxy();

  // Unique among the clients connected at the same time (Flower: uuid4 hex).
  const std::string& cid() const { return cid_; }

 private:
  const std::string cid_;
};

// Shared: the manager, a round in flight and the transport all hold the proxy;
// it outlives whichever lets go last (a client may vanish mid-round).
using ClientProxyPtr = std::shared_ptr<ClientProxy>;

class ClientManager {
 public:
  ClientManager() = default;
  ClientManager(const ClientManager&) = delete;
  ClientManager& operator=(const ClientManager&) = delete;
  virtual ~ClientManager();

  virtual int64_t NumAvailable() const = 0;
  // False if a client with the same cid is already registered.
  virtual bool Register(ClientProxyPtr client) = 0;
  // Idempotent.
  virtual void Unregister(const std::string& cid) = 0;
  // Every registered client, in registration order.
  virtual std::vector<ClientProxyPtr> All() const = 0;
  // Blocks until at least `num_clients` are registered (true), the timeout
  // passes or the manager is shut down (false).
  virtual bool WaitFor(int64_t num_clients, absl::Duration timeout) = 0;
  // Flower's sample(): waits for `min_num_clients` (bounded by the manager's
  // wait timeout), then returns `num_clients` distinct clients, or an empty
  // vector if fewer are available. `draw_key` selects an independent,
  // reproducible random stream (the server passes round and phase).
  virtual std::vector<ClientProxyPtr> Sample(int64_t num_clients, int64_t min_num_clients,
                                             uint64_t draw_key) = 0;
  // Wakes every waiter and makes later waits return false at once (server
  // shutdown). Registration keeps working.
  virtual void Shutdown() = 0;
};

// Thread-safe ClientManager backed by a vector in registration order.
class SimpleClientManager final : public ClientManager {
 public:
  // `wait_timeout` bounds Sample()'s wait (Flower: 86400 s).
  explicit SimpleClientManager(uint64_t seed, absl::Duration wait_timeout = absl::Hours(24));

  int64_t NumAvailable() const override;
  bool Register(ClientProxyPtr client) override;
  void Unregister(const std::string& cid) override;
  std::vector<ClientProxyPtr> All() const override;
  bool WaitFor(int64_t num_clients, absl::Duration timeout) override;
  std::vector<ClientProxyPtr> Sample(int64_t num_clients, int64_t min_num_clients,
                                     uint64_t draw_key) override;

  void Shutdown() override;
  bool shut_down() const;

 private:
  const uint64_t seed_;
  const absl::Duration wait_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ClientProxyPtr> clients_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

// Picks `k` distinct indices out of [0, n) uniformly, as a pure function of
// (seed, draw_key). Precondition: 0 <= k <= n. Exposed for tests.
std::vector<int64_t> SampleIndices(int64_t n, int64_t k, uint64_t seed, uint64_t draw_key);

}  // namespace petal::strategy
