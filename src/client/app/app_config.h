// File: app_config.h
//
// petal-client's configuration (configs/client.yaml): where the server is,
// which partition of which data this client holds, the model, training and
// evaluation defaults, local differential privacy and the state directory.
//
//   PETAL_ASSIGN_OR_RETURN(YamlConfig yaml, YamlConfig::LoadFile("configs/client.yaml"));
//   PETAL_RETURN_IF_ERROR(cli.ApplyOverrides(yaml));            // --set key=value
//   PETAL_ASSIGN_OR_RETURN(ClientAppConfig config, ReadClientAppConfig(yaml));
//
// Sections: server (client/connection_config.h; server.fleet: client/fleet/fleet_transport.h), client {name, partition_id,
// state_dir, threads, seed}, data / split / model / train / eval (shared with
// petal-train, model/experiment.h), partition {scheme, num_partitions, alpha,
// min_partition_size, seed}, privacy {enabled, clipping_norm,
// noise_multiplier, delta, seed}. "{partition_id}" in client.name and
// client.state_dir is replaced by the partition id, so one file serves every
// client. A bad or unknown key fails with file:line and the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "client/fleet/fleet_transport.h"
#include "client/local_dp.h"
#include "client/transport.h"
#include "common/config.h"
#include "model/experiment.h"

namespace petal::client {

struct ClientAppConfig {
  ConnectionOptions connection;
  // Fleet API settings (server.fleet), used when connection.transport is grpc-rere.
  fleet::FleetOptions fleet;
  std::string name = "petal-client-{partition_id}";
  int32_t partition_id = 0;
  std::string state_dir = "state/client-{partition_id}";  // "" = no persistence
  int32_t threads = 1;
  uint64_t seed = 1;  // model initialization: must be the same on every client

  model::DataConfig data;
  model::SplitConfig split;
  model::PartitionOptions partition;
  model::TagNcfOptions model;
  model::TrainConfig train;
  model::EvalConfig eval;

  LocalDpOptions privacy;
  std::optional<uint64_t> privacy_seed;
};

absl::StatusOr<ClientAppConfig> ReadClientAppConfig(const common::YamlConfig& yaml);

}  // namespace petal::client
