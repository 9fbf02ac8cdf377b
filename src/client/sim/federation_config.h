// File: federation_config.h
//
// Federation files (configs/federation/*.yaml, docs/federation.md): one
// topology that scripts/federate runs as processes, docker/docker-compose.yml
// as containers and petal-sim in one process.
//
//   description: ...
//   clients: 4                       # N; partition ids 0..N-1
//   server:      {config: demo/server.yaml, set: ["run.num_rounds=10"]}
//   client:      {config: demo/client.yaml, set: []}
//   centralized: {config: demo/centralized.yaml, set: []}   # optional
//   docker: true                     # Compose can run it (optional)
//   sim: {threads: 2, evaluate_every: 1, max_parallel: 0}    # optional
//
// Config paths are relative to the federation file; `set` entries are the
// `--set key=value` overrides of the executables. Every process of a
// federation of N clients also gets the same topology overrides (the rule is
// shared with scripts/federate, and a test compares the two):
//   server: strategy.min_available_clients = N, and min_fit_clients /
//           min_evaluate_clients = N when fraction_fit / fraction_evaluate is
//           1.0 (the launcher adds server.address, port file and outputs);
//   client: partition.num_partitions = N, client.partition_id = i (and the
//           launcher's server.address and client.state_dir).
// Errors name the file, line and key (unknown keys included).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace petal::sim {

struct FederationSection {
  std::string config;             // absolute (resolved against the federation file)
  std::vector<std::string> sets;  // "key=value"
};

struct FederationFile {
  std::string path;  // as given
  std::string name;  // file name without .yaml
  std::string description;
  int32_t clients = 0;
  bool docker = false;
  FederationSection server;
  FederationSection client;
  std::optional<FederationSection> centralized;
  int32_t sim_threads = 1;
  int64_t sim_evaluate_every = 1;
  int32_t sim_max_parallel = 0;
};

// NotFound for a missing file; InvalidArgument naming file:line and key for a
// bad value, an unknown key or a config file that does not exist.
absl::StatusOr<FederationFile> LoadFederationFile(const std::string& path);

// Loads `section.config` and applies section.sets, then `extra` (in order).
absl::StatusOr<common::YamlConfig> LoadWithSets(const FederationSection& section,
                                                const std::vector<std::string>& extra);

// The topology overrides every federation of `num_clients` gives petal-server
// (the part that does not depend on addresses or folders).
std::vector<std::string> ServerTopologySets(int32_t num_clients, double fraction_fit,
                                            double fraction_evaluate);

}  // namespace petal::sim
