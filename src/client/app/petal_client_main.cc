// petal-client: a Flower client that trains tag-aware NCF on its own partition
// of the data and joins a Flower server (legacy start_server via grpc-bidi, or
// a SuperLink via grpc-rere).
//
//   petal-client --config configs/client.yaml --set client.partition_id=1
//                --set server.address=10.0.0.5:8080
//
// Exit status: 0 after the server's goodbye, 1 for a bad config or data,
// 2 when the server stayed unreachable, 3 for another fatal error, 130 when
// stopped by SIGINT/SIGTERM.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "client/app/app_config.h"
#include "client/app/ncf_client.h"
#include "client/start_client.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/npz.h"
#include "common/status_macros.h"
#include "model/experiment.h"
#include "model/workload.h"

namespace petal::client {
namespace {

namespace log = common::log;

constexpr int kExitConfig = 1;
constexpr int kExitUnavailable = 2;
constexpr int kExitFatal = 3;
constexpr int kExitSignal = 130;

// Peak resident set size in MiB (Linux VmHWM of this process), -1 if unknown.
double PeakRssMib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    long kib = 0;
    if (std::sscanf(line.c_str(), "VmHWM: %ld kB", &kib) == 1) return kib / 1024.0;
  }
  return -1;
}

absl::StatusOr<std::unique_ptr<model::LocalWorkload>> BuildWorkload(const ClientAppConfig& c) {
  PETAL_ASSIGN_OR_RETURN(model::SplitData data,
                         model::LoadClientData(c.data, c.split, c.partition, c.partition_id));
  log::Info(
      "partition {} of {} ({}): {} users, {} train / {} test interactions, {} ranking "
      "cases; catalog {} items, {} tags",
      c.partition_id, c.partition.num_partitions, model::PartitionSchemeName(c.partition.scheme),
      data.users.size(), data.train.size(), data.test.size(), data.ranking.size(),
      data.catalog->num_items(), data.catalog->num_tags());
  return model::LocalWorkload::Create(std::move(data), c.model, c.train, c.seed, c.threads);
}

absl::Status ExportInitial(const model::LocalWorkload& workload, const std::string& path) {
  common::NamedArrays named;
  const std::vector<std::string> names = workload.GlobalParameterNames();
  const common::NDArrays arrays = workload.GlobalArrays();
  for (size_t i = 0; i < arrays.size(); ++i)
    named.emplace_back(names[i], common::NDArray(arrays[i]));
  PETAL_RETURN_IF_ERROR(common::WriteNpz(path, named));
  log::Info("wrote the initial global model ({} arrays, wire order) to {}", named.size(), path);
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);  // "main is done"
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  common::CommandLine cli("petal-client",
                          "Trains tag-aware NCF on this client's partition and joins a Flower "
                          "server as one of its clients.");
  cli.AddFlag("config", "PATH", "YAML config", "configs/client.yaml");
  cli.AddFlag("export-initial", "PATH",
              "write the initial global model (.npz, wire order) and exit, e.g. for a server "
              "strategy that needs initial parameters",
              "");
  cli.AddSwitch("print-config", "print the effective config and exit");
  cli.AddEpilog(
      "Examples:\n"
      "  petal-client --set client.partition_id=0 --set partition.num_partitions=3\n"
      "  petal-client --config my.yaml --set server.address=10.0.0.5:8080 "
      "--set train.lr=0.005\n");
  if (absl::Status s = cli.Parse(argc, argv); !s.ok()) {
    std::cerr << "petal-client: " << s.message() << "\n";
    return kExitConfig;
  }
  if (cli.help_requested()) {
    std::cout << cli.Usage();
    return 0;
  }
  if (!cli.positional().empty()) {
    std::cerr << "petal-client: unexpected argument '" << cli.positional()[0] << "' (see --help)\n";
    return kExitConfig;
  }
  absl::StatusOr<common::YamlConfig> yaml = common::YamlConfig::LoadFile(cli.Get("config"));
  if (yaml.ok()) {
    if (absl::Status s = cli.ApplyOverrides(*yaml); !s.ok()) yaml = s;
  }
  if (!yaml.ok()) {
    std::cerr << "petal-client: " << yaml.status().message() << "\n";
    return kExitConfig;
  }
  absl::StatusOr<ClientAppConfig> config = ReadClientAppConfig(*yaml);
  if (!config.ok()) {
    std::cerr << "petal-client: " << config.status().message() << "\n";
    return kExitConfig;
  }
  if (cli.Has("print-config")) {
    std::cout << yaml->Dump() << "\n";
    return 0;
  }
  log::SetProcessName(config->name);

  absl::StatusOr<std::unique_ptr<model::LocalWorkload>> workload = BuildWorkload(*config);
  if (!workload.ok()) {
    log::Error("cannot build the model: {}", workload.status());
    return kExitConfig;
  }
  if (cli.Has("export-initial")) {
    absl::Status s = ExportInitial(**workload, cli.Get("export-initial"));
    if (!s.ok()) log::Error("{}", s);
    return s.ok() ? 0 : kExitFatal;
  }
  NcfClientOptions options;
  options.name = config->name;
  options.partition_id = config->partition_id;
  options.state_dir = config->state_dir;
  options.train = config->train;
  options.eval = config->eval;
  options.privacy = config->privacy;
  options.privacy_seed = config->privacy_seed;
  absl::StatusOr<std::unique_ptr<NcfClient>> client =
      NcfClient::Create(*std::move(workload), std::move(options));
  if (!client.ok()) {
    log::Error("{}", client.status());
    return kExitConfig;
  }
  absl::StatusOr<TransportPtr> transport =
      config->connection.transport == TransportKind::kGrpcRere
          ? MakeFleetTransport(config->connection, config->fleet)
          : MakeTransport(config->connection);
  if (!transport.ok()) {
    log::Error("{}", transport.status());
    return kExitConfig;
  }
  log::Info("joining {} ({}); state in {}", config->connection.server_address,
            TransportKindName(config->connection.transport),
            config->state_dir.empty() ? "(none)" : config->state_dir);

  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig != SIGUSR1) {
      log::Info("signal {} received: stopping", sig);
      (*transport)->Stop();
    }
  });
  const absl::Status status = (*transport)->Run(**client);
  pthread_kill(signal_waiter.native_handle(), SIGUSR1);
  signal_waiter.join();

  const TransportStats stats = (*transport)->stats();
  log::Info(
      "done: {} fit(s), {} instruction(s) ({} failed), {} bytes sent, {} received, "
      "peak RSS {:.1f} MiB",
      (*client)->fits_done(), stats.instructions, stats.failed_instructions, stats.bytes_sent,
      stats.bytes_received, PeakRssMib());
  if (status.ok()) return 0;
  if (absl::IsCancelled(status)) return kExitSignal;
  if (absl::IsUnavailable(status)) return kExitUnavailable;
  return kExitFatal;
}

}  // namespace
}  // namespace petal::client

int main(int argc, char** argv) { return petal::client::Main(argc, argv); }
