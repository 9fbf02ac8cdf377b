#include "client/sim/simulation.h"

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/testing/scratch_path.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "strategy/registry.h"

namespace petal::sim {
namespace {

using common::ConfigMap;
using common::NDArray;
using common::NDArrays;
using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int kDim = 3;

// Client i pulls the model towards its own target t_i = (i, -i, 2i): one fit
// moves w to w + lr (t_i - w), weighted by num_examples = i + 1.
float Target(int32_t index, int k) {
  return static_cast<float>(k == 0 ? index : (k == 1 ? -index : 2 * index));
}

// What every test can observe about the virtual clients.
struct World {
  std::mutex mu;
  std::map<int64_t, std::vector<int32_t>> fitted;  // round -> clients that trained (call order)
  std::vector<int32_t> evaluated_rounds;
  std::atomic<int32_t> alive{0};
  std::atomic<int32_t> max_alive{0};
  std::atomic<int64_t> created{0};
  std::set<int32_t> factory_error, bad_status, nan_update, throws;
  std::function<void(int64_t round)> on_fit;  // test hook (e.g. RequestStop)
};

class FakeClient final : public client::Client {
 public:
  FakeClient(int32_t index, World& world) : index_(index), world_(world) {
    const int32_t now = ++world_.alive;
    int32_t seen = world_.max_alive.load();
    while (now > seen && !world_.max_alive.compare_exchange_weak(seen, now)) {
    }
    ++world_.created;
  }
  ~FakeClient() override { --world_.alive; }

  absl::StatusOr<common::GetParametersRes> GetParameters(const common::GetParametersIns&) override {
    return common::GetParametersRes{common::SuccessStatus(),
                                    {NDArray::FromVector<float>({kDim}, {0, 0, 0}).value()}};
  }

  absl::StatusOr<common::FitRes> Fit(const common::FitIns& ins) override {
    const int64_t round = ins.config.GetIntOr("server_round", 0).value();
    {
      std::lock_guard<std::mutex> lock(world_.mu);
      world_.fitted[round].push_back(index_);
    }
    if (world_.on_fit) world_.on_fit(round);
    if (world_.throws.count(index_)) throw std::runtime_error("boom");
    if (world_.bad_status.count(index_)) {
      return common::FitRes{
          common::ReplyStatus{common::Code::kFitNotImplemented, "nope"}, {}, 0, {}};
    }
    const double lr = ins.config.GetDoubleOr("lr", 0.5).value();
    auto w = (*ins.parameters)[0].values<float>();
    std::vector<float> out(kDim);
    for (int k = 0; k < kDim; ++k) {
      out[k] = static_cast<float>(w[k] + lr * (Target(index_, k) - w[k]));
    }
    if (world_.nan_update.count(index_)) out[1] = std::nanf("");
    ConfigMap metrics;
    metrics.SetInt("index", index_);
    return common::FitRes{common::SuccessStatus(),
                          {NDArray::FromVector<float>({kDim}, out).value()},
                          index_ + 1,
                          metrics};
  }

  absl::StatusOr<common::EvaluateRes> Evaluate(const common::EvaluateIns& ins) override {
    const int64_t round = ins.config.GetIntOr("server_round", 0).value();
    {
      std::lock_guard<std::mutex> lock(world_.mu);
      if (world_.evaluated_rounds.empty() || world_.evaluated_rounds.back() != round) {
        world_.evaluated_rounds.push_back(static_cast<int32_t>(round));
      }
    }
    auto w = (*ins.parameters)[0].values<float>();
    double d = 0;
    for (int k = 0; k < kDim; ++k) d += (w[k] - Target(index_, k)) * (w[k] - Target(index_, k));
    ConfigMap metrics;
    metrics.Set("distance", std::sqrt(d));
    return common::EvaluateRes{common::SuccessStatus(), static_cast<float>(d), 1, metrics};
  }

