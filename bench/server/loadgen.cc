// petal_server_loadgen: many Flower clients in one process, for petal-server's
// scale tests and figures (Python clients are too heavy for hundreds). Built
// from tests/server/CMakeLists.txt into BUILD/tests/server/.
//
//   petal_server_loadgen [--server 127.0.0.1:8080] [--clients 100] [--channels 1]
//                        [--mode echo|fixed] [--params 10] [--num-examples 1]
//                        [--stats-json out.json]
//
// This command line is stable (bench/server/figures.py and the benchmark suite
// use it): flags may be added, not renamed or removed.
//
// Opens --clients FlowerService.Join streams spread round-robin over --channels
// HTTP/2 connections (one TCP connection each; gRPC's callback API, no thread
// per stream) and answers every instruction at once, in Flower's lock-step:
//   GetParametersIns -> one float32 array of --params ones
//   FitIns           -> echo: the received parameters unchanged (no decoding), or
//                       fixed: one float32 array of --params ones; num_examples
//                       --num-examples
//   EvaluateIns      -> loss 0.5, num_examples --num-examples
//   ReconnectIns     -> DisconnectRes(RECONNECT), then the stream is closed
// Works against any grpc-bidi Flower server (petal-server, flwr start_server).
// Exits when every stream has ended and prints one JSON line on stdout:
//   {"clients", "channels", "seconds", "fit", "evaluate", "get_parameters",
//    "reconnect", "statuses": {"OK after ReconnectIns": n, "<code> <message>": n}}
// Exit status 0 if every stream ended after a ReconnectIns, 1 otherwise, 2 for
// a bad command line.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "common/cli.h"
#include "common/npy.h"
#include "flwr/proto/transport.grpc.pb.h"

namespace {

using flwr::proto::ClientMessage;
using flwr::proto::ServerMessage;

struct Options {
  int64_t num_examples = 1;
  bool echo = true;
  std::string fixed_tensor;  // npy bytes for fixed mode / get_parameters
};

struct Stats {
  std::mutex mu;
  std::condition_variable cv;
  int64_t active = 0;
  int64_t fit = 0;
  int64_t evaluate = 0;
  int64_t get_parameters = 0;
  int64_t reconnect = 0;
  std::map<std::string, int64_t> statuses;
};

class Stream final : public grpc::ClientBidiReactor<ClientMessage, ServerMessage> {
 public:
  Stream(flwr::proto::FlowerService::Stub* stub, const Options& options, Stats& stats)
      : options_(options), stats_(stats) {
    stub->async()->Join(&context_, this);
    StartRead(&in_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      StartWritesDone();  // the server ended the stream; finish our side
      return;
    }
    out_.Clear();
    bool last = false;
    switch (in_.msg_case()) {
      case ServerMessage::kFitIns: {
        auto* res = out_.mutable_fit_res();
        res->mutable_status()->set_message("Success");
        if (options_.echo) {
          res->mutable_parameters()->Swap(in_.mutable_fit_ins()->mutable_parameters());
        } else {
          res->mutable_parameters()->set_tensor_type("numpy.ndarray");
          res->mutable_parameters()->add_tensors(options_.fixed_tensor);
        }
        res->set_num_examples(options_.num_examples);
        Count(&Stats::fit);
        break;
      }
      case ServerMessage::kEvaluateIns: {
        auto* res = out_.mutable_evaluate_res();
        res->mutable_status()->set_message("Success");
        res->set_loss(0.5f);
        res->set_num_examples(options_.num_examples);
        Count(&Stats::evaluate);
        break;
      }
      case ServerMessage::kGetParametersIns: {
        auto* res = out_.mutable_get_parameters_res();
        res->mutable_status()->set_message("Success");
        res->mutable_parameters()->set_tensor_type("numpy.ndarray");
        res->mutable_parameters()->add_tensors(options_.fixed_tensor);
        Count(&Stats::get_parameters);
        break;
      }
      case ServerMessage::kReconnectIns:
        out_.mutable_disconnect_res()->set_reason(flwr::proto::Reason::RECONNECT);
        Count(&Stats::reconnect);
        last = true;
        reconnected_ = true;
        break;
      default:
        out_.mutable_disconnect_res()->set_reason(flwr::proto::Reason::UNKNOWN);
        last = true;
        break;
    }
    if (last) {
      StartWriteLast(&out_, grpc::WriteOptions());
    } else {
      StartWrite(&out_);
    }
  }

