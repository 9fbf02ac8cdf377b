#include "client/sim/simulation.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/npz.h"
#include "common/status_macros.h"
#include "server/validation.h"
#include "strategy/client_manager.h"

namespace petal::sim {
namespace {

namespace log = common::log;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A virtual client as the strategies see it: an identity with an index.
class VirtualClient final : public strategy::ClientProxy {
 public:
  explicit VirtualClient(int32_t index) : ClientProxy(std::to_string(index)), index_(index) {}
  int32_t index() const { return index_; }

 private:
  const int32_t index_;
};

int32_t IndexOf(const strategy::ClientProxyPtr& proxy) {
  const auto* v = dynamic_cast<const VirtualClient*>(proxy.get());
  return v == nullptr ? -1 : v->index();
}

// Fixed worker threads taking closures from a queue. Destruction finishes the
// queued work first.
class WorkerPool {
 public:
  explicit WorkerPool(int32_t threads) {
    for (int32_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Loop(); });
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  void Submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return done_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

// Runs task(i) for i in [0, n) on the pool, at most `window` of them started
// and not yet consumed, and hands each result to consume(i, result) on the
// calling thread in index order. A stop request ends dispatching; the tasks in
// flight finish first. Returns false if stopped before every task ran.
template <typename R>
bool RunOrdered(WorkerPool& pool, size_t n, size_t window, const std::function<R(size_t)>& task,
                const std::function<void(size_t, R)>& consume, const std::atomic<bool>& stop) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::optional<R>> slots;
    size_t in_flight = 0;
  };
  auto shared = std::make_shared<Shared>();
  shared->slots.resize(n);
  size_t next_submit = 0;
  auto submit = [&] {
    const size_t i = next_submit++;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      ++shared->in_flight;
    }
    pool.Submit([shared, &task, i] {
      R result = task(i);
      {
        std::lock_guard<std::mutex> lock(shared->mu);
        shared->slots[i] = std::move(result);
        --shared->in_flight;
      }
      shared->cv.notify_all();
    });
  };
  bool stopped = false;
  for (size_t next = 0; next < n; ++next) {
    while (!stopped && next_submit < n && next_submit < next + window) {
      if (stop.load()) {
        stopped = true;
        break;
      }
      submit();
    }
    if (next >= next_submit) break;  // stopped before this task was started
    std::optional<R> result;
    {
      std::unique_lock<std::mutex> lock(shared->mu);
      shared->cv.wait(lock, [&] { return shared->slots[next].has_value(); });
      result = std::move(shared->slots[next]);
      shared->slots[next].reset();
    }
    consume(next, std::move(*result));
  }
  // Tasks still running (after a stop) reference `task`: wait for them.
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->in_flight == 0; });
  return !stopped && next_submit == n;
}

absl::Status WriteHistory(const std::string& dir, const server::History& history,
                          const SimulationResult& result, std::string_view strategy_name,
                          const SimulationOptions& options,
                          const std::vector<double>& round_seconds) {
  namespace fs = std::filesystem;
  PETAL_RETURN_IF_ERROR(common::CreateDirectories(dir));
  nlohmann::json json = history.ToJson();
  json["completed"] = !result.stopped && result.last_round == options.num_rounds;
  json["last_round"] = result.last_round;
  json["strategy"] = std::string(strategy_name);
  PETAL_RETURN_IF_ERROR(
      common::WriteFileAtomically((fs::path(dir) / "history.json").string(), json.dump(1) + "\n"));
  PETAL_RETURN_IF_ERROR(
      common::WriteFileAtomically((fs::path(dir) / "history.csv").string(), history.ToCsv()));
  common::NamedArrays arrays;
  for (size_t i = 0; i < result.parameters->size(); ++i) {
    arrays.emplace_back(fmt::format("arr_{}", i), (*result.parameters)[i]);
  }
  PETAL_RETURN_IF_ERROR(common::WriteNpz((fs::path(dir) / "model.npz").string(), arrays));
  nlohmann::ordered_json sim;
  sim["num_clients"] = options.num_clients;
  sim["num_rounds"] = options.num_rounds;
  sim["last_round"] = result.last_round;
  sim["threads"] = options.threads;
  sim["max_parallel"] = options.max_parallel;
  sim["evaluate_every"] = options.evaluate_every;
  sim["seconds"] = result.seconds;
  double sum = 0;
  for (double s : round_seconds) sum += s;
  sim["seconds_per_round"] = round_seconds.empty() ? 0.0 : sum / round_seconds.size();
  sim["round_seconds"] = round_seconds;
  sim["fit_calls"] = result.fit_calls;
  sim["evaluate_calls"] = result.evaluate_calls;
  sim["max_live_clients"] = result.max_live_clients;
  sim["peak_rss_mib"] = result.peak_rss_mib;
  return common::WriteFileAtomically((fs::path(dir) / "simulation.json").string(),
                                     sim.dump(1) + "\n");
}

}  // namespace

