// petal_fleet_demo_node: a Petal SuperNode with a small deterministic Client,
// used by the Fleet API interop tests (tests/interop/fleet_*.py) and as a
// worked example of the SDK.
//
// The model is a quadratic: two arrays, "w" (float32, shape (dim,)) and "b"
// (float64, shape (2,)). The node's private target is t_j = seed + 0.5 j for
// the concatenated elements j = 0..dim+1, its loss is mean((x - t)^2), and
// Fit runs `local-steps` gradient steps x <- x - lr * 2 (x - t) / D with lr and
// local-steps from the instruction's config (defaults from the flags).
// Evaluate reports that loss. A private counter and vector (stand-ins for the
// NCF app's user embeddings) are kept in --state-dir across restarts.
//
//   petal_fleet_demo_node --superlink 127.0.0.1:8000 --insecure --seed 1
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "client/client.h"
#include "client/fleet/fleet_transport.h"
#include "common/cli.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/npy.h"
#include "common/status_macros.h"

namespace petal {
namespace {

using client::Client;
using common::ConfigMap;
using common::NDArray;
using common::NDArrays;
namespace log = common::log;

struct DemoOptions {
  int dim = 3;
  double seed = 1.0;
  int64_t num_examples = 10;
  double lr = 0.1;
  int64_t local_steps = 1;
  int64_t fail_on_round = -1;
  std::string state_dir;
};

class QuadraticClient final : public Client {
 public:
  explicit QuadraticClient(DemoOptions options) : options_(std::move(options)) {
    for (int j = 0; j < options_.dim + 2; ++j) target_.push_back(options_.seed + 0.5 * j);
  }

  absl::Status LoadState() {
    if (options_.state_dir.empty()) return absl::OkStatus();
    PETAL_RETURN_IF_ERROR(common::CreateDirectories(options_.state_dir));
    absl::StatusOr<std::string> bytes = common::ReadFileToString(StatePath());
    if (absl::IsNotFound(bytes.status())) {
      log::Info("no private state in {} yet: starting fresh", options_.state_dir);
      return absl::OkStatus();
    }
    PETAL_RETURN_IF_ERROR(bytes.status());
    PETAL_ASSIGN_OR_RETURN(NDArray state, common::DecodeNpy(*bytes));
    PETAL_ASSIGN_OR_RETURN(auto values, state.As<double>());
    if (values.size() != 1)
      return absl::DataLossError(fmt::format("{} is not a demo state file", StatePath()));
    fits_ = static_cast<int64_t>(values[0]);
    log::Info("restored private state from {}: {} local fits so far", options_.state_dir, fits_);
    return absl::OkStatus();
  }

  absl::StatusOr<common::GetPropertiesRes> GetProperties(
      const common::GetPropertiesIns& ins) override {
    common::GetPropertiesRes res{common::SuccessStatus(), {}};
    res.properties.Set("model", std::string("quadratic"));
    res.properties.SetInt("dim", options_.dim);
    res.properties.SetInt("fits", fits_);
    return res;
  }

  absl::StatusOr<common::GetParametersRes> GetParameters(const common::GetParametersIns&) override {
    PETAL_ASSIGN_OR_RETURN(NDArrays zeros, Split(std::vector<double>(target_.size(), 0.0)));
    return common::GetParametersRes{common::SuccessStatus(), std::move(zeros)};
  }

  absl::StatusOr<common::FitRes> Fit(const common::FitIns& ins) override {
    PETAL_ASSIGN_OR_RETURN(int64_t round, RoundOf(ins.config));
    // Failure injection, by flag or by the instruction's config ("fail-round"
    // together with "fail-seed" naming this node's seed).
    PETAL_ASSIGN_OR_RETURN(int64_t fail_round,
                           ins.config.GetIntOr("fail-round", options_.fail_on_round));
    PETAL_ASSIGN_OR_RETURN(double fail_seed, ins.config.GetDoubleOr("fail-seed", options_.seed));
    if (fail_round >= 1 && round == fail_round && fail_seed == options_.seed) {
      return absl::InternalError(fmt::format("demo failure injected in round {}", round));
    }
    PETAL_ASSIGN_OR_RETURN(std::vector<double> x, Join(*ins.parameters));
    PETAL_ASSIGN_OR_RETURN(double lr, ins.config.GetDoubleOr("lr", options_.lr));
    PETAL_ASSIGN_OR_RETURN(int64_t steps, ins.config.GetIntOr("local-steps", options_.local_steps));
    const double before = Loss(x);
    const double d = static_cast<double>(x.size());
    for (int64_t s = 0; s < steps; ++s) {
      for (size_t j = 0; j < x.size(); ++j) x[j] -= lr * 2.0 * (x[j] - target_[j]) / d;
    }
    ++fits_;
    PETAL_RETURN_IF_ERROR(SaveState());
    common::FitRes res;
    res.status = common::SuccessStatus();
    PETAL_ASSIGN_OR_RETURN(res.parameters, Split(x));
    res.num_examples = options_.num_examples;
    res.metrics.Set("train_loss", before);
    res.metrics.SetInt("fits", fits_);
    log::Info("fit (round {}): loss {:.6f} -> {:.6f}", round, before, Loss(x));
    return res;
  }

