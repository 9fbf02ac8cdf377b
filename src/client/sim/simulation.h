// File: simulation.h
//
// In-process federated simulation: N virtual clients on a thread pool, driven
// by the same Strategy (src/strategy) and the same Client interface
// (client/client.h) as petal-server and petal-client, without sockets or
// serialization. The round loop mirrors petal-server's (server/server.h):
// initial parameters (the strategy's, else one sampled client's
// get_parameters), then per round ConfigureFit -> Fit on every sampled client
// -> validation (server/validation.h) -> streaming aggregation -> centralized
// Evaluate -> ConfigureEvaluate -> Evaluate -> AggregateEvaluate, recorded in
// the server's History (the same history.json / history.csv).
//
//   SimulationOptions options;
//   options.num_clients = 943;
//   options.num_rounds = 20;
//   options.threads = 2;
//   Simulation sim(options, std::move(strategy), factory);
//   PETAL_ASSIGN_OR_RETURN(SimulationResult result, sim.Run());
//
// Virtual clients are created on demand by a ClientFactory, used for one
// instruction and destroyed: at most one per worker thread exists at a time,
// and at most `max_parallel` replies are in flight, so memory is
// O(max_parallel x model) whatever N is; whatever must survive between
// rounds (NcfClient's user embeddings) is the factory's business (state
// directories). Results are folded into the aggregate in sampling order
// whatever the thread timing, so a run is a deterministic function of its
// seeds. Run() is called once; RequestStop() is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "common/messages.h"
#include "server/history.h"
#include "strategy/strategy.h"

namespace petal::sim {

// Makes the Client of virtual client `index` (0-based; its cid is the index
// as text). Called from worker threads, concurrently for different indices,
// never twice at once for the same index. An error counts as that client's
// failure for the instruction.
using ClientFactory = std::function<absl::StatusOr<std::unique_ptr<client::Client>>(int32_t index)>;

struct SimulationOptions {
  int32_t num_clients = 2;
  int64_t num_rounds = 1;
  int32_t threads = 1;       // worker threads
  // Instructions in flight at once (running, or done with the reply waiting to
  // be folded in in sampling order); 0 = 2 x threads; must be >= threads. Clients
  // alive at once are at most min(threads, max_parallel) = threads.
  int32_t max_parallel = 0;
  int64_t evaluate_every =
      1;              // federated evaluation every N rounds (and after the last); 0 = last only
  uint64_t seed = 0;  // client sampling (petal-server's run.seed)
  // history.json, history.csv, model.npz (as petal-server writes them) and
  // simulation.json (timings, memory); "" writes nothing.
  std::string output_dir;
  // Called on the Run() thread after each round (progress output).
  std::function<void(const server::RoundRecord&)> on_round;
};
absl::Status ValidateSimulationOptions(const SimulationOptions& options);

struct SimulationResult {
  server::History history;
  common::SharedNDArrays parameters;  // the final global model
  int64_t last_round = 0;
  bool stopped = false;  // RequestStop() ended the run early
  double seconds = 0.0;  // whole run
  int64_t fit_calls = 0;
  int64_t evaluate_calls = 0;
  // Most client slots in use at once. A worker takes a slot before it calls the
  // factory and frees it after the client is destroyed, so the slot's interval
  // contains its client's lifetime: the clients alive at any instant never
  // exceed this, and it never exceeds threads (one slot per busy worker), which
  // is <= max_parallel.
  int32_t max_live_clients = 0;
  double peak_rss_mib = 0.0;     // of this process, at the end (VmHWM; 0 if unknown)
};

class Simulation {
 public:
  Simulation(SimulationOptions options, strategy::StrategyPtr strategy, ClientFactory factory);
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;
  ~Simulation();

  // Runs every round. Errors: invalid options, no initial parameters
  // obtainable (every get_parameters attempt failed), a strategy error, or
  // outputs that cannot be written. Client failures are not errors: they are
  // counted per round, as petal-server counts them.
  absl::StatusOr<SimulationResult> Run();
  // Finishes the instructions in flight, abandons the round and returns the
  // last completed round's model. Thread-safe; idempotent.
  void RequestStop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Peak resident set size of this process in MiB (Linux VmHWM), 0 if unknown.
double PeakRssMiB();

}  // namespace petal::sim