double PeakRssMiB() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0.0;
  char line[256];
  double mib = 0.0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    long kib = 0;
    if (std::sscanf(line, "VmHWM: %ld kB", &kib) == 1) {
      mib = static_cast<double>(kib) / 1024.0;
      break;
    }
  }
  std::fclose(f);
  return mib;
}

absl::Status ValidateSimulationOptions(const SimulationOptions& o) {
  if (o.num_clients < 1) {
    return absl::InvalidArgumentError(
        fmt::format("num_clients must be >= 1, got {}", o.num_clients));
  }
  if (o.num_rounds < 1) {
    return absl::InvalidArgumentError(fmt::format("num_rounds must be >= 1, got {}", o.num_rounds));
  }
  if (o.threads < 1 || o.threads > 1024) {
    return absl::InvalidArgumentError(
        fmt::format("threads must be in [1, 1024], got {}", o.threads));
  }
  if (o.max_parallel != 0 && o.max_parallel < o.threads) {
    return absl::InvalidArgumentError(fmt::format(
        "max_parallel must be 0 or >= threads ({}), got {}", o.threads, o.max_parallel));
  }
  if (o.evaluate_every < 0) {
    return absl::InvalidArgumentError(
        fmt::format("evaluate_every must be >= 0, got {}", o.evaluate_every));
  }
  return absl::OkStatus();
}

struct Simulation::Impl {
  SimulationOptions options;
  strategy::StrategyPtr strategy;
  ClientFactory factory;
  std::atomic<bool> stop{false};
  std::unique_ptr<strategy::SimpleClientManager> manager;
  std::vector<strategy::ClientProxyPtr> proxies;
  common::SharedNDArrays global;
  server::History history;
  std::unique_ptr<WorkerPool> pool;

  std::mutex live_mu;
  int32_t live = 0;
  int32_t max_live = 0;
  std::atomic<int64_t> fit_calls{0};
  std::atomic<int64_t> evaluate_calls{0};

  // Creates client `index`, runs `call` on it, destroys it. The slot counted
  // in `live` is taken before the factory call and freed after the client is
  // destroyed, so it covers the client's whole lifetime (max_live_clients).
  template <typename R>
  absl::StatusOr<R> WithClient(int32_t index,
                               const std::function<absl::StatusOr<R>(client::Client&)>& call) {
    {
      std::lock_guard<std::mutex> lock(live_mu);
      max_live = std::max(max_live, ++live);
    }
    absl::StatusOr<R> out = absl::UnknownError("not run");
    try {
      absl::StatusOr<std::unique_ptr<client::Client>> client = factory(index);
      if (!client.ok()) {
        out = common::Annotate(client.status(), fmt::format("creating virtual client {}", index));
      } else if (*client == nullptr) {
        out = absl::InternalError(fmt::format("the factory returned no client {}", index));
      } else {
        out = call(**client);
      }
    } catch (const std::exception& e) {
      out = absl::InternalError(fmt::format("virtual client {} threw: {}", index, e.what()));
    }
    {
      std::lock_guard<std::mutex> lock(live_mu);
      --live;
    }
    return out;
  }