  absl::StatusOr<common::EvaluateRes> Evaluate(const common::EvaluateIns& ins) override {
    PETAL_ASSIGN_OR_RETURN(std::vector<double> x, Join(*ins.parameters));
    common::EvaluateRes res;
    res.status = common::SuccessStatus();
    res.loss = static_cast<float>(Loss(x));
    res.num_examples = options_.num_examples;
    res.metrics.Set("mse", Loss(x));
    return res;
  }

 private:
  static absl::StatusOr<int64_t> RoundOf(const ConfigMap& config) {
    // Current strategies send "server-round"; legacy ones nothing by default.
    return config.GetIntOr("server-round", -1);
  }

  double Loss(const std::vector<double>& x) const {
    double sum = 0;
    for (size_t j = 0; j < x.size(); ++j) sum += (x[j] - target_[j]) * (x[j] - target_[j]);
    return sum / static_cast<double>(x.size());
  }

  absl::StatusOr<std::vector<double>> Join(const NDArrays& arrays) const {
    if (arrays.size() != 2) {
      return absl::InvalidArgumentError(
          fmt::format("expected 2 arrays (w, b), got {}", arrays.size()));
    }
    PETAL_ASSIGN_OR_RETURN(auto w, arrays[0].As<float>());
    PETAL_ASSIGN_OR_RETURN(auto b, arrays[1].As<double>());
    if (static_cast<int>(w.size()) != options_.dim || b.size() != 2) {
      return absl::InvalidArgumentError(fmt::format("expected shapes ({},) and (2,), got {} and {}",
                                                    options_.dim, arrays[0].DebugString(),
                                                    arrays[1].DebugString()));
    }
    std::vector<double> x(w.begin(), w.end());
    x.insert(x.end(), b.begin(), b.end());
    for (double v : x) {
      if (!std::isfinite(v)) return absl::InvalidArgumentError("the model holds NaN or Inf");
    }
    return x;
  }

  absl::StatusOr<NDArrays> Split(const std::vector<double>& x) const {
    std::vector<float> w(x.begin(), x.begin() + options_.dim);
    std::vector<double> b(x.begin() + options_.dim, x.end());
    NDArrays out;
    PETAL_ASSIGN_OR_RETURN(NDArray wa, NDArray::FromVector<float>({options_.dim}, w));
    PETAL_ASSIGN_OR_RETURN(NDArray ba, NDArray::FromVector<double>({2}, b));
    out.push_back(std::move(wa));
    out.push_back(std::move(ba));
    return out;
  }

  std::string StatePath() const { return options_.state_dir + "/demo_state.npy"; }

  absl::Status SaveState() {
    if (options_.state_dir.empty()) return absl::OkStatus();
    PETAL_ASSIGN_OR_RETURN(NDArray state,
                           NDArray::FromVector<double>({1}, {static_cast<double>(fits_)}));
    return common::WriteFileAtomically(StatePath(), common::EncodeNpy(state));
  }