  void OnWriteDone(bool ok) override {
    if (ok && !reconnected_) StartRead(&in_);
  }

  void OnDone(const grpc::Status& status) override {
    {
      std::lock_guard<std::mutex> lock(stats_.mu);
      const std::string key = reconnected_ ? "OK after ReconnectIns"
                                           : fmt::format("{} {}", static_cast<int>(status.error_code()),
                                                         status.error_message());
      ++stats_.statuses[key];
      --stats_.active;
    }
    stats_.cv.notify_all();
    delete this;  // gRPC reactor lifetime
  }

 private:
  void Count(int64_t Stats::*field) {
    std::lock_guard<std::mutex> lock(stats_.mu);
    ++(stats_.*field);
  }

  const Options& options_;
  Stats& stats_;
  grpc::ClientContext context_;
  ServerMessage in_;
  ClientMessage out_;
  bool reconnected_ = false;
};

int64_t ParseInt(const std::string& text, const std::string& flag) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < 0) {
    std::cerr << "petal_server_loadgen: --" << flag << " needs a non-negative integer\n";
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  petal::common::CommandLine cli("petal_server_loadgen",
                                 "Many lock-step Flower clients (Join streams) in one process.");
  cli.AddFlag("server", "HOST:PORT", "petal-server (or any Flower grpc-bidi server)", "127.0.0.1:8080");
  cli.AddFlag("clients", "N", "streams to open", "100");
  cli.AddFlag("channels", "C", "HTTP/2 connections to spread them over", "1");
  cli.AddFlag("mode", "echo|fixed", "fit reply: the received parameters, or --params ones", "echo");
  cli.AddFlag("params", "P", "float32 elements of the fixed array", "10");
  cli.AddFlag("num-examples", "N", "num_examples in every reply", "1");
  cli.AddFlag("stats-json", "PATH", "also write the summary here", "");
  if (absl::Status s = cli.Parse(argc, argv); !s.ok()) {
    std::cerr << s.message() << "\n" << cli.Usage();
    return 2;
  }
  if (cli.help_requested()) {
    std::cout << cli.Usage();
    return 0;
  }
  const int64_t clients = ParseInt(cli.Get("clients"), "clients");
  const int64_t channels = std::max<int64_t>(1, ParseInt(cli.Get("channels"), "channels"));
  Options options;
  options.num_examples = ParseInt(cli.Get("num-examples"), "num-examples");
  options.echo = cli.Get("mode") == "echo";
  const int64_t params = ParseInt(cli.Get("params"), "params");
  std::vector<float> ones(static_cast<size_t>(params), 1.0f);
  options.fixed_tensor = petal::common::EncodeNpy(
      petal::common::NDArray::FromVector<float>({params}, ones).value());

  std::vector<std::shared_ptr<grpc::Channel>> chans;
  std::vector<std::unique_ptr<flwr::proto::FlowerService::Stub>> stubs;
  for (int64_t c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    // One TCP connection per channel: no subchannel sharing between them.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("petal.loadgen_channel", static_cast<int>(c));
    chans.push_back(grpc::CreateCustomChannel(cli.Get("server"), grpc::InsecureChannelCredentials(), args));
    stubs.push_back(flwr::proto::FlowerService::NewStub(chans.back()));
  }
  Stats stats;
  const auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(stats.mu);
    stats.active = clients;
  }
  for (int64_t i = 0; i < clients; ++i) {
    new Stream(stubs[static_cast<size_t>(i % channels)].get(), options, stats);  // deletes itself
  }
  std::cerr << fmt::format("petal_server_loadgen: {} streams opened on {} channels\n", clients, channels);
  {
    std::unique_lock<std::mutex> lock(stats.mu);
    stats.cv.wait(lock, [&] { return stats.active == 0; });
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json summary = {{"clients", clients},       {"channels", channels},
                            {"seconds", seconds},       {"fit", stats.fit},
                            {"evaluate", stats.evaluate}, {"get_parameters", stats.get_parameters},
                            {"reconnect", stats.reconnect}, {"statuses", stats.statuses}};
  std::cout << summary.dump() << "\n";
  if (cli.Has("stats-json")) std::ofstream(cli.Get("stats-json")) << summary.dump(1) << "\n";
  return stats.reconnect == clients ? 0 : 1;
}
