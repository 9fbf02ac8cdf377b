// petal_aggregate_bench: time and peak memory of one round's aggregation, as the
// server does it (each result folded in as it arrives, then Finish).
//
//   petal_aggregate_bench --clients 100 --params 1000000 [--strategy fedavg]
//                         [--accumulation float64|native] [--arrays 4]
//
// Results are generated one at a time (random float32, as if they had just
// been decoded from the wire) and dropped after Add(), so the peak RSS shows
// what the aggregation itself keeps. Only Add() and Finish() are timed.
// Prints one JSON line: clients, params, strategy, add/finish seconds,
// milliseconds per client, RSS before and peak (VmHWM, MiB).
#include <chrono>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "common/cli.h"
#include "strategy/registry.h"

namespace {

double StatusMiB(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      int64_t kb = 0;
      absl::SimpleAtoi(line.substr(field.size() + 1, line.size() - field.size() - 4), &kb);
      return static_cast<double>(kb) / 1024.0;
    }
  }
  return -1;
}

petal::common::NDArrays RandomModel(std::mt19937_64& rng, int64_t params, int64_t arrays) {
  petal::common::NDArrays out;
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (int64_t a = 0; a < arrays; ++a) {
    const int64_t n = params / arrays + (a < params % arrays ? 1 : 0);
    auto arr = petal::common::NDArray::Zeros(petal::common::DType::kFloat32, {n}).value();
    for (float& v : arr.mutable_values<float>()) v = dist(rng);
    out.push_back(std::move(arr));
  }
  return out;
}

int64_t Flag(const petal::common::CommandLine& cli, const std::string& name) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(cli.Get(name), &v) || v <= 0) {
    std::cerr << "--" << name << " needs a positive integer\n";
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  petal::common::CommandLine cli("petal_aggregate_bench", "Times one round of streaming aggregation.");
  cli.AddFlag("clients", "K", "results per round", "10");
  cli.AddFlag("params", "P", "float32 parameters per result", "1000000");
  cli.AddFlag("arrays", "A", "arrays the parameters are split into", "4");
  cli.AddFlag("strategy", "NAME", "registered strategy", "fedavg");
  cli.AddFlag("accumulation", "MODE", "float64 or native", "float64");
  if (absl::Status s = cli.Parse(argc, argv); !s.ok() || cli.help_requested()) {
    std::cerr << (s.ok() ? "" : std::string(s.message()) + "\n") << cli.Usage();
    return s.ok() ? 0 : 2;
  }
  const int64_t clients = Flag(cli, "clients");
  const int64_t params = Flag(cli, "params");
  const int64_t arrays = Flag(cli, "arrays");
  std::mt19937_64 rng(7);
  petal::strategy::StrategyConfig config;
  config.name = cli.Get("strategy");
  config.params.Set("accumulation", cli.Get("accumulation"));
  auto strategy = petal::strategy::MakeStrategy(std::move(config));
  if (!strategy.ok()) {
    std::cerr << strategy.status() << "\n";
    return 2;
  }
  auto global = petal::common::Share(RandomModel(rng, params, arrays));
  const double rss_before = StatusMiB("VmRSS");
  auto aggregator = (*strategy)->BeginAggregateFit(1, global).value();
  std::chrono::duration<double> add_time{0};
  for (int64_t k = 0; k < clients; ++k) {
    petal::strategy::FitResult r;
    r.client = std::make_shared<petal::strategy::ClientProxy>(fmt::format("c{}", k));
    r.res.status = petal::common::SuccessStatus();
    r.res.parameters = RandomModel(rng, params, arrays);
    r.res.num_examples = 1 + k % 50;
    const auto t0 = std::chrono::steady_clock::now();
    absl::Status s = aggregator->Add(std::move(r));
    add_time += std::chrono::steady_clock::now() - t0;
    if (!s.ok()) {
      std::cerr << s << "\n";
      return 1;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto out = aggregator->Finish({});
  const std::chrono::duration<double> finish_time = std::chrono::steady_clock::now() - t0;
  if (!out.ok() || !out->parameters) {
    std::cerr << "aggregation failed: " << out.status() << "\n";
    return 1;
  }
  nlohmann::json j = {{"impl", "petal"},
                      {"strategy", cli.Get("strategy")},
                      {"accumulation", cli.Get("accumulation")},
                      {"clients", clients},
                      {"params", params},
                      {"add_seconds", add_time.count()},
                      {"finish_seconds", finish_time.count()},
                      {"total_seconds", add_time.count() + finish_time.count()},
                      {"ms_per_client", 1000.0 * add_time.count() / static_cast<double>(clients)},
                      {"rss_before_mib", rss_before},
                      {"peak_rss_mib", StatusMiB("VmHWM")}};
  std::cout << j.dump() << "\n";
  return 0;
}
