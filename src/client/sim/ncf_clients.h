// File: ncf_clients.h
//
// Virtual petal-clients for petal-sim: the same NcfClient (client/app) that
// petal-client runs, one per partition of one dataset, created on demand.
//
//   PETAL_ASSIGN_OR_RETURN(auto pool, NcfClientPool::Create(app_config, 943, "out/sim/state"));
//   Simulation sim(options, std::move(strategy), pool->Factory());
//
// The dataset is loaded, split and partitioned once (exactly what every
// petal-client computes for itself with model::LoadClientData, so virtual
// client i holds what petal-client --set client.partition_id=i would hold);
// each partition keeps its own interactions and shares the catalog. A client
// is built (LocalWorkload + NcfClient) when an instruction needs it and
// destroyed afterwards, so only the clients in flight hold a model. What
// petal-client keeps across rounds (user embeddings and biases, their
// optimizer state, the sampling RNG, the DP accountant) goes to
// `state_root`/client-<i> after every fit, as petal-client's state_dir does.
// Make() is thread-safe (concurrent calls for different indices).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/app/app_config.h"
#include "client/sim/simulation.h"
#include "model/split.h"

namespace petal::sim {

class NcfClientPool {
 public:
  // `config` as petal-client reads it (its partition section with
  // num_partitions = num_clients; client.partition_id is ignored). state_root
  // "" keeps no state: then user embeddings start afresh at every fit.
  // Errors: data or config problems (naming the key or file).
  static absl::StatusOr<std::unique_ptr<NcfClientPool>> Create(client::ClientAppConfig config,
                                                               int32_t num_clients,
                                                               std::string state_root);
  NcfClientPool(const NcfClientPool&) = delete;
  NcfClientPool& operator=(const NcfClientPool&) = delete;
  ~NcfClientPool();

  // Builds virtual client `index` (loading its state when there is some).
  absl::StatusOr<std::unique_ptr<client::Client>> Make(int32_t index) const;
  // A ClientFactory calling Make (the pool must outlive it).
  ClientFactory Factory() const;

  int32_t num_clients() const { return static_cast<int32_t>(parts_.size()); }
  const model::SplitData& partition(int32_t index) const { return parts_[index]; }
  // Interactions held by all partitions together (train + test).
  int64_t total_interactions() const;
  const std::string& state_root() const { return state_root_; }
  static std::string StateDir(const std::string& root, int32_t index);

 private:
  NcfClientPool(client::ClientAppConfig config, std::vector<model::SplitData> parts,
                std::string state_root, uint64_t noise_base);

  const client::ClientAppConfig config_;
  const std::vector<model::SplitData> parts_;
  const std::string state_root_;
  const uint64_t noise_base_;  // local DP noise seeds (derived per client and use)
  // How often each client was built: the DP noise seed changes every time.
  mutable std::unique_ptr<std::atomic<uint64_t>[]> builds_;
};

}  // namespace petal::sim
