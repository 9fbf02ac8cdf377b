#include "client/sim/ncf_clients.h"

#include <fmt/format.h>

#include <random>
#include <utility>

#include "client/app/ncf_client.h"
#include "common/status_macros.h"
#include "model/experiment.h"
#include "model/partition.h"
#include "model/workload.h"

namespace petal::sim {
namespace {

// SplitMix64 finalizer: independent seeds from (base, client, use).
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

std::string NcfClientPool::StateDir(const std::string& root, int32_t index) {
  return root.empty() ? std::string() : fmt::format("{}/client-{}", root, index);
}

NcfClientPool::NcfClientPool(client::ClientAppConfig config, std::vector<model::SplitData> parts,
                             std::string state_root, uint64_t noise_base)
    : config_(std::move(config)),
      parts_(std::move(parts)),
      state_root_(std::move(state_root)),
      noise_base_(noise_base),
      builds_(std::make_unique<std::atomic<uint64_t>[]>(parts_.size())) {
  for (size_t i = 0; i < parts_.size(); ++i) builds_[i].store(0);
}

NcfClientPool::~NcfClientPool() = default;

absl::StatusOr<std::unique_ptr<NcfClientPool>> NcfClientPool::Create(client::ClientAppConfig config,
                                                                     int32_t num_clients,
                                                                     std::string state_root) {
  if (num_clients < 1) {
    return absl::InvalidArgumentError(fmt::format("num_clients must be >= 1, got {}", num_clients));
  }
  model::PartitionOptions partitions = config.partition;
  partitions.num_partitions = num_clients;
  config.partition = partitions;
  // What model::LoadClientData does in every petal-client, once for all.
  PETAL_ASSIGN_OR_RETURN(model::Dataset dataset, model::LoadDataset(config.data));
  PETAL_ASSIGN_OR_RETURN(model::SplitData pooled,
                         model::MakeSplit(dataset, config.data, config.split));
  PETAL_ASSIGN_OR_RETURN(std::vector<std::vector<int32_t>> users,
                         model::PartitionUsers(pooled, partitions));
  if (static_cast<int32_t>(users.size()) != num_clients) {
    return absl::InvalidArgumentError(fmt::format(
        "the partitioner made {} partitions for {} clients", users.size(), num_clients));
  }
  std::vector<model::SplitData> parts;
  parts.reserve(users.size());
  for (const std::vector<int32_t>& u : users) {
    PETAL_ASSIGN_OR_RETURN(model::SplitData part, model::RestrictToUsers(pooled, u));
    parts.push_back(std::move(part));
  }
  const uint64_t noise_base =
      config.privacy_seed
          ? *config.privacy_seed
          : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  return std::unique_ptr<NcfClientPool>(
      new NcfClientPool(std::move(config), std::move(parts), std::move(state_root), noise_base));
}

int64_t NcfClientPool::total_interactions() const {
  int64_t n = 0;
  for (const model::SplitData& p : parts_)
    n += static_cast<int64_t>(p.train.size() + p.test.size());
  return n;
}

absl::StatusOr<std::unique_ptr<client::Client>> NcfClientPool::Make(int32_t index) const {
  if (index < 0 || index >= num_clients()) {
    return absl::InvalidArgumentError(
        fmt::format("virtual client {} does not exist ({} clients)", index, num_clients()));
  }
  PETAL_ASSIGN_OR_RETURN(std::unique_ptr<model::LocalWorkload> workload,
                         model::LocalWorkload::Create(parts_[index], config_.model, config_.train,
                                                      config_.seed, config_.threads));
  client::NcfClientOptions options;
  options.name = fmt::format("sim-client-{}", index);
  options.partition_id = index;
  options.state_dir = StateDir(state_root_, index);
  options.train = config_.train;
  options.eval = config_.eval;
  options.privacy = config_.privacy;
  const uint64_t use = builds_[index].fetch_add(1);
  options.privacy_seed = Mix(Mix(noise_base_ ^ Mix(static_cast<uint64_t>(index))) + use);
  PETAL_ASSIGN_OR_RETURN(std::unique_ptr<client::NcfClient> client,
                         client::NcfClient::Create(std::move(workload), std::move(options)));
  return std::unique_ptr<client::Client>(std::move(client));
}

ClientFactory NcfClientPool::Factory() const {
  return [this](int32_t index) { return Make(index); };
}

}  // namespace petal::sim