 private:
  const int32_t index_;
  World& world_;
};

ClientFactory FactoryFor(World& world) {
  return [&world](int32_t index) -> absl::StatusOr<std::unique_ptr<client::Client>> {
    if (world.factory_error.count(index)) return absl::UnavailableError("cannot build it");
    return std::unique_ptr<client::Client>(std::make_unique<FakeClient>(index, world));
  };
}

strategy::StrategyPtr MakeStrategy(ConfigMap params, std::string name = "fedavg",
                                   ConfigMap fit_config = {}) {
  strategy::StrategyConfig config;
  config.name = std::move(name);
  config.params = std::move(params);
  config.on_fit_config = [fit_config](int64_t round) {
    ConfigMap c = fit_config;
    c.SetInt("server_round", round);
    return c;
  };
  config.on_evaluate_config = [](int64_t round) {
    ConfigMap c;
    c.SetInt("server_round", round);
    return c;
  };
  auto s = strategy::MakeStrategy(std::move(config));
  EXPECT_THAT(s.status(), IsOk());
  return std::move(s).value();
}

ConfigMap AllClients(int n) {
  ConfigMap p;
  p.SetInt("min_fit_clients", n);
  p.SetInt("min_evaluate_clients", n);
  p.SetInt("min_available_clients", n);
  return p;
}

SimulationOptions Options(int32_t n, int64_t rounds, int32_t threads) {
  SimulationOptions o;
  o.num_clients = n;
  o.num_rounds = rounds;
  o.threads = threads;
  return o;
}

std::vector<float> Values(const common::SharedNDArrays& arrays) {
  auto v = (*arrays)[0].values<float>();
  return std::vector<float>(v.begin(), v.end());
}

TEST(SimulationTest, FedAvgRoundIsTheWeightedMeanOfTheClientUpdates) {
  World world;
  Simulation sim(Options(4, 1, 2), MakeStrategy(AllClients(4)), FactoryFor(world));
  absl::StatusOr<SimulationResult> result = sim.Run();
  ASSERT_THAT(result.status(), IsOk());
  // From w = 0 with lr 0.5 each client sends t_i / 2; weights i + 1.
  for (int k = 0; k < kDim; ++k) {
    double num = 0, den = 0;
    for (int i = 0; i < 4; ++i) {
      num += (i + 1) * static_cast<double>(static_cast<float>(0.5 * Target(i, k)));
      den += i + 1;
    }
    EXPECT_NEAR(Values(result->parameters)[k], num / den, 1e-6) << "k=" << k;
  }
  ASSERT_EQ(result->history.rounds().size(), 1u);
  const server::RoundRecord& r = result->history.rounds()[0];
  EXPECT_EQ(r.fit_sampled, 4);
  EXPECT_EQ(r.fit_results, 4);
  EXPECT_EQ(r.fit_failures, 0);
  EXPECT_TRUE(r.model_updated);
  EXPECT_EQ(r.evaluate_results, 4);
  ASSERT_TRUE(r.loss_distributed.has_value());
  EXPECT_EQ(result->last_round, 1);
  EXPECT_FALSE(result->stopped);
  // One get_parameters plus 4 fits plus 4 evaluations, each on a fresh client.
  EXPECT_EQ(world.created.load(), 9);
  EXPECT_EQ(world.alive.load(), 0);
}

TEST(SimulationTest, SamplesTheConfiguredFractionOfClientsEachRound) {
  World world;
  ConfigMap p;
  p.Set("fraction_fit", 0.1);
  p.Set("fraction_evaluate", 0.0);
  p.SetInt("min_fit_clients", 2);
  p.SetInt("min_available_clients", 2);
  SimulationOptions o = Options(200, 5, 3);
  o.seed = 7;
  Simulation sim(o, MakeStrategy(p), FactoryFor(world));
  absl::StatusOr<SimulationResult> result = sim.Run();
  ASSERT_THAT(result.status(), IsOk());
  ASSERT_EQ(world.fitted.size(), 5u);
  std::set<std::vector<int32_t>> distinct_rounds;
  for (const auto& [round, clients] : world.fitted) {
    EXPECT_EQ(clients.size(), 20u) << "round " << round;
    std::set<int32_t> unique(clients.begin(), clients.end());
    EXPECT_EQ(unique.size(), 20u) << "a client was sampled twice in round " << round;
    for (int32_t c : unique) EXPECT_TRUE(c >= 0 && c < 200);
    distinct_rounds.insert(std::vector<int32_t>(unique.begin(), unique.end()));
  }
  EXPECT_EQ(distinct_rounds.size(), 5u) << "every round should draw another sample";
  for (const auto& r : result->history.rounds()) {
    EXPECT_EQ(r.fit_sampled, 20);
    EXPECT_EQ(r.evaluate_sampled, 0);  // fraction_evaluate 0: no federated evaluation
  }
}

std::map<int64_t, std::set<int32_t>> SampledSets(uint64_t seed, int32_t threads) {
  World world;
  ConfigMap p;
  p.Set("fraction_fit", 0.05);
  p.Set("fraction_evaluate", 0.0);
  SimulationOptions o = Options(300, 4, threads);
  o.seed = seed;
  Simulation sim(o, MakeStrategy(p), FactoryFor(world));
  EXPECT_THAT(sim.Run().status(), IsOk());
  std::map<int64_t, std::set<int32_t>> out;
  for (const auto& [round, clients] : world.fitted) out[round] = {clients.begin(), clients.end()};
  return out;
}

TEST(SimulationTest, SamplingIsAFunctionOfTheSeed) {
  EXPECT_EQ(SampledSets(11, 1), SampledSets(11, 4));
  EXPECT_NE(SampledSets(11, 2), SampledSets(12, 2));
}

TEST(SimulationTest, ResultsDoNotDependOnThreadTiming) {
  auto run = [](int32_t threads, int32_t max_parallel) {
    World world;
    ConfigMap p;
    p.Set("fraction_fit", 0.5);
    p.Set("fraction_evaluate", 0.5);
    // Flower's float arithmetic (order-dependent) makes the folding order visible.
    p.Set("accumulation", std::string("native"));
    SimulationOptions o = Options(40, 3, threads);
    o.max_parallel = max_parallel;
    o.seed = 3;
    ConfigMap fit;
    fit.Set("lr", 0.3);
    Simulation sim(o, MakeStrategy(p, "fedadam", fit), FactoryFor(world));
    absl::StatusOr<SimulationResult> r = sim.Run();
    EXPECT_THAT(r.status(), IsOk());
    return std::make_pair(Values(r->parameters), r->history.ToCsv());
  };
  const auto one = run(1, 1);
  const auto many = run(4, 9);
  EXPECT_EQ(one.first, many.first);  // bit for bit
  // The CSV holds timings; compare the metric columns only.
  auto strip = [](const std::string& csv) {
    std::string out;
    std::istringstream in(csv);
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> cells;
      std::istringstream l(line);
      for (std::string cell; std::getline(l, cell, ',');) cells.push_back(cell);
      cells[5] = cells[10] = "";  // fit_seconds, evaluate_seconds
      for (const std::string& c : cells) out += c + ",";
      out += "\n";
    }
    return out;
  };
  EXPECT_EQ(strip(one.second), strip(many.second));
}

TEST(SimulationTest, AtMostMaxParallelClientsAreAlive) {
  World world;
  SimulationOptions o = Options(64, 2, 3);
  o.max_parallel = 5;
  Simulation sim(o, MakeStrategy(AllClients(64)), FactoryFor(world));
  absl::StatusOr<SimulationResult> result = sim.Run();
  ASSERT_THAT(result.status(), IsOk());
  // Each slot the engine counts holds one client from before the factory call
  // until after its destruction, so the clients really alive at once (counted
  // by the fake's constructor and destructor) never exceed the slots in use,
  // and a worker holds at most one slot: alive <= slots <= threads <= max_parallel.
  // (Not equal: a worker may already hold a slot while another worker's client
  // is being destroyed.)
  EXPECT_GE(world.max_alive.load(), 1);
  EXPECT_LE(world.max_alive.load(), result->max_live_clients);
  EXPECT_LE(result->max_live_clients, 3);
  EXPECT_LE(result->max_live_clients, o.max_parallel);
  EXPECT_EQ(result->fit_calls, 128);
  EXPECT_EQ(result->evaluate_calls, 128);
  EXPECT_EQ(world.alive.load(), 0);
}

TEST(SimulationTest, ClientFailuresAreCountedAndLeftOutOfTheAggregate) {
  World world;
  world.factory_error = {1};
  world.bad_status = {2};
  world.nan_update = {3};
  world.throws = {4};
  Simulation sim(Options(6, 1, 2), MakeStrategy(AllClients(6)), FactoryFor(world));
  absl::StatusOr<SimulationResult> result = sim.Run();
  ASSERT_THAT(result.status(), IsOk());
  const server::RoundRecord& r = result->history.rounds()[0];
  EXPECT_EQ(r.fit_sampled, 6);
  EXPECT_EQ(r.fit_results, 2);  // clients 0 and 5
  EXPECT_EQ(r.fit_failures, 4);
  std::map<std::string, std::string> why;
  for (const server::FailureRecord& f : r.failures) {
    if (f.phase == "fit") why[f.cid] = f.error;
  }
  EXPECT_THAT(why["1"], HasSubstr("cannot build it"));
  EXPECT_THAT(why["2"], HasSubstr("nope"));
  EXPECT_THAT(why["3"], HasSubstr("finite"));
  EXPECT_THAT(why["4"], HasSubstr("boom"));
  // Weighted mean of clients 0 (weight 1, update 0) and 5 (weight 6, t_5 / 2).
  EXPECT_NEAR(Values(result->parameters)[0], 6.0 * 2.5 / 7.0, 1e-6);
}

TEST(SimulationTest, FailuresKeepTheModelWhenTheStrategyDoesNotAcceptThem) {
  World world;
  world.throws = {2};
  ConfigMap p = AllClients(3);
  p.Set("accept_failures", false);
  Simulation sim(Options(3, 1, 1), MakeStrategy(p), FactoryFor(world));
  absl::StatusOr<SimulationResult> result = sim.Run();
  ASSERT_THAT(result.status(), IsOk());
  EXPECT_FALSE(result->history.rounds()[0].model_updated);
  EXPECT_EQ(Values(result->parameters), std::vector<float>({0, 0, 0}));
}

TEST(SimulationTest, EvaluatesEveryKRoundsAndAfterTheLast) {
  World world;
  SimulationOptions o = Options(3, 5, 2);
  o.evaluate_every = 2;
  Simulation sim(o, MakeStrategy(AllClients(3)), FactoryFor(world));
  absl::StatusOr<SimulationResult> result = sim.Run();
  ASSERT_THAT(result.status(), IsOk());
  EXPECT_EQ(world.evaluated_rounds, std::vector<int32_t>({2, 4, 5}));
  for (const auto& r : result->history.rounds()) {
    EXPECT_EQ(r.evaluate_sampled > 0, r.round == 2 || r.round == 4 || r.round == 5) << r.round;
  }
}

TEST(SimulationTest, UsesTheStrategysInitialParametersWithoutAskingAClient) {
  World world;
  strategy::StrategyConfig config;
  config.name = "fedavg";
  config.params = AllClients(2);
  config.initial_parameters = NDArrays{NDArray::FromVector<float>({kDim}, {1, 2, 3}).value()};
  auto strategy = strategy::MakeStrategy(std::move(config));
  ASSERT_THAT(strategy.status(), IsOk());
  SimulationOptions o = Options(2, 1, 1);
  o.evaluate_every = 0;
  ConfigMap none;
  Simulation sim(o, *std::move(strategy), FactoryFor(world));
  absl::StatusOr<SimulationResult> result = sim.Run();
  ASSERT_THAT(result.status(), IsOk());
  // 2 fits + 2 evaluations (the last round), no get_parameters.
  EXPECT_EQ(world.created.load(), 4);
  // Clients 0 and 1 (weights 1, 2) move (1,2,3) halfway to (0,0,0) and (1,-1,2).
  EXPECT_NEAR(Values(result->parameters)[0], (1 * 0.5 + 2 * 1.0) / 3, 1e-6);
}

TEST(SimulationTest, NoInitialParametersIsAnError) {
  World world;
  world.factory_error = {0, 1};
  Simulation sim(Options(2, 1, 1), MakeStrategy(AllClients(2)), FactoryFor(world));
  EXPECT_THAT(sim.Run().status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("3 attempts")));
}

