// File: fake_flower_server.h
//
// An in-process FlowerService for unit tests of the grpc-bidi transport. Each
// Join stream runs the test's handler on a gRPC thread; the handler drives the
// conversation (Send / Receive) and returns the status that ends the stream.
// Real protocol conformance is tested against Flower itself
// (tests/interop/client_*.py); this fake exists to script edge cases.
//
//   FakeFlowerServer server([](FakeSession& s) {
//     s.Send(GetParametersMessage());
//     std::optional<ClientMessage> reply = s.Receive();
//     ...
//     return grpc::Status::OK;
//   });
//   options.server_address = server.address();
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "flwr/proto/transport.grpc.pb.h"

namespace petal::client::testing {

class FakeSession {
 public:
  FakeSession(int index, grpc::ServerContext* context,
              grpc::ServerReaderWriter<flwr::proto::ServerMessage, flwr::proto::ClientMessage>* s)
      : index_(index), context_(context), stream_(s) {}

  // 0 for the first Join stream the server saw, 1 for the next, ...
  int index() const { return index_; }
  bool Send(const flwr::proto::ServerMessage& message) { return stream_->Write(message); }
  // Blocks until the client sends a message (or ends/cancels the stream: nullopt).
  std::optional<flwr::proto::ClientMessage> Receive();
  grpc::ServerContext& context() { return *context_; }

 private:
  int index_;
  grpc::ServerContext* context_;
  grpc::ServerReaderWriter<flwr::proto::ServerMessage, flwr::proto::ClientMessage>* stream_;
};

class FakeFlowerServer {
 public:
  using Handler = std::function<grpc::Status(FakeSession&)>;

  // Listens on 127.0.0.1:`port` (0: any free port).
  explicit FakeFlowerServer(Handler handler, int port = 0);
  ~FakeFlowerServer();
  FakeFlowerServer(const FakeFlowerServer&) = delete;
  FakeFlowerServer& operator=(const FakeFlowerServer&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // Join streams started so far.
  int sessions() const;
  // Waits until at least `n` streams have started; false on timeout.
  bool WaitForSessions(int n, absl::Duration timeout) const;
  // Cancels every open stream and stops listening.
  void Shutdown();

 private:
  class Service final : public flwr::proto::FlowerService::Service {
   public:
    explicit Service(FakeFlowerServer& owner) : owner_(owner) {}
    grpc::Status Join(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<flwr::proto::ServerMessage,
                                               flwr::proto::ClientMessage>* stream) override;

   private:
    FakeFlowerServer& owner_;
  };

  Handler handler_;
  Service service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  int sessions_ ABSL_GUARDED_BY(mu_) = 0;
};

// Returns a TCP port on 127.0.0.1 that was free a moment ago (bound and
// released), for tests that start a server later on a known address.
int PickUnusedPort();

}  // namespace petal::client::testing
