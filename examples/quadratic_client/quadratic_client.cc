// quadratic_client: a complete Flower client written against the installed
// Petal client SDK (find_package(Petal) + petal::client).
//
// Each client owns a target value t and minimizes f(w) = 1/2 * ||w - t||^2
// over every element of the model it receives. fit runs `local_epochs`
// gradient steps of size `lr` (config keys sent by the server; FedProx's
// `proximal_mu` adds mu/2 * ||w - w_received||^2):
//   w <- w - lr * ((w - t) + mu * (w - w_received))
// computed in float64 and stored in the model's dtype, so a Python test can
// predict every reply exactly. evaluate reports loss = f(w). Malformed
// instructions (wrong tensor count, shape or dtype, NaN/Inf weights, config
// values of the wrong type) are reported as errors, which the SDK answers as
// failures without dropping the connection.
//
//   quadratic_client --server 127.0.0.1:8080 --target 3 --num-examples 20 --shapes "4,3;5"
//
// Exit status: 0 after the server's goodbye, 1 for bad flags, 2 when the server
// stayed unreachable, 3 for another fatal error, 130 when stopped by a signal.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/start_client.h"
#include "common/cli.h"
#include "common/logging.h"
#include "common/messages.h"
#include "common/ndarray.h"

namespace {

using petal::common::ConfigMap;
using petal::common::DType;
using petal::common::NDArray;
using petal::common::NDArrays;
using petal::common::Shape;

struct ModelSpec {
  std::vector<Shape> shapes;
  DType dtype = DType::kFloat32;
};

class QuadraticClient final : public petal::client::Client {
 public:
  QuadraticClient(ModelSpec spec, double target, int64_t num_examples)
      : spec_(std::move(spec)), target_(target), num_examples_(num_examples) {}

  absl::StatusOr<petal::client::GetPropertiesRes> GetProperties(
      const petal::client::GetPropertiesIns&) override {
    ConfigMap props{{"target", target_},
                    {"num_examples", num_examples_},
                    {"num_arrays", static_cast<int64_t>(spec_.shapes.size())},
                    {"sdk", std::string("petal")}};
    return petal::client::GetPropertiesRes{petal::common::SuccessStatus(), std::move(props)};
  }

  absl::StatusOr<petal::client::GetParametersRes> GetParameters(
      const petal::client::GetParametersIns&) override {
    NDArrays zeros;
    for (const Shape& shape : spec_.shapes) {
      absl::StatusOr<NDArray> a = NDArray::Zeros(spec_.dtype, shape);
      if (!a.ok()) return a.status();
      zeros.push_back(*std::move(a));
    }
    return petal::client::GetParametersRes{petal::common::SuccessStatus(), std::move(zeros)};
  }

  absl::StatusOr<petal::client::FitRes> Fit(const petal::client::FitIns& ins) override {
    if (absl::Status s = CheckModel(*ins.parameters); !s.ok()) return s;
    absl::StatusOr<int64_t> epochs = ins.config.GetIntOr("local_epochs", 1);
    if (!epochs.ok()) return epochs.status();
    absl::StatusOr<double> lr = ins.config.GetDoubleOr("lr", 0.1);
    if (!lr.ok()) return lr.status();
    absl::StatusOr<double> mu = ins.config.GetDoubleOr("proximal_mu", 0.0);
    if (!mu.ok()) return mu.status();
    if (*epochs < 0 || *epochs > 1'000'000) {
      return absl::InvalidArgumentError(
          fmt::format("config 'local_epochs' must be in [0, 1000000] (got {})", *epochs));
    }
    if (!std::isfinite(*lr) || !std::isfinite(*mu) || *mu < 0) {
      return absl::InvalidArgumentError(fmt::format(
          "config 'lr' must be finite and 'proximal_mu' finite and >= 0 (got {}, {})", *lr, *mu));
    }

    NDArrays updated;
    double loss = 0.0;
    for (const NDArray& received : *ins.parameters) {
      std::vector<double> w = ToDoubles(received);
      const std::vector<double> w_global = w;
      for (int64_t step = 0; step < *epochs; ++step) {
        for (size_t i = 0; i < w.size(); ++i) {
          w[i] = w[i] - *lr * ((w[i] - target_) + *mu * (w[i] - w_global[i]));
        }
      }
      absl::StatusOr<NDArray> out = FromDoubles(received.shape(), w);
      if (!out.ok()) return out.status();
      loss += HalfSquaredDistance(*out);
      updated.push_back(*std::move(out));
    }
    ConfigMap metrics{{"loss", loss},
                      {"proximal_mu", *mu},
                      {"lr", *lr},
                      {"local_epochs", *epochs},
                      {"target", target_}};
    return petal::client::FitRes{petal::common::SuccessStatus(), std::move(updated), num_examples_,
                                 std::move(metrics)};
  }