TEST(SimulationTest, StopAbandonsTheRoundAndKeepsTheLastCompletedModel) {
  World world;
  Simulation* self = nullptr;
  world.on_fit = [&](int64_t round) {
    if (round == 3) self->RequestStop();
  };
  Simulation sim(Options(4, 10, 2), MakeStrategy(AllClients(4)), FactoryFor(world));
  self = &sim;
  absl::StatusOr<SimulationResult> stopped = sim.Run();
  ASSERT_THAT(stopped.status(), IsOk());
  EXPECT_TRUE(stopped->stopped);
  EXPECT_EQ(stopped->last_round, 2);
  EXPECT_EQ(stopped->history.rounds().size(), 2u);
  EXPECT_EQ(world.alive.load(), 0);

  World again;
  Simulation two(Options(4, 2, 2), MakeStrategy(AllClients(4)), FactoryFor(again));
  absl::StatusOr<SimulationResult> reference = two.Run();
  ASSERT_THAT(reference.status(), IsOk());
  EXPECT_EQ(Values(stopped->parameters), Values(reference->parameters));
}

TEST(SimulationTest, WritesTheServersHistoryFormatAndTimings) {
  World world;
  const std::string dir = ::petal::testing::ScratchPath("sim_outputs").string();
  std::filesystem::remove_all(dir);
  SimulationOptions o = Options(3, 2, 2);
  o.output_dir = dir;
  std::vector<int64_t> progress;
  o.on_round = [&](const server::RoundRecord& r) { progress.push_back(r.round); };
  Simulation sim(o, MakeStrategy(AllClients(3)), FactoryFor(world));
  ASSERT_THAT(sim.Run().status(), IsOk());
  EXPECT_EQ(progress, std::vector<int64_t>({1, 2}));
  std::ifstream h(dir + "/history.json");
  nlohmann::json history = nlohmann::json::parse(h);
  EXPECT_TRUE(history["completed"].get<bool>());
  EXPECT_EQ(history["last_round"].get<int>(), 2);
  EXPECT_EQ(history["strategy"].get<std::string>(), "fedavg");
  EXPECT_EQ(history["metrics_distributed"]["distance"].size(), 2u);
  EXPECT_EQ(history["rounds"].size(), 2u);
  std::ifstream s(dir + "/simulation.json");
  nlohmann::json summary = nlohmann::json::parse(s);
  EXPECT_EQ(summary["num_clients"].get<int>(), 3);
  EXPECT_EQ(summary["round_seconds"].size(), 2u);
  EXPECT_GT(summary["seconds_per_round"].get<double>(), 0.0);
  EXPECT_TRUE(std::filesystem::exists(dir + "/history.csv"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/model.npz"));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(SimulationTest, TooFewClientsForTheStrategySkipsTrainingWithAWarning) {
  World world;
  Simulation sim(Options(2, 1, 1), MakeStrategy(AllClients(5)), FactoryFor(world));
  // get_parameters samples 1 client, so the run starts; sampling 5 of 2 fails.
  absl::StatusOr<SimulationResult> result = sim.Run();
  ASSERT_THAT(result.status(), IsOk());
  EXPECT_EQ(result->history.rounds()[0].fit_sampled, 0);
  EXPECT_FALSE(result->history.rounds()[0].model_updated);
}

TEST(SimulationTest, RejectsInvalidOptions) {
  World world;
  auto run = [&](SimulationOptions o) {
    Simulation sim(o, MakeStrategy(AllClients(2)), FactoryFor(world));
    return sim.Run().status();
  };
  SimulationOptions o = Options(0, 1, 1);
  EXPECT_THAT(run(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_clients")));
  o = Options(2, 0, 1);
  EXPECT_THAT(run(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_rounds")));
  o = Options(2, 1, 0);
  EXPECT_THAT(run(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("threads")));
  o = Options(2, 1, 4);
  o.max_parallel = 2;
  EXPECT_THAT(run(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_parallel")));
  o = Options(2, 1, 1);
  o.evaluate_every = -1;
  EXPECT_THAT(run(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("evaluate_every")));
  Simulation no_factory(Options(2, 1, 1), MakeStrategy(AllClients(2)), nullptr);
  EXPECT_THAT(no_factory.Run().status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace petal::sim
