// File: content.h
//
// One Fleet API instruction in, one reply out: maps a Flower Message onto the
// petal::client::Client interface, for both kinds of ServerApp.
//
//  * Legacy strategies run by Flower's DefaultWorkflow (flwr.server.ServerApp
//    with a flwr.server.strategy) send compat records:
//      train            "fitins.parameters" + "fitins.config"
//                       -> "fitres.metrics", "fitres.num_examples",
//                          "fitres.parameters", "fitres.status"
//      evaluate         "evaluateins.parameters" + "evaluateins.config"
//                       -> "evaluateres.loss", "evaluateres.num_examples",
//                          "evaluateres.metrics", "evaluateres.status"
//      get_parameters   "getparametersins.config"
//                       -> "getparametersres.parameters", "getparametersres.status"
//      get_properties   "getpropertiesins.config"
//                       -> "getpropertiesres.properties", "getpropertiesres.status"
//    Arrays are untyped (dtype "", shape ()), data = .npy, stype
//    "numpy.ndarray"; no arrays is the single key "_empty". A Client's non-OK
//    ReplyStatus travels in the *.status record (the workflow counts it as a
//    failure), exactly like a Python Client's.
//  * The current strategy API (flwr.serverapp.strategy, message types
//    "train"/"evaluate"/"query", optionally ".<name>"): the instruction holds
//    one ArrayRecord (conventionally "arrays") and a ConfigRecord
//    (conventionally "config", with "server-round"):
//      train     -> {"arrays": ArrayRecord with the instruction's keys (or
//                    "0".."n-1"), "metrics": MetricRecord{"num-examples", ...}}
//      evaluate  -> {"metrics": MetricRecord{"num-examples", "loss", ...}}
//      query     -> {"properties": ConfigRecord} (Client::GetProperties)
//    Numeric Client metrics go into the MetricRecord; bool/str/bytes metrics,
//    which a MetricRecord cannot hold, go into a ConfigRecord "config-metrics".
//
// Failures become Flower error replies (Error code 2 CLIENT_APP_RAISED_EXCEPTION
// with the reason), never crashes: a Client method returning a non-OK
// absl::Status, a Client exception, undecodable arrays, unusable records, an
// unsupported message type, and (current API only, which has no status
// record) a non-OK ReplyStatus. Thread-safe as far as the Client is.
#pragma once

#include <optional>
#include <string>

#include "client/client.h"
#include "flwr/proto/message.pb.h"

namespace petal::client::fleet {

// Flower's ErrorCode values used in error replies.
inline constexpr int kErrorUnknown = 0;
inline constexpr int kErrorClientAppRaisedException = 2;
inline constexpr int kErrorMessageUnavailable = 3;

struct InstructionOutcome {
  // Exactly one of these is set.
  std::optional<flwr::proto::RecordDict> content;
  std::optional<flwr::proto::Error> error;
  // The reply counts as a failure on the server (error reply, or a compat
  // reply whose status is not OK).
  bool failed = false;
  // "train (legacy)", "evaluate", ... and, for failures, why. For logs.
  std::string description;
};

// Handles `instruction` (its content is consumed: arrays are moved out).
InstructionOutcome HandleInstruction(Client& client, flwr::proto::Message&& instruction);

// An error outcome with Flower's error code and reason.
InstructionOutcome ErrorOutcome(int code, std::string reason, std::string description);

}  // namespace petal::client::fleet
