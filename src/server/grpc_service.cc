#include "server/grpc_service.h"

#include <utility>

#include <fmt/format.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include "common/logging.h"

namespace petal::server {
namespace {

namespace log = common::log;

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace

class JoinReactor;

// The ClientProxy half of a stream. Shared (manager, rounds); the reactor half
// is owned by gRPC and detaches itself when the stream is done.
class GrpcClientConnection final : public ClientConnection {
 public:
  GrpcClientConnection(std::string cid, std::string peer)
      : ClientConnection(std::move(cid)), peer_(std::move(peer)) {}

  void Send(grpc::ByteBuffer message, ReplyCallback done) override;
  void Close(absl::Status status) override;
  bool busy() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<bool>(pending_);
  }
  std::string peer() const override { return peer_; }

  // Called by the reactor.
  void Attach(JoinReactor* reactor) {
    std::lock_guard<std::mutex> lock(mu_);
    reactor_ = reactor;
  }
  // The stream is over: fail what is pending and forget the reactor.
  void Detach(const absl::Status& why);
  // A reply arrived; false if nothing was pending (protocol violation).
  bool Deliver(grpc::ByteBuffer reply);
  // The reactor finished writing; on failure the pending instruction fails.
  void WriteFailed();

 private:
  const std::string peer_;
  mutable std::mutex mu_;
  JoinReactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;  // null once the stream is done
  ReplyCallback pending_ ABSL_GUARDED_BY(mu_);
  absl::Status closed_ ABSL_GUARDED_BY(mu_);  // non-OK once Close() was called
};

// One Join stream. Lifetime: created by Join(), deleted in OnDone().
class JoinReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  JoinReactor(FlowerService& service, grpc::CallbackServerContext* context)
      : service_(service) {
    service_.open_streams_.fetch_add(1);
    service_.total_streams_.fetch_add(1);
    const int64_t max = service_.options_.max_clients;
    if (max > 0 && service_.manager_.NumAvailable() >= max) {
      log::Warn("refusing a client from {}: max_clients ({}) reached", context->peer(), max);
      FinishOnce(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              fmt::format("server is full (max_clients={})", max)));
      return;
    }
    connection_ = std::make_shared<GrpcClientConnection>(service_.NewClientId(), context->peer());
    connection_->Attach(this);
    StartRead(&incoming_);
    if (!service_.manager_.Register(connection_)) {
      unregistered_ = true;  // the id belongs to someone else
      FinishOnce(grpc::Status(grpc::StatusCode::INTERNAL, "duplicate client id"));
      return;
    }
    log::Info("client {} connected from {} ({} connected)", connection_->cid(), connection_->peer(),
              service_.manager_.NumAvailable());
  }

  // Thread-safe: called by GrpcClientConnection under its own lock.
  void Write(grpc::ByteBuffer message) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    outgoing_ = std::move(message);
    StartWrite(&outgoing_);
  }

  void FinishOnce(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Client half-closed, disconnected, was cancelled or sent an oversized message.
      Unregister();
      connection_->Detach(absl::UnavailableError(
          "the client's stream ended (disconnect, cancellation or a message over the size limit)"));
      FinishOnce(grpc::Status::OK);
      return;
    }
    grpc::ByteBuffer reply = std::move(incoming_);
    incoming_.Clear();
    if (!connection_->Deliver(std::move(reply))) {
      log::Warn("client {} sent a message with no instruction pending; closing its stream",
                connection_->cid());
      Unregister();
      connection_->Detach(absl::FailedPreconditionError("unexpected message"));
      FinishOnce(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                              "ClientMessage received while no instruction was pending"));
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_) StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      connection_->WriteFailed();
      Unregister();
      FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
    }
  }

  void OnCancel() override {
    if (connection_) connection_->Detach(absl::UnavailableError("the stream was cancelled"));
  }

  void OnDone() override {
    Unregister();
    if (connection_) {
      connection_->Detach(absl::UnavailableError("the client's stream is closed"));
      log::Info("client {} disconnected ({} connected)", connection_->cid(),
                service_.manager_.NumAvailable());
    }
    service_.open_streams_.fetch_sub(1);
    delete this;  // the lifetime pattern gRPC's callback API prescribes
  }

 private:
  void Unregister() {
    if (connection_ && !unregistered_.exchange(true)) {
      service_.manager_.Unregister(connection_->cid());
    }
  }

  FlowerService& service_;
  std::shared_ptr<GrpcClientConnection> connection_;
  std::atomic<bool> unregistered_{false};
  std::mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ByteBuffer incoming_;
  grpc::ByteBuffer outgoing_ ABSL_GUARDED_BY(mu_);
};

void GrpcClientConnection::Send(grpc::ByteBuffer message, ReplyCallback done) {
  absl::Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_.ok()) {
      refused = closed_;
    } else if (reactor_ == nullptr) {
      refused = absl::UnavailableError("the client is disconnected");
    } else if (pending_) {
      refused = absl::FailedPreconditionError("an instruction is already in flight");
    } else {
      pending_ = std::move(done);
      reactor_->Write(std::move(message));
      return;
    }
  }
  done(refused);
}

void GrpcClientConnection::Close(absl::Status status) {
  ReplyCallback pending;
  JoinReactor* reactor = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_.ok()) return;
    closed_ = status.ok() ? absl::CancelledError("closed by the server") : status;
    pending = std::move(pending_);
    pending_ = nullptr;
    reactor = reactor_;
    if (reactor != nullptr) reactor->FinishOnce(ToGrpc(status));
  }
  if (pending) pending(closed_);
}

void GrpcClientConnection::Detach(const absl::Status& why) {
  ReplyCallback pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reactor_ = nullptr;
    pending = std::move(pending_);
    pending_ = nullptr;
  }
  if (pending) pending(why);
}

bool GrpcClientConnection::Deliver(grpc::ByteBuffer reply) {
  ReplyCallback pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending = std::move(pending_);
    pending_ = nullptr;
  }
  if (!pending) return false;
  pending(std::move(reply));
  return true;
}

void GrpcClientConnection::WriteFailed() {
  Detach(absl::UnavailableError("sending the instruction failed"));
}

FlowerService::FlowerService(strategy::ClientManager& manager, FlowerServiceOptions options)
    : manager_(manager), options_(options), rng_(std::random_device{}()) {}

FlowerService::~FlowerService() = default;

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* FlowerService::Join(
    grpc::CallbackServerContext* context) {
  return new JoinReactor(*this, context);  // deleted in OnDone
}

std::string FlowerService::NewClientId() {
  uint64_t hi;
  uint64_t lo;
  {
    std::lock_guard<std::mutex> lock(rng_mu_);
    hi = rng_();
    lo = rng_();
  }
  // uuid4: version nibble 4, variant bits 10.
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return fmt::format("{:016x}{:016x}", hi, lo);
}

grpc::ByteBuffer SerializeServerMessage(const flwr::proto::ServerMessage& message) {
  grpc::ByteBuffer buffer;
  bool own = false;
  grpc::Status s = grpc::SerializationTraits<flwr::proto::ServerMessage>::Serialize(message, &buffer, &own);
  (void)s;  // serializing an initialized message cannot fail
  return buffer;
}

absl::StatusOr<flwr::proto::ClientMessage> ParseClientMessage(grpc::ByteBuffer& buffer) {
  flwr::proto::ClientMessage message;
  grpc::Status s = grpc::SerializationTraits<flwr::proto::ClientMessage>::Deserialize(&buffer, &message);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("the reply is not a valid ClientMessage: {}", s.error_message()));
  }
  return message;
}

}  // namespace petal::server
