// petal-sim: a whole federation in one process. N virtual petal-clients (the
// same NcfClient as petal-client, on the same partitions) on a thread pool,
// driven by the same strategies as petal-server, from the same federation file
// as scripts/federate and docker/docker-compose.yml.
//
//   petal-sim --federation configs/federation/ml100k-cross-device.yaml --out out/sim
//
// Exit status: 0 all rounds done; 1 runtime failure; 2 bad usage or config;
// 3 stopped by SIGINT/SIGTERM (outputs describe the last completed round).
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "client/app/app_config.h"
#include "client/sim/federation_config.h"
#include "client/sim/ncf_clients.h"
#include "client/sim/simulation.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "server/server_config.h"
#include "strategy/registry.h"

namespace petal::sim {
namespace {

namespace log = common::log;
namespace fs = std::filesystem;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitStopped = 3;

struct Overrides {
  std::vector<std::string> server, client, shared;
};

absl::StatusOr<Overrides> SplitOverrides(const std::vector<std::string>& sets) {
  Overrides o;
  for (const std::string& s : sets) {
    const size_t colon = s.find(':');
    const size_t eq = s.find('=');
    if (colon == std::string::npos || (eq != std::string::npos && eq < colon)) {
      return absl::InvalidArgumentError(fmt::format(
          "--set '{}': say which config it is for: --set server:KEY=VALUE, client:KEY=VALUE or "
          "shared:KEY=VALUE (client and centralized)",
          s));
    }
    const std::string role = s.substr(0, colon);
    std::string rest = s.substr(colon + 1);
    if (role == "server")
      o.server.push_back(std::move(rest));
    else if (role == "client")
      o.client.push_back(std::move(rest));
    else if (role == "shared")
      o.shared.push_back(std::move(rest));
    else {
      return absl::InvalidArgumentError(
          fmt::format("--set '{}': unknown target '{}' (server, client or shared)", s, role));
    }
  }
  return o;
}

// Blocks SIGINT/SIGTERM in every thread; a dedicated thread waits for them.
class SignalWatcher {
 public:
  explicit SignalWatcher(Simulation& sim) : sim_(sim) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~SignalWatcher() {
    done_.store(true);
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  bool signalled() const { return signalled_.load(); }

 private:
  void Loop() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (done_.load()) return;
      if (!signalled_.exchange(true)) {
        log::Warn("{} received: finishing the clients in flight and stopping (again to abort)",
                  sig == SIGINT ? "SIGINT" : "SIGTERM");
        sim_.RequestStop();
      } else {
        std::_Exit(kExitFailure);
      }
    }
  }
  Simulation& sim_;
  std::atomic<bool> done_{false};
  std::atomic<bool> signalled_{false};
  std::thread thread_;
};

std::string Metric(const common::ConfigMap& m, const char* key) {
  absl::StatusOr<double> v = m.GetDouble(key);
  return v.ok() ? fmt::format("  {} {:.4f}", key, *v) : std::string();
}

int Main(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  common::CommandLine cli(
      "petal-sim",
      "Simulates a federation in one process: N virtual petal-clients (the NcfClient of "
      "petal-client, on the same partitions) on a thread pool, driven by petal-server's "
      "strategies, from a federation file (configs/federation/*.yaml).");
  cli.AddFlag("federation", "PATH", "federation file (required)");
  cli.AddFlag("out", "DIR",
              "output folder: history.json/.csv, model.npz, simulation.json, "
              "client-state/ (default out/sim/<federation name>)");
  cli.AddFlag("clients", "N", "number of virtual clients (default: the federation's)");
  cli.AddFlag("threads", "T", "worker threads (default: the federation's sim.threads)");
  cli.AddFlag("fraction", "F",
              "clients sampled per round for training (same as --set "
              "server:strategy.fraction_fit=F)");
  cli.AddFlag("max-parallel", "M",
              "instructions in flight (running or awaiting in-order aggregation), >= threads "
              "(default 2 x threads); at most one virtual client per thread is alive");
  cli.AddFlag("evaluate-every", "K",
              "federated evaluation every K rounds and after the last "
              "(0: last only; default: sim.evaluate_every)");
  cli.AddFlag("log-level", "LEVEL", "log level of the clients and strategies", "warn");
  cli.AddSwitch("print-config", "print the effective server and client configs and exit");
  cli.AddEpilog(
      "Overrides name their config: --set server:run.num_rounds=5, --set client:train.lr=0.002,\n"
      "--set shared:data.source=ml-100k (shared: client; the baseline reads the same file).\n\n"
      "Examples:\n"
      "  petal-sim --federation configs/federation/demo.yaml\n"
      "  petal-sim --federation configs/federation/ml100k-cross-device.yaml --threads 2\n"
      "  petal-sim --federation configs/federation/demo.yaml --clients 16 "
      "--set server:strategy.fraction_fit=0.25\n");
  if (absl::Status s = cli.Parse(argc, argv); !s.ok()) {
    std::cerr << "petal-sim: " << s.message() << "\n";
    return kExitUsage;
  }
  if (cli.help_requested()) {
    std::cout << cli.Usage();
    return 0;
  }
  auto usage_error = [](const absl::Status& s) {
    std::cerr << "petal-sim: " << s.message() << "\n";
    return kExitUsage;
  };
  if (!cli.Has("federation"))
    return usage_error(absl::InvalidArgumentError("--federation is required"));
  if (!cli.positional().empty()) {
    return usage_error(absl::InvalidArgumentError(
        fmt::format("unexpected argument '{}' (see --help)", cli.positional()[0])));
  }
  if (auto level = log::ParseLevel(cli.Get("log-level")); level.ok()) {
    if (!std::getenv("PETAL_LOG_LEVEL")) log::SetLevel(*level);
  } else {
    return usage_error(level.status());
  }
  log::SetProcessName("petal-sim");

  absl::StatusOr<FederationFile> fed = LoadFederationFile(cli.Get("federation"));
  if (!fed.ok()) return usage_error(fed.status());
  absl::StatusOr<Overrides> overrides = SplitOverrides(cli.overrides());
  if (!overrides.ok()) return usage_error(overrides.status());
  auto int_flag = [&](const char* name, int64_t fallback, int64_t lo) -> absl::StatusOr<int64_t> {
    if (!cli.Has(name)) return fallback;
    const std::string text = cli.Get(name);
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || v < lo) {
      return absl::InvalidArgumentError(
          fmt::format("--{} must be an integer >= {}, got '{}'", name, lo, text));
    }
    return static_cast<int64_t>(v);
  };
  absl::StatusOr<int64_t> clients = int_flag("clients", fed->clients, 1);
  absl::StatusOr<int64_t> threads = int_flag("threads", fed->sim_threads, 1);
  absl::StatusOr<int64_t> max_parallel = int_flag("max-parallel", fed->sim_max_parallel, 0);
  absl::StatusOr<int64_t> evaluate_every = int_flag("evaluate-every", fed->sim_evaluate_every, 0);
  for (const auto* v : {&clients, &threads, &max_parallel, &evaluate_every}) {
    if (!v->ok()) return usage_error(v->status());
  }
  const int32_t n = static_cast<int32_t>(*clients);

