// A scripted in-process ClientConnection for round-loop tests (no gRPC stream):
// each instruction is answered by a handler on its own thread, so replies
// arrive concurrently like real ones.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "flwr/proto/transport.pb.h"
#include "server/client_connection.h"
#include "server/grpc_service.h"

namespace petal::server::testing {

class FakeConnection final : public ClientConnection {
 public:
  // Returns the reply, or nullopt to never answer.
  using Handler =
      std::function<std::optional<flwr::proto::ClientMessage>(const flwr::proto::ServerMessage&)>;

  FakeConnection(std::string cid, Handler handler)
      : ClientConnection(std::move(cid)), handler_(std::move(handler)) {}
  ~FakeConnection() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  void Send(grpc::ByteBuffer message, size_t expected_reply_bytes, ReplyCallback done) override {
    flwr::proto::ServerMessage parsed;
    (void)grpc::SerializationTraits<flwr::proto::ServerMessage>::Deserialize(&message, &parsed);
    std::lock_guard<std::mutex> lock(mu_);
    received_.push_back(parsed);
    charged_.push_back(expected_reply_bytes);
    if (!closed_.ok()) {
      threads_.emplace_back([done, s = closed_] { done(s); });
      return;
    }
    pending_ = std::move(done);
    threads_.emplace_back([this, parsed] {
      std::optional<flwr::proto::ClientMessage> reply = handler_(parsed);
      if (!reply) return;
      ReplyCallback cb;
      {
        std::lock_guard<std::mutex> inner(mu_);
        cb = std::move(pending_);
        pending_ = nullptr;
      }
      if (!cb) return;
      Reply bytes;
      bool own = false;
      (void)grpc::SerializationTraits<flwr::proto::ClientMessage>::Serialize(*reply, &bytes.bytes, &own);
      cb(std::move(bytes));
    });
  }

  void Close(absl::Status status) override {
    ReplyCallback cb;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!closed_.ok()) return;
      closed_ = status.ok() ? absl::CancelledError("closed") : status;
      cb = std::move(pending_);
      pending_ = nullptr;
    }
    if (cb) cb(status);
  }

  bool busy() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<bool>(pending_);
  }
  std::string peer() const override { return "fake"; }

  std::vector<flwr::proto::ServerMessage> received() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  // The expected_reply_bytes of each Send, in order.
  std::vector<size_t> charged() const {
    std::lock_guard<std::mutex> lock(mu_);
    return charged_;
  }
  absl::Status closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  Handler handler_;
  mutable std::mutex mu_;
  ReplyCallback pending_;
  absl::Status closed_;
  std::vector<flwr::proto::ServerMessage> received_;
  std::vector<size_t> charged_;
  std::vector<std::thread> threads_;
};

}  // namespace petal::server::testing
