// File: client.h
//
// The C++ counterpart of Flower's `Client`: what a federated participant does
// when the server asks. Implement the methods you support; the defaults answer
// with the matching *_NOT_IMPLEMENTED code and Flower's own message, exactly as a
// Python `Client` subclass that does not override the method.
//
//   class MyClient : public petal::client::Client {
//    public:
//     absl::StatusOr<FitRes> Fit(const FitIns& ins) override { ... }
//   };
//
// Returning a non-OK absl::Status from a method is the C++ way to say "this
// instruction failed": transports turn it into a reply the server counts as a
// failure (legacy: a non-OK Status code with the message; Fleet API: an error
// reply) and keep the connection. Methods are called from one transport thread
// at a time per client; an implementation shared between transports must
// synchronize itself. No LibTorch, no gRPC in this header.
#pragma once

#include "absl/status/statusor.h"
#include "common/messages.h"

namespace petal::client {

using common::EvaluateIns;
using common::EvaluateRes;
using common::FitIns;
using common::FitRes;
using common::GetParametersIns;
using common::GetParametersRes;
using common::GetPropertiesIns;
using common::GetPropertiesRes;

class Client {
 public:
  Client() = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  virtual ~Client();

  virtual absl::StatusOr<GetPropertiesRes> GetProperties(const GetPropertiesIns& ins) {
    return GetPropertiesRes{
        {common::Code::kGetPropertiesNotImplemented, "Client does not implement `get_properties`"},
        {}};
  }
  virtual absl::StatusOr<GetParametersRes> GetParameters(const GetParametersIns& ins) {
    return GetParametersRes{
        {common::Code::kGetParametersNotImplemented, "Client does not implement `get_parameters`"},
        {}};
  }
  virtual absl::StatusOr<FitRes> Fit(const FitIns& ins) {
    return FitRes{{common::Code::kFitNotImplemented, "Client does not implement `fit`"}, {}, 0, {}};
  }
  virtual absl::StatusOr<EvaluateRes> Evaluate(const EvaluateIns& ins) {
    return EvaluateRes{
        {common::Code::kEvaluateNotImplemented, "Client does not implement `evaluate`"},
        0.0f,
        0,
        {}};
  }
};

}  // namespace petal::client
