// File: server_config.h
//
// petal-server's YAML configuration (configs/server.yaml documents every key):
//
//   server:   address, port_file, max_message_length, max_concurrent_streams,
//             max_clients, max_buffered_reply_bytes, http2_bdp_probe, keepalive_time,
//             tls.{ca_cert, cert, key}
//   run:      num_rounds, round_timeout, client_wait_timeout, reconnect_timeout,
//             seed, initial_parameters (.npz, .npy or a list of .npy),
//             send_server_round
//   fit_config / evaluate_config: maps of scalars sent to clients every round
//   strategy: name plus that strategy's parameters (strategy/registry.h)
//   output:   dir, checkpoint_dir, checkpoints_to_keep
//   log_level
//
// Reading checks types and ranges and rejects unknown keys, naming file, line
// and key; `--set key=value` overrides are applied to the YamlConfig first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/messages.h"
#include "common/scalar.h"
#include "strategy/registry.h"

namespace petal::server {

struct TlsConfig {
  std::string ca_cert;  // optional: PEM file of the CA (Flower passes it along)
  std::string cert;     // PEM certificate chain
  std::string key;      // PEM private key
  bool enabled() const { return !cert.empty(); }
};

struct ServerConfig {
  // server:
  std::string address = "127.0.0.1:8080";
  std::string port_file;  // if set, the bound port is written there (tests use port 0)
  int64_t max_message_length = 2147483647;  // Flower's GRPC_MAX_MESSAGE_LENGTH (2 GiB - 1)
  int64_t max_concurrent_streams = 1000;    // per HTTP/2 connection, as Flower
  int64_t max_clients = 0;                  // 0 = unlimited
  int64_t max_buffered_reply_bytes = 16 << 20;  // replies read ahead of the round loop, at most
  bool http2_bdp_probe = false;             // grow HTTP/2 windows (WAN throughput) at a memory cost
  double keepalive_time = 210.0;            // seconds, as Flower
  TlsConfig tls;
  // run:
  int64_t num_rounds = 1;
  double round_timeout = 0.0;  // seconds per instruction; 0 = wait forever (Flower's None)
  double client_wait_timeout = 86400.0;
  double reconnect_timeout = 30.0;
  int64_t seed = 0;
  std::vector<std::string> initial_parameters;
  bool send_server_round = true;
  // fit_config / evaluate_config:
  common::ConfigMap fit_config;
  common::ConfigMap evaluate_config;
  // strategy:
  std::string strategy = "fedavg";
  common::ConfigMap strategy_params;
  // output:
  std::string output_dir = "petal-out";
  std::string checkpoint_dir = "petal-out/checkpoints";  // "" disables checkpoints
  int64_t checkpoints_to_keep = 2;
  std::string log_level = "info";
};

// Reads and validates every key. InvalidArgument naming file:line and key.
absl::StatusOr<ServerConfig> ReadServerConfig(const common::YamlConfig& yaml);

// Loads initial parameters: one .npz (members in order), one .npy, or several
// .npy files (in the given order). Errors name the file.
absl::StatusOr<common::NDArrays> LoadInitialParameters(const std::vector<std::string>& paths);

// The StrategyConfig for `config` (name, params, per-round config hooks that
// add "server_round" when send_server_round is set); `yaml` provides
// locations for messages (may outlive nothing: it is captured by reference).
strategy::StrategyConfig MakeStrategyConfig(const ServerConfig& config, const common::YamlConfig& yaml);

// Text for --help: every strategy with its parameters, defaults and ranges.
std::string StrategiesHelp();

}  // namespace petal::server
