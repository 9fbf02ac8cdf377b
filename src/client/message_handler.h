// File: message_handler.h
//
// One legacy instruction in, one reply out: the transport-independent core of
// the grpc-bidi client. Decodes a flwr.proto.ServerMessage, calls the Client and
// encodes the ClientMessage exactly as Flower's own Python client would:
//   get_properties_ins -> get_properties_res, get_parameters_ins ->
//   get_parameters_res, fit_ins -> fit_res, evaluate_ins -> evaluate_res,
//   reconnect_ins -> disconnect_res{reason: RECONNECT} (Flower always sends
//   RECONNECT, whatever `seconds` is).
//
// Failures never escape as crashes. If the instruction cannot be decoded
// (undecodable tensors, an empty Scalar), the Client returns a non-OK
// absl::Status, or the Client throws, the reply carries the instruction's
// *_NOT_IMPLEMENTED code (the only non-OK codes Flower's enum has; a Flower
// server counts it as a failure) and the message "error: <status>"; like every
// *_NOT_IMPLEMENTED reply it carries only its status. A reply that would exceed
// `max_reply_bytes` is replaced by such a failure too.
//
// A ServerMessage with no instruction set (or one this version does not know)
// gets no reply at all: a Flower server would read any reply as a default-valued
// *success*, so the caller must close the stream instead (the server then counts
// a failure). Thread-safe as far as the Client is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "client/client.h"
#include "flwr/proto/transport.pb.h"

namespace petal::client {

enum class InstructionKind {
  kGetProperties,
  kGetParameters,
  kFit,
  kEvaluate,
  kReconnect,
  kUnknown,  // empty or unrecognized ServerMessage.msg
};
// "get_properties", "get_parameters", "fit", "evaluate", "reconnect", "unknown".
std::string_view InstructionName(InstructionKind kind);

struct HandledInstruction {
  InstructionKind kind = InstructionKind::kUnknown;
  // What to send back; nullopt for kUnknown (send nothing, close the stream).
  std::optional<flwr::proto::ClientMessage> reply;
  // The reply's status code is not OK (including a Client's own
  // *_NOT_IMPLEMENTED answer).
  bool failed = false;
  // Why the SDK answered with a failure (decode error, Client error, size),
  // or why there is no reply; empty otherwise.
  std::string error;
  // kReconnect: the server's `seconds` (0: do not come back).
  int64_t reconnect_seconds = 0;
};

HandledInstruction HandleServerMessage(Client& client, flwr::proto::ServerMessage&& message,
                                       int64_t max_reply_bytes);

// The failure text for `status`: "error: <CODE>: <message>".
std::string FailureMessage(const absl::Status& status);

}  // namespace petal::client
