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
// an instruction the stream reads exactly one reply, but only once it holds a
// slot of the service's receive budget (max_buffered_replies); other replies
// wait in HTTP/2 flow control, so the server holds O(budget x model) bytes of
// unprocessed replies however many clients answer at once.
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
  // Replies read from the network but not yet consumed, at most (>= 1).
  int64_t max_buffered_replies = 2;
};

class JoinReactor;

// Hands out read slots to streams that wait for a reply, first come first
// served. Thread-safe.
class ReceiveBudget {
 public:
  explicit ReceiveBudget(int64_t slots) : free_(slots) {}
  // Grants a slot now (the reactor starts its read) or queues the reactor.
  void Request(JoinReactor* reactor);
  // Removes a queued reactor (its stream is ending). True if it was queued.
  bool Cancel(JoinReactor* reactor);
  // Returns a slot; the next queued reactor gets it.
  void Release();
  int64_t free_slots() const;

 private:
  mutable std::mutex mu_;
  int64_t free_ ABSL_GUARDED_BY(mu_);
  std::deque<JoinReactor*> waiting_ ABSL_GUARDED_BY(mu_);
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