  size_t Window() const {
    return static_cast<size_t>(options.max_parallel > 0 ? options.max_parallel
                                                        : 2 * options.threads);
  }

  absl::StatusOr<common::NDArrays> InitialParameters();
  absl::Status FitRound(int64_t round, server::RoundRecord& record);
  absl::Status EvaluateRound(int64_t round, server::RoundRecord& record);
  absl::Status Centralized(int64_t round, server::RoundRecord& record, bool* any);
};

Simulation::Simulation(SimulationOptions options, strategy::StrategyPtr strategy,
                       ClientFactory factory)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->strategy = std::move(strategy);
  impl_->factory = std::move(factory);
}

Simulation::~Simulation() = default;

void Simulation::RequestStop() {
  impl_->stop.store(true);
  if (impl_->manager) impl_->manager->Shutdown();
}

absl::StatusOr<common::NDArrays> Simulation::Impl::InitialParameters() {
  PETAL_ASSIGN_OR_RETURN(std::optional<common::NDArrays> from_strategy,
                         strategy->InitializeParameters(*manager));
  if (from_strategy) {
    log::Info("initial parameters from the strategy ({} arrays)", from_strategy->size());
    return *std::move(from_strategy);
  }
  constexpr int64_t kAttempts = 3;  // as petal-server
  absl::Status last = absl::UnavailableError("no attempt");
  for (int64_t attempt = 1; attempt <= kAttempts; ++attempt) {
    // The same draw petal-server makes for its get_parameters client.
    std::vector<strategy::ClientProxyPtr> picked =
        manager->Sample(1, 1, (uint64_t{1} << 62) + static_cast<uint64_t>(attempt));
    if (picked.empty()) return absl::UnavailableError("no virtual client to ask for parameters");
    const int32_t index = IndexOf(picked[0]);
    absl::StatusOr<common::GetParametersRes> res = WithClient<common::GetParametersRes>(
        index, [](client::Client& c) { return c.GetParameters(common::GetParametersIns{}); });
    if (res.ok())
      last = server::ValidateGetParametersRes(*res);
    else
      last = res.status();
    if (last.ok()) {
      log::Info("initial parameters from virtual client {} ({} arrays)", index,
                res->parameters.size());
      return std::move(res->parameters);
    }
    log::Warn("virtual client {} did not provide initial parameters: {}", index, last);
  }
  return absl::UnavailableError(
      fmt::format("no virtual client provided initial parameters in {} attempts (last: {})",
                  kAttempts, last.ToString()));
}

absl::Status Simulation::Impl::Centralized(int64_t round, server::RoundRecord& record, bool* any) {
  PETAL_ASSIGN_OR_RETURN(std::optional<strategy::CentralEvaluation> central,
                         strategy->Evaluate(round, *global));
  *any = central.has_value();
  if (central) {
    record.loss_centralized = central->loss;
    record.centralized_metrics = std::move(central->metrics);
  }
  return absl::OkStatus();
}