  absl::StatusOr<petal::client::EvaluateRes> Evaluate(
      const petal::client::EvaluateIns& ins) override {
    if (absl::Status s = CheckModel(*ins.parameters); !s.ok()) return s;
    double loss = 0.0;
    for (const NDArray& a : *ins.parameters) loss += HalfSquaredDistance(a);
    return petal::client::EvaluateRes{petal::common::SuccessStatus(), static_cast<float>(loss),
                                      num_examples_, ConfigMap{{"target", target_}}};
  }

 private:
  // The model must have exactly our layout, in our dtype, with finite values.
  absl::Status CheckModel(const NDArrays& arrays) const {
    if (arrays.size() != spec_.shapes.size()) {
      return absl::InvalidArgumentError(
          fmt::format("expected {} arrays, got {}", spec_.shapes.size(), arrays.size()));
    }
    for (size_t i = 0; i < arrays.size(); ++i) {
      const NDArray& a = arrays[i];
      if (a.dtype() != spec_.dtype) {
        return absl::InvalidArgumentError(fmt::format("array {}: dtype {}, expected {}", i,
                                                      petal::common::DTypeName(a.dtype()),
                                                      petal::common::DTypeName(spec_.dtype)));
      }
      if (a.shape() != spec_.shapes[i]) {
        return absl::InvalidArgumentError(fmt::format(
            "array {}: shape {}, expected {}", i, petal::common::ShapeToString(a.shape()),
            petal::common::ShapeToString(spec_.shapes[i])));
      }
      const std::vector<double> v = ToDoubles(a);
      for (size_t j = 0; j < v.size(); ++j) {
        if (!std::isfinite(v[j])) {
          return absl::InvalidArgumentError(
              fmt::format("array {}: element {} is not finite ({})", i, j, v[j]));
        }
      }
    }
    return absl::OkStatus();
  }

  std::vector<double> ToDoubles(const NDArray& a) const {
    std::vector<double> out;
    out.reserve(static_cast<size_t>(a.size()));
    if (a.dtype() == DType::kFloat64) {
      for (double x : a.values<double>()) out.push_back(x);
    } else {
      for (float x : a.values<float>()) out.push_back(x);
    }
    return out;
  }

  absl::StatusOr<NDArray> FromDoubles(const Shape& shape, const std::vector<double>& v) const {
    if (spec_.dtype == DType::kFloat64) return NDArray::FromVector<double>(shape, v);
    std::vector<float> f(v.begin(), v.end());
    return NDArray::FromVector<float>(shape, f);
  }

  double HalfSquaredDistance(const NDArray& a) const {
    double sum = 0.0;
    for (double x : ToDoubles(a)) sum += (x - target_) * (x - target_);
    return 0.5 * sum;
  }

