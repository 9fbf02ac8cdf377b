#include "server/grpc_service.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "common/logging.h"

namespace petal::server {
namespace {

namespace log = common::log;

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// Returns a receive slot when the last copy of the lease goes away.
class SlotLease {
 public:
  explicit SlotLease(ReceiveBudget& budget) : budget_(budget) {}
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;
  ~SlotLease() { budget_.Release(); }

 private:
  ReceiveBudget& budget_;
};

}  // namespace

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

  void Attach(JoinReactor* reactor) {
    std::lock_guard<std::mutex> lock(mu_);
    reactor_ = reactor;
  }
  // The stream is over: fail what is pending and forget the reactor.
  void Detach(const absl::Status& why);
  // A reply arrived; false if nothing was pending (then it is dropped).
  bool Deliver(Reply reply);

 private:
  const std::string peer_;
  mutable std::mutex mu_;
  JoinReactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;  // null once the stream is done
  ReplyCallback pending_ ABSL_GUARDED_BY(mu_);
  absl::Status closed_ ABSL_GUARDED_BY(mu_);  // non-OK once Close() was called
};

// One Join stream. Lifetime: created by Join(), deleted in OnDone().
// Locks: gRPC runs read/write reactions and OnDone/OnCancel of a bidi stream on
// its own threads, never inline inside StartRead/StartWrite/Finish (their
// callbacks are registered with can_inline=false), so starting an operation
// while holding mu_ (or the budget's lock) cannot re-enter these locks.
class JoinReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  JoinReactor(FlowerService& service, grpc::CallbackServerContext* context) : service_(service) {
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
    if (!service_.manager_.Register(connection_)) {
      unregistered_ = true;  // the id belongs to someone else
      FinishOnce(grpc::Status(grpc::StatusCode::INTERNAL, "duplicate client id"));
      return;
    }
    log::Info("client {} connected from {} ({} connected)", connection_->cid(), connection_->peer(),
              service_.manager_.NumAvailable());
  }

  // Called by GrpcClientConnection (under its lock) to send an instruction.
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

  // The receive budget offers a slot: read the reply. False (slot not taken)
  // if the stream is already finishing.
  bool TryGrantRead() {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return false;
    StartRead(&incoming_);
    return true;
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Unregister();
      connection_->Detach(absl::UnavailableError("sending the instruction failed"));
      FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
      return;
    }
    service_.budget_.Request(this);  // then TryGrantRead() starts the read
  }

  void OnReadDone(bool ok) override {
    // Every granted read ends here; the lease returns its slot when dropped.
    auto lease = std::make_shared<SlotLease>(service_.budget_);
    if (!ok) {
      // Client half-closed, disconnected, was cancelled or sent an oversized message.
      lease.reset();
      Unregister();
      connection_->Detach(absl::UnavailableError(
          "the client's stream ended (disconnect, cancellation or a message over the size limit)"));
      FinishOnce(grpc::Status::OK);
      return;
    }
    Reply reply{std::move(incoming_), std::move(lease)};
    incoming_.Clear();
    connection_->Deliver(std::move(reply));
  }

  void OnCancel() override {
    if (!connection_) return;
    Unregister();
    connection_->Detach(absl::UnavailableError("the client's stream was cancelled"));
    FinishOnce(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    Unregister();
    service_.budget_.Cancel(this);  // after this no TryGrantRead() can arrive
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

void ReceiveBudget::Request(JoinReactor* reactor) {
  // Lock order: budget, then reactor (TryGrantRead); never the reverse.
  std::lock_guard<std::mutex> lock(mu_);
  if (free_ == 0) {
    waiting_.push_back(reactor);
    return;
  }
  if (reactor->TryGrantRead()) --free_;
}

bool ReceiveBudget::Cancel(JoinReactor* reactor) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(waiting_.begin(), waiting_.end(), reactor);
  if (it == waiting_.end()) return false;
  waiting_.erase(it);
  return true;
}

void ReceiveBudget::Release() {
  // Granting under the lock keeps a reactor from being deleted in between
  // (OnDone cancels under the same lock first).
  std::lock_guard<std::mutex> lock(mu_);
  while (!waiting_.empty()) {
    JoinReactor* next = waiting_.front();
    waiting_.pop_front();
    if (next->TryGrantRead()) return;  // the slot moves on to `next`
  }
  ++free_;
}

int64_t ReceiveBudget::free_slots() const {
  std::lock_guard<std::mutex> lock(mu_);
  return free_;
}

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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_.ok()) return;
    closed_ = status.ok() ? absl::CancelledError("closed by the server") : status;
    pending = std::move(pending_);
    pending_ = nullptr;
    if (reactor_ != nullptr) reactor_->FinishOnce(ToGrpc(status));
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

bool GrpcClientConnection::Deliver(Reply reply) {
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

FlowerService::FlowerService(strategy::ClientManager& manager, FlowerServiceOptions options)
    : manager_(manager),
      options_(options),
      budget_(std::max<int64_t>(1, options.max_buffered_replies)),
      rng_(std::random_device{}()) {}

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
  grpc::Status s =
      grpc::SerializationTraits<flwr::proto::ServerMessage>::Serialize(message, &buffer, &own);
  (void)s;  // serializing an initialized message cannot fail
  return buffer;
}

absl::StatusOr<flwr::proto::ClientMessage> ParseClientMessage(grpc::ByteBuffer& buffer) {
  flwr::proto::ClientMessage message;
  grpc::Status s =
      grpc::SerializationTraits<flwr::proto::ClientMessage>::Deserialize(&buffer, &message);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("the reply is not a valid ClientMessage: {}", s.error_message()));
  }
  return message;
}

}  // namespace petal::server
