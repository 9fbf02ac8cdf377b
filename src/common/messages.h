// File: messages.h
//
// Typed versions of Flower's legacy instructions and replies (Python's
// flwr.common.typing: FitIns, FitRes, EvaluateIns, ...). The client SDK, the
// strategies and the server all speak these; common/serde.h converts them to and
// from flwr.proto messages.
//
// Instructions hold their arrays through a shared, immutable pointer so a
// server can send the same global model to many clients without copying it.
// Replies own their arrays.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/ndarray.h"
#include "common/scalar.h"

namespace petal::common {

using NDArrays = std::vector<NDArray>;
using SharedNDArrays = std::shared_ptr<const NDArrays>;

// Wraps arrays for sharing between instructions.
inline SharedNDArrays Share(NDArrays arrays) {
  return std::make_shared<const NDArrays>(std::move(arrays));
}

// Flower's transport Code: the result code in every reply.
enum class Code : int {
  kOk = 0,
  kGetPropertiesNotImplemented = 1,
  kGetParametersNotImplemented = 2,
  kFitNotImplemented = 3,
  kEvaluateNotImplemented = 4,
};
std::string_view CodeName(Code code);

// Status carried in a reply (not absl::Status: it travels on the wire).
struct ReplyStatus {
  Code code = Code::kOk;
  std::string message;
  bool ok() const { return code == Code::kOk; }
  bool operator==(const ReplyStatus&) const = default;
};

// What Flower's NumPyClient sends on success.
inline ReplyStatus SuccessStatus() { return ReplyStatus{Code::kOk, "Success"}; }

struct GetPropertiesIns {
  ConfigMap config;
};
struct GetPropertiesRes {
  ReplyStatus status;
  ConfigMap properties;
};

struct GetParametersIns {
  ConfigMap config;
};
struct GetParametersRes {
  ReplyStatus status;
  NDArrays parameters;
};

struct FitIns {
  SharedNDArrays parameters = Share({});
  ConfigMap config;
};
struct FitRes {
  ReplyStatus status;
  NDArrays parameters;
  int64_t num_examples = 0;
  ConfigMap metrics;
};

struct EvaluateIns {
  SharedNDArrays parameters = Share({});
  ConfigMap config;
};
struct EvaluateRes {
  ReplyStatus status;
  float loss = 0.0f;  // 32-bit on the wire
  int64_t num_examples = 0;
  ConfigMap metrics;
};

// "Disconnect, and reconnect after `seconds` if it is > 0."
struct ReconnectIns {
  int64_t seconds = 0;
};

enum class Reason : int {
  kUnknown = 0,
  kReconnect = 1,
  kPowerDisconnected = 2,
  kWifiUnavailable = 3,
  kAck = 4,
};
struct DisconnectRes {
  Reason reason = Reason::kUnknown;
};

}  // namespace petal::common