  ModelSpec spec_;
  double target_;
  int64_t num_examples_;
};

// "4,3;5" -> {(4, 3), (5,)}; "" element -> 0-d array.
absl::StatusOr<std::vector<Shape>> ParseShapes(const std::string& text) {
  std::vector<Shape> shapes;
  for (absl::string_view part : absl::StrSplit(text, ';')) {
    Shape shape;
    if (!part.empty()) {
      for (absl::string_view dim : absl::StrSplit(part, ',')) {
        int64_t d = 0;
        if (!absl::SimpleAtoi(dim, &d) || d < 0) {
          return absl::InvalidArgumentError(
              fmt::format("--shapes: bad dimension '{}' in '{}'", std::string(dim), text));
        }
        shape.push_back(d);
      }
    }
    shapes.push_back(std::move(shape));
  }
  return shapes;
}

absl::StatusOr<absl::Duration> ParseDurationFlag(const std::string& name, const std::string& v) {
  absl::Duration d;
  if (!absl::ParseDuration(v, &d)) {
    return absl::InvalidArgumentError(
        fmt::format("--{}: '{}' is not a duration (e.g. 500ms, 2s, 1m, inf)", name, v));
  }
  return d;
}

absl::StatusOr<int64_t> ParseIntFlag(const std::string& name, const std::string& v) {
  int64_t x = 0;
  if (!absl::SimpleAtoi(v, &x)) {
    return absl::InvalidArgumentError(fmt::format("--{}: '{}' is not an integer", name, v));
  }
  return x;
}

absl::StatusOr<double> ParseDoubleFlag(const std::string& name, const std::string& v) {
  double x = 0;
  if (!absl::SimpleAtod(v, &x) || !std::isfinite(x)) {
    return absl::InvalidArgumentError(fmt::format("--{}: '{}' is not a finite number", name, v));
  }
  return x;
}

struct Flags {
  petal::client::ConnectionOptions connection;
  ModelSpec model;
  double target = 0.0;
  int64_t num_examples = 10;
  std::string stats_json;
};

absl::StatusOr<Flags> ReadFlags(const petal::common::CommandLine& cli) {
  Flags f;
  petal::client::ConnectionOptions& c = f.connection;
  c.server_address = cli.Get("server");
  c.name = cli.Get("name");
  c.root_certificates = cli.Get("root-certificates");
  if (cli.Has("insecure")) c.insecure = true;
  absl::StatusOr<petal::client::TransportKind> kind =
      petal::client::ParseTransportKind(cli.Get("transport"));
  if (!kind.ok()) return kind.status();
  c.transport = *kind;

  absl::StatusOr<int64_t> i = ParseIntFlag("max-message-length", cli.Get("max-message-length"));
  if (!i.ok()) return i.status();
  c.max_message_length = *i;
  if (i = ParseIntFlag("max-attempts", cli.Get("max-attempts")); !i.ok()) return i.status();
  c.retry.max_attempts = *i;
  if (i = ParseIntFlag("num-examples", cli.Get("num-examples")); !i.ok()) return i.status();
  f.num_examples = *i;

  struct DurationFlag {
    const char* name;
    absl::Duration* out;
  };
  for (const DurationFlag& d : {DurationFlag{"max-elapsed", &c.retry.max_elapsed},
                                DurationFlag{"initial-backoff", &c.retry.initial_backoff},
                                DurationFlag{"max-backoff", &c.retry.max_backoff},
                                DurationFlag{"connect-timeout", &c.connect_timeout}}) {
    absl::StatusOr<absl::Duration> v = ParseDurationFlag(d.name, cli.Get(d.name));
    if (!v.ok()) return v.status();
    *d.out = *v;
  }
  absl::StatusOr<double> x = ParseDoubleFlag("target", cli.Get("target"));
  if (!x.ok()) return x.status();
  f.target = *x;
  if (x = ParseDoubleFlag("jitter", cli.Get("jitter")); !x.ok()) return x.status();
  c.retry.jitter = *x;

  absl::StatusOr<std::vector<Shape>> shapes = ParseShapes(cli.Get("shapes"));
  if (!shapes.ok()) return shapes.status();
  f.model.shapes = *std::move(shapes);
  const std::string dtype = cli.Get("dtype");
  if (dtype == "float32") {
    f.model.dtype = DType::kFloat32;
  } else if (dtype == "float64") {
    f.model.dtype = DType::kFloat64;
  } else {
    return absl::InvalidArgumentError(fmt::format("--dtype: '{}' (use float32 or float64)", dtype));
  }
  if (f.num_examples < 0) return absl::InvalidArgumentError("--num-examples must be >= 0");
  f.stats_json = cli.Get("stats-json");
  if (absl::Status s = c.Validate(); !s.ok()) return s;
  return f;
}

// Peak resident set size of this process in KiB (Linux VmHWM), -1 if unknown.
// getrusage's ru_maxrss is not used: Linux carries the pre-exec maximum of the
// spawning process into it.
int64_t PeakRssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      int64_t kib = -1;
      if (std::sscanf(line.c_str(), "VmHWM: %ld kB", &kib) == 1) return kib;
    }
  }
  return -1;
}