absl::Status Simulation::Impl::FitRound(int64_t round, server::RoundRecord& record) {
  const auto start = Clock::now();
  std::vector<strategy::FitInstruction> instructions =
      strategy->ConfigureFit(round, global, *manager);
  if (stop.load()) return absl::CancelledError("stop requested");
  record.fit_sampled = static_cast<int64_t>(instructions.size());
  if (instructions.empty()) {
    log::Warn(
        "[ROUND {}] no clients sampled for training (are min_fit_clients / "
        "min_available_clients larger than the {} virtual clients?)",
        round, options.num_clients);
    record.fit_seconds = SecondsSince(start);
    return absl::OkStatus();
  }
  PETAL_ASSIGN_OR_RETURN(strategy::FitAggregatorPtr aggregator,
                         strategy->BeginAggregateFit(round, global));
  std::vector<strategy::Failure> failures;
  auto fail = [&](const std::string& cid, absl::Status why) {
    log::Warn("[ROUND {}] fit failure from virtual client {}: {}", round, cid, why);
    record.failures.push_back({"fit", cid, why.ToString()});
    failures.push_back({cid, std::move(why)});
  };
  const std::function<absl::StatusOr<common::FitRes>(size_t)> task = [&](size_t i) {
    ++fit_calls;
    const strategy::FitInstruction& ins = instructions[i];
    return WithClient<common::FitRes>(IndexOf(ins.client),
                                      [&](client::Client& c) { return c.Fit(ins.ins); });
  };
  const std::function<void(size_t, absl::StatusOr<common::FitRes>)> consume =
      [&](size_t i, absl::StatusOr<common::FitRes> res) {
        const std::string& cid = instructions[i].client->cid();
        if (!res.ok()) return fail(cid, res.status());
        if (absl::Status valid = server::ValidateFitRes(*res, *global); !valid.ok()) {
          return fail(cid, valid);
        }
        absl::Status added =
            aggregator->Add(strategy::FitResult{instructions[i].client, *std::move(res)});
        if (!added.ok()) fail(cid, added);
      };
  const bool complete = RunOrdered(*pool, instructions.size(), Window(), task, consume, stop);
  if (!complete) return absl::CancelledError("stop requested");
  record.fit_results = aggregator->num_results();
  record.fit_failures = static_cast<int64_t>(failures.size());
  absl::StatusOr<strategy::FitAggregate> aggregate = aggregator->Finish(failures);
  if (!aggregate.ok()) {
    log::Error("[ROUND {}] aggregation failed, keeping the current model: {}", round,
               aggregate.status());
    record.failures.push_back({"aggregate_fit", "", aggregate.status().ToString()});
  } else {
    record.fit_metrics = std::move(aggregate->metrics);
    if (aggregate->parameters) {
      global = common::Share(*std::move(aggregate->parameters));
      record.model_updated = true;
    }
  }
  record.fit_seconds = SecondsSince(start);
  return absl::OkStatus();
}

absl::Status Simulation::Impl::EvaluateRound(int64_t round, server::RoundRecord& record) {
  const auto start = Clock::now();
  std::vector<strategy::EvaluateInstruction> instructions =
      strategy->ConfigureEvaluate(round, global, *manager);
  if (stop.load()) return absl::CancelledError("stop requested");
  record.evaluate_sampled = static_cast<int64_t>(instructions.size());
  if (instructions.empty()) {
    record.evaluate_seconds = SecondsSince(start);
    return absl::OkStatus();
  }
  std::vector<strategy::EvaluateResult> results;
  std::vector<strategy::Failure> failures;
  auto fail = [&](const std::string& cid, absl::Status why) {
    log::Warn("[ROUND {}] evaluate failure from virtual client {}: {}", round, cid, why);
    record.failures.push_back({"evaluate", cid, why.ToString()});
    failures.push_back({cid, std::move(why)});
  };
  const std::function<absl::StatusOr<common::EvaluateRes>(size_t)> task = [&](size_t i) {
    ++evaluate_calls;
    const strategy::EvaluateInstruction& ins = instructions[i];
    return WithClient<common::EvaluateRes>(IndexOf(ins.client),
                                           [&](client::Client& c) { return c.Evaluate(ins.ins); });
  };
  const std::function<void(size_t, absl::StatusOr<common::EvaluateRes>)> consume =
      [&](size_t i, absl::StatusOr<common::EvaluateRes> res) {
        const std::string& cid = instructions[i].client->cid();
        if (!res.ok()) return fail(cid, res.status());
        if (absl::Status valid = server::ValidateEvaluateRes(*res); !valid.ok()) {
          return fail(cid, valid);
        }
        results.push_back(strategy::EvaluateResult{instructions[i].client, *std::move(res)});
      };
  if (!RunOrdered(*pool, instructions.size(), Window(), task, consume, stop)) {
    return absl::CancelledError("stop requested");
  }
  record.evaluate_results = static_cast<int64_t>(results.size());
  record.evaluate_failures = static_cast<int64_t>(failures.size());
  absl::StatusOr<strategy::EvaluateAggregate> aggregate =
      strategy->AggregateEvaluate(round, results, failures);
  if (!aggregate.ok()) {
    log::Error("[ROUND {}] evaluation aggregation failed: {}", round, aggregate.status());
    record.failures.push_back({"aggregate_evaluate", "", aggregate.status().ToString()});
  } else {
    record.loss_distributed = aggregate->loss;
    record.evaluate_metrics = std::move(aggregate->metrics);
  }
  record.evaluate_seconds = SecondsSince(start);
  return absl::OkStatus();
}

