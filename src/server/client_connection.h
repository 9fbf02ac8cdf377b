// File: client_connection.h
//
// A connected client as the round loop sees it: a strategy::ClientProxy (an
// identity the strategies sample) that can carry one instruction at a time,
// Flower's strict lock-step (flower-wire.md A.2): send one ServerMessage, get
// exactly one ClientMessage back.
//
//   connection->Send(std::move(message), model_bytes, [queue](absl::StatusOr<Reply> reply) {
//     queue->Push(std::move(reply));          // runs on a transport thread
//   });
//
// Messages travel serialized (grpc::ByteBuffer, reference counted): a round
// serializes the global model once and shares the bytes with every client.
// Implementations: GrpcClientConnection (grpc_service.h) and test fakes.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strategy/client_manager.h"

namespace petal::server {

// A serialized ClientMessage as received, with a lease on the transport's
// receive budget: the transport reads replies ahead of their consumer only up
// to a byte budget (memory O(budget), not O(clients x model)); the lease
// returns its share when the Reply is destroyed, so drop it once processed.
struct Reply {
  grpc::ByteBuffer bytes;
  std::shared_ptr<void> lease;
};

// Receives the reply, or why there is none: Unavailable
// (the stream ended: disconnect, cancellation, a message over the size limit),
// DeadlineExceeded / other codes (the connection was closed with that status),
// FailedPrecondition (an instruction was already in flight). Called exactly
// once per Send, on an arbitrary thread, possibly before Send returns; it must
// not block.
using ReplyCallback = std::function<void(absl::StatusOr<Reply>)>;

class ClientConnection : public strategy::ClientProxy {
 public:
  using strategy::ClientProxy::ClientProxy;

  // Sends one serialized ServerMessage and arranges for `done` to get the reply.
  // `expected_reply_bytes` (an estimate: the model size for fit, small for
  // evaluate) is what reading the reply charges to the receive budget.
  // Thread-safe.
  virtual void Send(grpc::ByteBuffer message, size_t expected_reply_bytes, ReplyCallback done) = 0;
  // Ends the stream with `status` (e.g. DeadlineExceeded "Timeout of 10sec was
  // exceeded."); an instruction in flight fails with that status. Idempotent,
  // thread-safe.
  virtual void Close(absl::Status status) = 0;
  // True while an instruction awaits its reply.
  virtual bool busy() const = 0;
  // Human-readable peer address for logs ("ipv4:127.0.0.1:51234").
  virtual std::string peer() const = 0;
};

using ClientConnectionPtr = std::shared_ptr<ClientConnection>;

}  // namespace petal::server
