// File: transport.h
//
// The transport interface of the client SDK: something that connects a
// petal::client::Client to a Flower server and serves its instructions until
// the server says goodbye. Two implementations exist:
//   - grpc-bidi: Flower's legacy FlowerService.Join stream (start_server /
//     start_client), client/grpc_bidi_transport.h;
//   - grpc-rere: the SuperLink Fleet API (flower-superlink / SuperNode),
//     client/fleet/ (when built in).
// Most applications call StartClient() (client/start_client.h) instead of
// using a Transport directly.
//
//   ConnectionOptions options;
//   options.server_address = "127.0.0.1:8080";
//   PETAL_ASSIGN_OR_RETURN(TransportPtr transport, MakeTransport(options));
//   std::thread stopper([&] { WaitForShutdownRequest(); transport->Stop(); });
//   absl::Status status = transport->Run(my_client);
//
// Contract shared by all transports:
//   - Run() blocks, calling the Client from the calling thread only, one call
//     at a time. It returns OK when the server says goodbye for good,
//     Unavailable when the retry budget is spent without reaching the server,
//     Cancelled after Stop(), and another non-OK status on a fatal error
//     (e.g. a message larger than the configured limit).
//   - A failing instruction (bad tensors, a Client method returning an error)
//     is answered as a failure and the connection stays up.
//   - Stop() may be called from any thread, any number of times, before,
//     during or after Run(). Run() then returns within bounded time: waits and
//     in-flight RPCs are interrupted at once; a Client method that is running
//     is allowed to finish first.
//   - No process-global state: any number of transports may run in one process.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/retry.h"

namespace petal::client {

// Flower's GRPC_MAX_MESSAGE_LENGTH (2 GiB - 1), used for sending and receiving.
inline constexpr int64_t kFlowerMaxMessageLength = 2'147'483'647;

enum class TransportKind {
  kGrpcBidi,  // "grpc-bidi": FlowerService.Join (legacy start_server)
  kGrpcRere,  // "grpc-rere": SuperLink Fleet API
};
std::string_view TransportKindName(TransportKind kind);
// Parses "grpc-bidi" / "grpc-rere"; InvalidArgument listing both otherwise.
absl::StatusOr<TransportKind> ParseTransportKind(std::string_view name);

struct ConnectionOptions {
  // host:port of the Flower server (Flower's start_server default port is 8080;
  // flwr 1.42's flower-superlink serves the Fleet API over HTTP on its --port,
  // default 8000; gRPC-rere Fleet APIs (flwr <= 1.39) listen on 9092).
  std::string server_address = "127.0.0.1:8080";
  TransportKind transport = TransportKind::kGrpcBidi;

  // TLS trust anchors: PEM text (starting with "-----BEGIN") or the path of a
  // PEM file, read when the transport is created. Empty with `insecure` unset
  // means plaintext, as in Flower.
  std::string root_certificates;
  // Unset: plaintext iff root_certificates is empty (Flower's rule). false with
  // no root_certificates: TLS with the system's trust store. true together with
  // root_certificates is an error.
  std::optional<bool> insecure;

  // Largest message sent or received, in bytes (1 .. 2^31 - 1). A reply that
  // would be larger is answered as a failure instead; a larger instruction is a
  // fatal ResourceExhausted error (the server and client limits disagree).
  int64_t max_message_length = kFlowerMaxMessageLength;

  RetryPolicy retry;
  // How long one connection attempt may take before it counts as failed.
  absl::Duration connect_timeout = absl::Seconds(20);
  // After answering a ReconnectIns, how long to wait for the server to close
  // the stream before closing it ourselves.
  absl::Duration disconnect_grace = absl::Seconds(2);

  // Prefix of this client's log lines ("[name] ...").
  std::string name = "petal-client";

  // Test hooks. `clock`: null = SystemClock() (borrowed, must outlive the
  // transport). `jitter_seed`: reproducible backoff jitter.
  Clock* clock = nullptr;
  std::optional<uint64_t> jitter_seed;

  // InvalidArgument naming the field for a bad value (including retry's).
  absl::Status Validate() const;
};

// Counters of one transport, for logs and figures. Bytes are serialized
// protobuf message sizes (without gRPC/HTTP2 framing).
struct TransportStats {
  int64_t connect_attempts = 0;     // attempts to open a session
  int64_t sessions = 0;             // sessions that reached the server
  int64_t instructions = 0;         // instructions received and answered
  int64_t failed_instructions = 0;  // of those, answered as failures
  int64_t bytes_received = 0;
  int64_t bytes_sent = 0;
  // When the first session reached the server (nullopt before that).
  std::optional<absl::Time> first_connected;
};

class Transport {
 public:
  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  virtual ~Transport();

  // Serves `client` (borrowed for the duration of the call) as described in
  // the file comment. Call at most once per transport.
  virtual absl::Status Run(Client& client) = 0;
  // Thread-safe and idempotent; makes Run() return Cancelled promptly.
  virtual void Stop() = 0;
  // Thread-safe snapshot.
  virtual TransportStats stats() const = 0;
};

using TransportPtr = std::unique_ptr<Transport>;

}  // namespace petal::client