  DemoOptions options_;
  std::vector<double> target_;
  int64_t fits_ = 0;
};

template <typename T>
absl::Status ParseNumber(const common::CommandLine& cli, const char* flag, T* out) {
  std::string text = cli.Get(flag);
  bool ok = false;
  if constexpr (std::is_same_v<T, double>) {
    ok = absl::SimpleAtod(text, out);
  } else if constexpr (std::is_same_v<T, int>) {
    ok = absl::SimpleAtoi(text, out);
  } else {
    ok = absl::SimpleAtoi(text, out);
  }
  if (!ok) return absl::InvalidArgumentError(fmt::format("--{}: '{}' is not a number", flag, text));
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  // Signals are handled by one thread with sigwait; block them everywhere else.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  common::CommandLine cli(
      "petal_fleet_demo_node",
      "A Petal SuperNode with a deterministic quadratic Client (Fleet API demo/test node).");
  cli.AddFlag("superlink", "HOST:PORT", "the SuperLink's Fleet API address", "127.0.0.1:8000");
  cli.AddFlag("api", "http|grpc", "Fleet API binding (http: flwr 1.42 flower-superlink)", "http");
  cli.AddSwitch("insecure", "plaintext, like flower-supernode --insecure");
  cli.AddFlag("root-certificates", "PATH", "PEM CA bundle that signs the SuperLink's certificate",
              "");
  cli.AddFlag("auth-private-key", "PATH",
              "pre-registered EC private key (SuperLink with --enable-supernode-auth)", "");
  cli.AddFlag("name", "NAME", "name in log lines", "demo-node");
  cli.AddFlag("dim", "N", "length of the float32 array w", "3");
  cli.AddFlag("seed", "X", "the node's private target is X + 0.5 j", "1");
  cli.AddFlag("num-examples", "N", "examples reported per fit/evaluate", "10");
  cli.AddFlag("lr", "X", "default learning rate (config key lr overrides)", "0.1");
  cli.AddFlag("local-steps", "N", "default local steps (config key local-steps overrides)", "1");
  cli.AddFlag("fail-on-round", "R", "make Fit fail in server round R (error-reply test)", "-1");
  cli.AddFlag("state-dir", "DIR", "keep private state here across restarts", "");
  cli.AddFlag("heartbeat-interval", "SECONDS",
              "heartbeat interval promised to the SuperLink (10..1800)", "30");
  cli.AddFlag("poll-interval", "SECONDS", "wait between empty PullMessages", "1");
  cli.AddFlag("retry-max-elapsed", "SECONDS",
              "give up after the SuperLink is unreachable this long", "600");
  cli.AddFlag("max-backoff", "SECONDS", "longest wait between reconnection attempts", "20");
  if (absl::Status s = cli.Parse(argc, argv); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 2;
  }
  if (cli.help_requested()) {
    std::cout << cli.Usage();
    return 0;
  }
  DemoOptions demo;
  client::ConnectionOptions options;
  client::fleet::FleetOptions fleet;
  double heartbeat = 30, poll = 1, max_elapsed = 600, max_backoff = 20;
  absl::Status parsed = [&]() -> absl::Status {
    PETAL_RETURN_IF_ERROR(ParseNumber(cli, "dim", &demo.dim));
    PETAL_RETURN_IF_ERROR(ParseNumber(cli, "seed", &demo.seed));
    PETAL_RETURN_IF_ERROR(ParseNumber(cli, "num-examples", &demo.num_examples));
    PETAL_RETURN_IF_ERROR(ParseNumber(cli, "lr", &demo.lr));
    PETAL_RETURN_IF_ERROR(ParseNumber(cli, "local-steps", &demo.local_steps));
    PETAL_RETURN_IF_ERROR(ParseNumber(cli, "fail-on-round", &demo.fail_on_round));
    PETAL_RETURN_IF_ERROR(ParseNumber(cli, "heartbeat-interval", &heartbeat));
    PETAL_RETURN_IF_ERROR(ParseNumber(cli, "poll-interval", &poll));
    PETAL_RETURN_IF_ERROR(ParseNumber(cli, "retry-max-elapsed", &max_elapsed));
    PETAL_RETURN_IF_ERROR(ParseNumber(cli, "max-backoff", &max_backoff));
    if (demo.dim < 1) return absl::InvalidArgumentError("--dim must be >= 1");
    PETAL_ASSIGN_OR_RETURN(fleet.api, client::fleet::ParseFleetApiKind(cli.Get("api")));
    return absl::OkStatus();
  }();
  if (!parsed.ok()) {
    std::cerr << parsed.message() << "\n";
    return 2;
  }
  demo.state_dir = cli.Get("state-dir");
  options.name = cli.Get("name");
  options.server_address = cli.Get("superlink");
  options.transport = client::TransportKind::kGrpcRere;
  options.root_certificates = cli.Get("root-certificates");
  if (cli.Has("insecure")) options.insecure = true;
  options.retry.max_elapsed = absl::Seconds(max_elapsed);
  options.retry.max_backoff = absl::Seconds(max_backoff);
  fleet.heartbeat_interval = absl::Seconds(heartbeat);
  fleet.poll_interval = absl::Seconds(poll);
  fleet.auth_private_key = cli.Get("auth-private-key");
  log::SetProcessName(options.name);
  options.name = "fleet";

  QuadraticClient quadratic(demo);
  if (absl::Status s = quadratic.LoadState(); !s.ok()) {
    log::Error("{}", s);
    return 1;
  }
  absl::StatusOr<client::TransportPtr> transport = client::MakeFleetTransport(options, fleet);
  if (!transport.ok()) {
    log::Error("{}", transport.status());
    return 2;
  }
  std::thread signal_thread([&] {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0) {
      if (sig == SIGUSR1) return;  // Run() returned on its own
      log::Info("signal {} received: leaving the SuperLink", sig);
      (*transport)->Stop();
      return;
    }
  });
  absl::Status status = (*transport)->Run(quadratic);
  pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();
  client::TransportStats stats = (*transport)->stats();
  log::Info("done: {} sessions, {} instructions ({} failed), {} bytes in, {} bytes out",
            stats.sessions, stats.instructions, stats.failed_instructions, stats.bytes_received,
            stats.bytes_sent);
  if (status.ok() || absl::IsCancelled(status)) return 0;
  log::Error("{}", status);
  return 1;
}

}  // namespace
}  // namespace petal

int main(int argc, char** argv) { return petal::Main(argc, argv); }
