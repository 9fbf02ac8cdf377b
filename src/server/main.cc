// petal-server: a Flower-compatible federated learning server (legacy
// FlowerService.Join transport) with pluggable strategies, configured in YAML.
//
//   petal-server --config configs/server.yaml [--set strategy.name=fedadam] [--resume]
//
// Exit status: 0 all rounds done; 1 runtime failure; 2 bad command line or
// config; 3 stopped by SIGTERM/SIGINT (after the last completed round's
// checkpoint; run again with --resume to continue).
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include <pthread.h>

#include <fmt/format.h>

#include "common/cli.h"
#include "common/config.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "server/grpc_server.h"
#include "server/grpc_service.h"
#include "server/server.h"
#include "server/server_config.h"
#include "strategy/registry.h"

namespace {

namespace log = petal::common::log;
using petal::server::ServerConfig;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitStopped = 3;

// Waits for SIGTERM/SIGINT on a dedicated thread (they are blocked in every
// other thread) and asks the round loop to stop; no signal handler, no globals.
class SignalWatcher {
 public:
  explicit SignalWatcher(petal::server::Server& server) : server_(server) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~SignalWatcher() {
    done_.store(true);
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  void Loop() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int count = 0;
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (done_.load()) return;
      if (++count == 1) {
        log::Warn("Received {}: finishing the current checkpoint and stopping (send again to abort)",
                  sig == SIGTERM ? "SIGTERM" : "SIGINT");
        server_.RequestStop();
      } else {
        log::Error("Received a second stop signal: aborting");
        std::_Exit(kExitFailure);
      }
    }
  }

  petal::server::Server& server_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Peak resident set size of this process in MiB (VmHWM), -1 if unknown.
double PeakRssMiB() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  double mib = -1;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    long kb = 0;
    if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
      mib = static_cast<double>(kb) / 1024.0;
      break;
    }
  }
  std::fclose(f);
  return mib;
}

void BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int Main(int argc, char** argv) {
  petal::common::CommandLine cli(
      "petal-server",
      "Runs federated learning rounds for Flower clients (grpc-bidi FlowerService.Join) and "
      "Petal clients, with a pluggable strategy.");
  cli.AddFlag("config", "PATH", "YAML config (configs/server.yaml documents every key); "
                                "without it the built-in defaults apply");
  cli.AddFlag("port-file", "PATH", "write the bound port to PATH (overrides server.port_file)");
  cli.AddSwitch("resume", "continue from the checkpoint in output.checkpoint_dir");
  cli.AddSwitch("print-config", "print the effective configuration and exit");
  cli.AddEpilog(
      "Examples:\n"
      "  petal-server --config configs/server.yaml\n"
      "  petal-server --config configs/strategies/fedadam.yaml --set run.num_rounds=10\n"
      "  petal-server --config configs/server.yaml --set server.address=127.0.0.1:0 "
      "--port-file /tmp/port\n\n" +
      petal::server::StrategiesHelp());
  absl::Status parsed = cli.Parse(argc, argv);
  if (!parsed.ok()) {
    std::cerr << "petal-server: " << parsed.message() << "\n" << cli.Usage();
    return kExitUsage;
  }
  if (cli.help_requested()) {
    std::cout << cli.Usage();
    return 0;
  }
  log::SetProcessName("petal-server");

  absl::StatusOr<petal::common::YamlConfig> yaml =
      cli.Has("config") ? petal::common::YamlConfig::LoadFile(cli.Get("config"))
                        : petal::common::YamlConfig::Parse("{}", "<defaults>");
  if (!yaml.ok()) {
    std::cerr << "petal-server: " << yaml.status().message() << "\n";
    return kExitUsage;
  }
  if (absl::Status s = cli.ApplyOverrides(*yaml); !s.ok()) {
    std::cerr << "petal-server: " << s.message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<ServerConfig> config = petal::server::ReadServerConfig(*yaml);
  if (!config.ok()) {
    std::cerr << "petal-server: " << config.status().message() << "\n";
    return kExitUsage;
  }
  if (cli.Has("port-file")) config->port_file = cli.Get("port-file");
  if (cli.Has("print-config")) {
    std::cout << yaml->Dump() << "\n";
    return 0;
  }
  if (auto level = log::ParseLevel(config->log_level); level.ok() && !std::getenv("PETAL_LOG_LEVEL")) {
    log::SetLevel(*level);
  }

  petal::strategy::StrategyConfig strategy_config = petal::server::MakeStrategyConfig(*config, *yaml);
  if (!config->initial_parameters.empty()) {
    absl::StatusOr<petal::common::NDArrays> initial =
        petal::server::LoadInitialParameters(config->initial_parameters);
    if (!initial.ok()) {
      std::cerr << "petal-server: initial parameters: " << initial.status().message() << "\n";
      return kExitUsage;
    }
    strategy_config.initial_parameters = *std::move(initial);
  }
  absl::StatusOr<petal::strategy::StrategyPtr> strategy =
      petal::strategy::MakeStrategy(std::move(strategy_config));
  if (!strategy.ok()) {
    std::cerr << "petal-server: " << strategy.status().message() << "\n";
    return kExitUsage;
  }

  BlockStopSignals();  // before any thread starts, so every thread inherits the mask

  petal::strategy::SimpleClientManager manager(
      static_cast<uint64_t>(config->seed), absl::Seconds(config->client_wait_timeout));
  petal::server::FlowerService service(manager, {config->max_clients, config->max_buffered_reply_bytes});
  absl::StatusOr<petal::server::StartedServer> grpc_server =
      petal::server::StartGrpcServer(*config, service);
  if (!grpc_server.ok()) {
    log::Error("{}", grpc_server.status());
    return kExitFailure;
  }
  const std::string host = config->address.substr(0, config->address.rfind(':'));
  log::Info("petal-server listening on {}:{} ({}), strategy {}, {} rounds", host, grpc_server->port,
            config->tls.enabled() ? "TLS" : "insecure", config->strategy, config->num_rounds);
  if (!config->port_file.empty()) {
    absl::Status s = petal::common::WriteFileAtomically(config->port_file,
                                                        fmt::format("{}\n", grpc_server->port));
    if (!s.ok()) {
      log::Error("cannot write the port file: {}", s);
      grpc_server->server->Shutdown();
      return kExitFailure;
    }
  }

  petal::server::ServerOptions options;
  options.num_rounds = config->num_rounds;
  if (config->round_timeout > 0) options.round_timeout = absl::Seconds(config->round_timeout);
  options.reconnect_timeout = absl::Seconds(config->reconnect_timeout);
  options.checkpoint_dir = config->checkpoint_dir;
  options.checkpoints_to_keep = static_cast<int>(config->checkpoints_to_keep);
  options.output_dir = config->output_dir;
  options.resume = cli.Has("resume");

  int exit_code = 0;
  {
    petal::server::Server server(options, *std::move(strategy), manager);
    SignalWatcher watcher(server);
    absl::StatusOr<petal::server::RunResult> result = server.Run();
    if (!result.ok()) {
      log::Error("The run failed: {}", result.status());
      exit_code = kExitFailure;
    } else if (result->outcome == petal::server::RunOutcome::kStopped) {
      log::Warn("Stopped after round {} of {}; continue with --resume", result->last_round,
                config->num_rounds);
      exit_code = kExitStopped;
    } else {
      log::Info("Finished {} rounds; outputs in {}", result->last_round, config->output_dir);
    }
    manager.Shutdown();
    grpc_server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc_server->server->Wait();
  }
  log::Info("peak RSS {:.1f} MiB", PeakRssMiB());
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