absl::StatusOr<SimulationResult> Simulation::Run() {
  Impl& s = *impl_;
  PETAL_RETURN_IF_ERROR(ValidateSimulationOptions(s.options));
  if (s.strategy == nullptr) return absl::InvalidArgumentError("the simulation needs a strategy");
  if (!s.factory) return absl::InvalidArgumentError("the simulation needs a client factory");
  if (s.manager != nullptr) return absl::FailedPreconditionError("Run() was already called");
  const auto start = Clock::now();
  // Every virtual client is "connected" from the start: sampling never waits.
  s.manager = std::make_unique<strategy::SimpleClientManager>(s.options.seed, absl::ZeroDuration());
  for (int32_t i = 0; i < s.options.num_clients; ++i) {
    auto proxy = std::make_shared<VirtualClient>(i);
    s.manager->Register(proxy);
    s.proxies.push_back(std::move(proxy));
  }
  if (s.stop.load()) s.manager->Shutdown();
  s.pool = std::make_unique<WorkerPool>(s.options.threads);

  SimulationResult result;
  PETAL_ASSIGN_OR_RETURN(common::NDArrays initial, s.InitialParameters());
  s.global = common::Share(std::move(initial));
  {
    server::RoundRecord zero;
    bool any = false;
    PETAL_RETURN_IF_ERROR(s.Centralized(0, zero, &any));
    if (any) s.history.Add(std::move(zero));
  }
  std::vector<double> round_seconds;
  for (int64_t round = 1; round <= s.options.num_rounds; ++round) {
    if (s.stop.load()) break;
    const auto round_start = Clock::now();
    server::RoundRecord record;
    record.round = round;
    const common::SharedNDArrays before = s.global;
    absl::Status status = s.FitRound(round, record);
    if (status.ok()) {
      bool any = false;
      status = s.Centralized(round, record, &any);
    }
    const bool evaluate = round == s.options.num_rounds ||
                          (s.options.evaluate_every > 0 && round % s.options.evaluate_every == 0);
    if (status.ok() && evaluate) status = s.EvaluateRound(round, record);
    if (absl::IsCancelled(status) && s.stop.load()) {
      s.global = before;  // the outputs describe the last completed round
      log::Warn("stop requested: round {} abandoned", round);
      break;
    }
    PETAL_RETURN_IF_ERROR(status);
    round_seconds.push_back(SecondsSince(round_start));
    result.last_round = round;
    if (s.options.on_round) s.options.on_round(record);
    s.history.Add(std::move(record));
  }
  s.pool.reset();  // joins the workers
  result.stopped = s.stop.load() && result.last_round < s.options.num_rounds;
  result.history = s.history;
  result.parameters = s.global;
  result.seconds = SecondsSince(start);
  result.fit_calls = s.fit_calls.load();
  result.evaluate_calls = s.evaluate_calls.load();
  result.max_live_clients = s.max_live;
  result.peak_rss_mib = PeakRssMiB();
  if (!s.options.output_dir.empty()) {
    PETAL_RETURN_IF_ERROR(WriteHistory(s.options.output_dir, s.history, result, s.strategy->name(),
                                       s.options, round_seconds));
  }
  return result;
}

}  // namespace petal::sim