void WriteStats(const std::string& path, const petal::client::TransportStats& s,
                const absl::Status& status, absl::Time started) {
  const double first = s.first_connected.has_value()
                           ? absl::ToDoubleSeconds(*s.first_connected - absl::UnixEpoch())
                           : -1.0;
  std::ofstream out(path);
  out << fmt::format(
      "{{\"status\": \"{}\", \"connect_attempts\": {}, \"sessions\": {}, \"instructions\": {}, "
      "\"failed_instructions\": {}, \"bytes_received\": {}, \"bytes_sent\": {}, "
      "\"started_unix\": {:.6f}, \"first_connected_unix\": {:.6f}, \"peak_rss_kib\": {}}}\n",
      absl::StatusCodeToString(status.code()), s.connect_attempts, s.sessions, s.instructions,
      s.failed_instructions, s.bytes_received, s.bytes_sent,
      absl::ToDoubleSeconds(started - absl::UnixEpoch()), first, PeakRssKib());
}

}  // namespace

int main(int argc, char** argv) {
  const absl::Time started = absl::Now();
  // SIGINT/SIGTERM stop the client through a dedicated thread (a signal
  // handler must not take locks). Block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);  // "main is done"
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  petal::common::CommandLine cli(
      "quadratic_client", "A Flower client (Petal SDK) that minimizes 1/2 ||w - target||^2.");
  cli.AddFlag("server", "HOST:PORT", "Flower server address", "127.0.0.1:8080");
  cli.AddFlag("transport", "KIND", "grpc-bidi (start_server) or grpc-rere (SuperLink)",
              "grpc-bidi");
  cli.AddFlag("target", "X", "this client's optimum", "1.0");
  cli.AddFlag("num-examples", "N", "num_examples reported to the server", "10");
  cli.AddFlag("shapes", "S", "model layout for get_parameters, e.g. \"4,3;5\"", "4");
  cli.AddFlag("dtype", "T", "float32 or float64", "float32");
  cli.AddFlag("name", "NAME", "prefix of this client's log lines", "quadratic-client");
  cli.AddFlag("root-certificates", "PEM", "CA certificates (file) for TLS", "");
  cli.AddSwitch("insecure", "plaintext even without root certificates (the default)");
  cli.AddFlag("max-message-length", "BYTES", "largest message sent or received",
              std::to_string(petal::client::kFlowerMaxMessageLength));
  cli.AddFlag("max-attempts", "N", "give up after N failed connection attempts (0: no limit)", "0");
  cli.AddFlag("max-elapsed", "DURATION", "give up after retrying this long (inf: no limit)", "10m");
  cli.AddFlag("initial-backoff", "DURATION", "first retry delay", "1s");
  cli.AddFlag("max-backoff", "DURATION", "largest retry delay", "20s");
  cli.AddFlag("jitter", "F", "fraction of each delay randomized away, in [0, 1]", "0.5");
  cli.AddFlag("connect-timeout", "DURATION", "time allowed for one connection attempt", "20s");
  cli.AddFlag("stats-json", "PATH", "write transport counters here at exit", "");

  if (absl::Status s = cli.Parse(argc, argv); !s.ok()) {
    std::cerr << "quadratic_client: " << s.message() << "\n";
    return 1;
  }
  if (cli.help_requested()) {
    std::cout << cli.Usage();
    return 0;
  }
  if (!cli.overrides().empty() || !cli.positional().empty()) {
    std::cerr << "quadratic_client: unexpected arguments (this example has no config file; see "
                 "--help)\n";
    return 1;
  }
  absl::StatusOr<Flags> flags = ReadFlags(cli);
  if (!flags.ok()) {
    std::cerr << "quadratic_client: " << flags.status().message() << "\n";
    return 1;
  }

  absl::StatusOr<petal::client::TransportPtr> transport =
      petal::client::MakeTransport(flags->connection);
  if (!transport.ok()) {
    std::cerr << "quadratic_client: " << transport.status().ToString() << "\n";
    return 1;
  }
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig != SIGUSR1) {
      petal::common::log::Info("signal {} received: stopping", sig);
      (*transport)->Stop();
    }
  });

  QuadraticClient client(flags->model, flags->target, flags->num_examples);
  const absl::Status status = (*transport)->Run(client);
  pthread_kill(signal_waiter.native_handle(), SIGUSR1);
  signal_waiter.join();

  if (!flags->stats_json.empty()) {
    WriteStats(flags->stats_json, (*transport)->stats(), status, started);
  }
  if (status.ok()) return 0;
  std::cerr << "quadratic_client: " << status.ToString() << "\n";
  if (absl::IsCancelled(status)) return 130;
  if (absl::IsUnavailable(status)) return 2;
  return 3;
}
