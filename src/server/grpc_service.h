// File: grpc_service.h
//
// /flwr.proto.FlowerService/Join on gRPC's callback API: one ServerBidiReactor
// per client stream, no thread per client. Messages stay serialized
// (ByteBuffer) on the way out so a round's model bytes are shared by every
// client; replies are parsed by whoever consumes them.
//
// Each stream registers a GrpcClientConnection with the ClientManager as soon
// as it opens (the client sends nothing first; its id is a random 32-hex-digit
// uuid4, like Flower's) and unregisters when the stream ends (a disconnect or
// cancellation is noticed at once through OnCancel). Lock-step: after writing
// an instruction the stream reads exactly one reply, but only once the
// service's receive budget (max_buffered_reply_bytes, charged with each
// instruction's expected reply size) admits it; other replies wait in HTTP/2
// flow control, so the server holds O(budget) bytes of unprocessed replies
// however many clients answer at once. Small replies flow many at a time,
// model-sized ones a few at a time (always at least one).
//
// Thread-safe. The service and the ClientManager must outlive the grpc::Server
// (shut the server down and Wait() before destroying them).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "flwr/proto/transport.grpc.pb.h"
#include "server/client_connection.h"
#include "strategy/client_manager.h"

namespace petal::server {

struct FlowerServiceOptions {
  // Streams beyond this many connected clients are refused with
  // RESOURCE_EXHAUSTED; 0 = no limit.
  int64_t max_clients = 0;
  // Bytes of replies read from the network but not yet consumed, at most
  // (estimated; one reply is always admitted).
  int64_t max_buffered_reply_bytes = 16 << 20;
};

class JoinReactor;

// Admits reads of replies up to a byte budget, strictly first come first
// served: a queued read that does not fit holds back the ones behind it (no
// starvation of model-sized replies by small ones). A read is admitted when it
// fits in what is left or when nothing is in use, so one reply larger than
// the whole budget still gets through, alone. Thread-safe.
class ReceiveBudget {
 public:
  // Something that reads one reply once admitted (a Join stream).
  class Reader {
   public:
    Reader() = default;
    virtual ~Reader() = default;
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    // Called under the budget's lock: starts the read, to be charged `cost`
    // bytes until the matching Release(cost). Returns false (nothing is
    // charged) if the reader is ending and will not read. Must not call back
    // into the budget.
    virtual bool TryStartRead(int64_t cost) = 0;
  };

  explicit ReceiveBudget(int64_t limit_bytes) : limit_(limit_bytes) {}
  // Admits a read costing `cost` (> 0) bytes now or queues the reader.
  void Request(Reader* reader, int64_t cost);
  // Removes a queued reader (its stream is ending; after this call it is
  // never admitted). True if it was queued.
  bool Cancel(Reader* reader);
  // Returns `cost` bytes of an admitted read; queued readers that now fit are
  // admitted in order.
  void Release(int64_t cost);
  int64_t used_bytes() const;
  int64_t limit_bytes() const { return limit_; }
  int64_t queued() const;

 private:
  void AdmitWaiting() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Fits(int64_t cost) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return used_ == 0 || cost <= limit_ - used_;
  }

  const int64_t limit_;
  mutable std::mutex mu_;
  int64_t used_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::pair<Reader*, int64_t>> waiting_ ABSL_GUARDED_BY(mu_);
};

class FlowerService final
    : public flwr::proto::FlowerService::WithRawCallbackMethod_Join<flwr::proto::FlowerService::Service> {
 public:
  FlowerService(strategy::ClientManager& manager, FlowerServiceOptions options);
  ~FlowerService() override;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Join(
      grpc::CallbackServerContext* context) override;

  // Streams currently open (registered or being refused), for tests and stats.
  int64_t open_streams() const { return open_streams_.load(); }
  // Total streams accepted since start.
  int64_t total_streams() const { return total_streams_.load(); }
  const ReceiveBudget& budget() const { return budget_; }

 private:
  friend class JoinReactor;
  std::string NewClientId();

  strategy::ClientManager& manager_;
  const FlowerServiceOptions options_;
  ReceiveBudget budget_;
  std::atomic<int64_t> open_streams_{0};
  std::atomic<int64_t> total_streams_{0};
  std::mutex rng_mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(rng_mu_);
};

// Serializes a ServerMessage once for sending to any number of clients.
grpc::ByteBuffer SerializeServerMessage(const flwr::proto::ServerMessage& message);
// Parses a reply. InvalidArgument if the bytes are not a ClientMessage.
absl::StatusOr<flwr::proto::ClientMessage> ParseClientMessage(grpc::ByteBuffer& buffer);

}  // namespace petal::server