  // The server's config with the federation's topology (the rule scripts/federate applies).
  if (cli.Has("fraction")) {
    overrides->server.push_back("strategy.fraction_fit=" + cli.Get("fraction"));
  }
  absl::StatusOr<common::YamlConfig> server_yaml = LoadWithSets(fed->server, overrides->server);
  if (!server_yaml.ok()) return usage_error(server_yaml.status());
  absl::StatusOr<server::ServerConfig> server_config = server::ReadServerConfig(*server_yaml);
  if (!server_config.ok()) return usage_error(server_config.status());
  absl::StatusOr<double> fraction_fit =
      server_config->strategy_params.GetDoubleOr("fraction_fit", 1.0);
  absl::StatusOr<double> fraction_evaluate =
      server_config->strategy_params.GetDoubleOr("fraction_evaluate", 1.0);
  if (!fraction_fit.ok()) return usage_error(fraction_fit.status());
  if (!fraction_evaluate.ok()) return usage_error(fraction_evaluate.status());
  for (const std::string& s : ServerTopologySets(n, *fraction_fit, *fraction_evaluate)) {
    if (absl::Status st = server_yaml->ApplyOverride(s); !st.ok()) return usage_error(st);
  }
  server_config = server::ReadServerConfig(*server_yaml);
  if (!server_config.ok()) return usage_error(server_config.status());

  std::vector<std::string> client_sets = overrides->client;
  client_sets.insert(client_sets.end(), overrides->shared.begin(), overrides->shared.end());
  client_sets.push_back(fmt::format("partition.num_partitions={}", n));
  client_sets.push_back("client.partition_id=0");  // each virtual client gets its own
  absl::StatusOr<common::YamlConfig> client_yaml = LoadWithSets(fed->client, client_sets);
  if (!client_yaml.ok()) return usage_error(client_yaml.status());
  absl::StatusOr<client::ClientAppConfig> client_config = client::ReadClientAppConfig(*client_yaml);
  if (!client_config.ok()) return usage_error(client_config.status());

  if (cli.Has("print-config")) {
    std::cout << "# server (" << fed->server.config << ")\n" << server_yaml->Dump() << "\n";
    std::cout << "# client (" << fed->client.config << ")\n" << client_yaml->Dump() << "\n";
    return 0;
  }

