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

// Returns its bytes to the receive budget when the last copy goes away.
class BudgetLease {
 public:
  BudgetLease(ReceiveBudget& budget, int64_t cost) : budget_(budget), cost_(cost) {}
  BudgetLease(const BudgetLease&) = delete;
  BudgetLease& operator=(const BudgetLease&) = delete;
  ~BudgetLease() { budget_.Release(cost_); }

 private:
  ReceiveBudget& budget_;
  const int64_t cost_;
};

// The least a read is charged (a ClientMessage with no parameters).
constexpr int64_t kMinReplyCost = 1024;

}  // namespace

// The ClientProxy half of a stream. Shared (manager, rounds); the reactor half
// is owned by gRPC and detaches itself when the stream is done.
class GrpcClientConnection final : public ClientConnection {
 public:
  GrpcClientConnection(std::string cid, std::string peer)
      : ClientConnection(std::move(cid)), peer_(std::move(peer)) {}

  void Send(grpc::ByteBuffer message, size_t expected_reply_bytes, ReplyCallback done) override;
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
class JoinReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                          public ReceiveBudget::Reader {
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
  void Write(grpc::ByteBuffer message, int64_t reply_cost) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    outgoing_ = std::move(message);
    reply_cost_ = reply_cost;
    StartWrite(&outgoing_);
  }

  void FinishOnce(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }

  // The receive budget admits the reply's read, charging `cost` until the
  // lease made in OnReadDone is dropped. False (nothing charged) if the stream
  // is already finishing.
  bool TryStartRead(int64_t cost) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return false;
    read_cost_ = cost;
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
    int64_t cost;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cost = reply_cost_;
    }
    service_.budget_.Request(this, cost);  // then TryStartRead() starts the read
  }

  void OnReadDone(bool ok) override {
    // Every admitted read ends here; the lease returns what the admission
    // charged when it is dropped.
    int64_t cost;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cost = read_cost_;
    }
    auto lease = std::make_shared<BudgetLease>(service_.budget_, cost);
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
    service_.budget_.Cancel(this);  // after this no TryStartRead() can arrive
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
  int64_t reply_cost_ ABSL_GUARDED_BY(mu_) = kMinReplyCost;  // of the instruction in flight
  int64_t read_cost_ ABSL_GUARDED_BY(mu_) = 0;               // charged for the read in flight
  grpc::ByteBuffer incoming_;
  grpc::ByteBuffer outgoing_ ABSL_GUARDED_BY(mu_);
};

void ReceiveBudget::Request(Reader* reader, int64_t cost) {
  // Lock order: budget, then reader (TryStartRead); never the reverse.
  std::lock_guard<std::mutex> lock(mu_);
  if (waiting_.empty() && Fits(cost)) {
    if (reader->TryStartRead(cost)) used_ += cost;
    return;
  }
  waiting_.emplace_back(reader, cost);
}

bool ReceiveBudget::Cancel(Reader* reader) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find_if(waiting_.begin(), waiting_.end(),
                         [reader](const auto& w) { return w.first == reader; });
  if (it == waiting_.end()) return false;
  const bool was_head = it == waiting_.begin();
  waiting_.erase(it);
  if (was_head) AdmitWaiting();  // it may have held back smaller ones
  return true;
}

void ReceiveBudget::Release(int64_t cost) {
  std::lock_guard<std::mutex> lock(mu_);
  used_ -= cost;
  AdmitWaiting();
}

void ReceiveBudget::AdmitWaiting() {
  // Admitting under the lock keeps a reader from being deleted in between
  // (a stream's OnDone cancels under the same lock first).
  while (!waiting_.empty()) {
    auto [next, cost] = waiting_.front();
    if (!Fits(cost)) return;
    waiting_.pop_front();
    if (next->TryStartRead(cost)) used_ += cost;
  }
}

int64_t ReceiveBudget::used_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return used_;
}

int64_t ReceiveBudget::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(waiting_.size());
}

void GrpcClientConnection::Send(grpc::ByteBuffer message, size_t expected_reply_bytes,
                                ReplyCallback done) {
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
      reactor_->Write(std::move(message),
                      std::max<int64_t>(kMinReplyCost, static_cast<int64_t>(expected_reply_bytes)));
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
      budget_(std::max<int64_t>(1, options.max_buffered_reply_bytes)),
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