  strategy::StrategyConfig strategy_config =
      server::MakeStrategyConfig(*server_config, *server_yaml);
  if (!server_config->initial_parameters.empty()) {
    absl::StatusOr<common::NDArrays> initial =
        server::LoadInitialParameters(server_config->initial_parameters);
    if (!initial.ok()) return usage_error(initial.status());
    strategy_config.initial_parameters = *std::move(initial);
  }
  absl::StatusOr<strategy::StrategyPtr> strategy =
      strategy::MakeStrategy(std::move(strategy_config));
  if (!strategy.ok()) return usage_error(strategy.status());

  const std::string out = cli.Has("out") ? cli.Get("out") : "out/sim/" + fed->name;
  const std::string state_root = (fs::path(out) / "client-state").string();
  std::error_code ec;
  fs::remove_all(state_root, ec);  // a fresh federation: no user embeddings from an earlier run
  if (ec) {
    log::Error("cannot clear {}: {}", state_root, ec.message());
    return kExitFailure;
  }

  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<NcfClientPool>> pool =
      NcfClientPool::Create(*client_config, n, state_root);
  if (!pool.ok()) {
    std::cerr << "petal-sim: " << pool.status().message() << "\n";
    return kExitUsage;
  }
  const model::SplitData& first = (*pool)->partition(0);
  std::cout << fmt::format(
                   "petal-sim: federation {} ({}): {} virtual clients ({} partitions) of {} ({} "
                   "items, {} tags, {} interactions), data ready in {:.1f} s\n",
                   fed->name, fed->description, n,
                   model::PartitionSchemeName(client_config->partition.scheme), first.catalog->name,
                   first.catalog->num_items(), first.catalog->num_tags(),
                   (*pool)->total_interactions(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count())
            << std::flush;

  SimulationOptions options;
  options.num_clients = n;
  options.num_rounds = server_config->num_rounds;
  options.threads = static_cast<int32_t>(*threads);
  options.max_parallel = static_cast<int32_t>(*max_parallel);
  options.evaluate_every = *evaluate_every;
  options.seed = static_cast<uint64_t>(server_config->seed);
  options.output_dir = out;
  const std::string strategy_name = server_config->strategy;
  std::cout << fmt::format(
                   "petal-sim: {} for {} rounds, fraction_fit {}, {} threads, output in {}/\n",
                   strategy_name, options.num_rounds, *fraction_fit, options.threads, out)
            << std::flush;
  options.on_round = [&](const server::RoundRecord& r) {
    std::string line = fmt::format("round {:>3}/{}: fit {}/{} clients {:.1f} s", r.round,
                                   options.num_rounds, r.fit_results, r.fit_sampled, r.fit_seconds);
    if (r.evaluate_sampled > 0) {
      line += fmt::format(", evaluate {}/{} {:.1f} s", r.evaluate_results, r.evaluate_sampled,
                          r.evaluate_seconds);
      line += Metric(r.evaluate_metrics, "hr@10") + Metric(r.evaluate_metrics, "ndcg@10") +
              Metric(r.evaluate_metrics, "rmse");
    }
    if (r.fit_failures + r.evaluate_failures > 0) {
      line += fmt::format("  ({} failures)", r.fit_failures + r.evaluate_failures);
    }
    std::cout << line << "\n" << std::flush;
  };
  // Each worker trains one client at a time with client.threads intra-op
  // threads; LocalWorkload::Create sizes LibTorch's and OpenBLAS's pools to that.
  const int32_t threads_used = options.threads;
  Simulation sim(std::move(options), *std::move(strategy), (*pool)->Factory());
  absl::StatusOr<SimulationResult> result;
  {
    SignalWatcher watcher(sim);
    result = sim.Run();
  }
  if (!result.ok()) {
    log::Error("the simulation failed: {}", result.status());
    std::cerr << "petal-sim: " << result.status().message() << "\n";
    return kExitFailure;
  }
  const double per_round = result->last_round > 0 ? result->seconds / result->last_round : 0.0;
  std::cout << fmt::format(
      "petal-sim: {} {} rounds in {:.1f} s ({:.2f} s per round incl. evaluation, {} threads), "
      "{} fits, {} evaluations, at most {} clients alive, peak RSS {:.0f} MiB; wrote "
      "{}/history.json, history.csv, model.npz, simulation.json\n",
      result->stopped ? "stopped after" : "finished", result->last_round, result->seconds,
      per_round, threads_used, result->fit_calls, result->evaluate_calls, result->max_live_clients,
      result->peak_rss_mib, out);
  return result->stopped ? kExitStopped : 0;
}

}  // namespace
}  // namespace petal::sim

int main(int argc, char** argv) { return petal::sim::Main(argc, argv); }
