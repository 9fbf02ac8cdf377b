// File: test_util.h
//
// Builders for flwr.proto instructions and small Client implementations shared
// by the client SDK's unit tests.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "common/messages.h"
#include "common/serde.h"
#include "flwr/proto/transport.pb.h"

namespace petal::client::testing {

inline common::NDArray Floats(common::Shape shape, std::vector<float> values) {
  return *common::NDArray::FromVector<float>(std::move(shape), values);
}

inline flwr::proto::ServerMessage FitMessage(const common::NDArrays& arrays,
                                             const common::ConfigMap& config = {}) {
  flwr::proto::ServerMessage m;
  common::FitInsToProto(common::FitIns{common::Share(arrays), config}, m.mutable_fit_ins());
  return m;
}

inline flwr::proto::ServerMessage EvaluateMessage(const common::NDArrays& arrays,
                                                  const common::ConfigMap& config = {}) {
  flwr::proto::ServerMessage m;
  common::EvaluateInsToProto(common::EvaluateIns{common::Share(arrays), config},
                             m.mutable_evaluate_ins());
  return m;
}

inline flwr::proto::ServerMessage GetParametersMessage(const common::ConfigMap& config = {}) {
  flwr::proto::ServerMessage m;
  common::GetParametersInsToProto(common::GetParametersIns{config}, m.mutable_get_parameters_ins());
  return m;
}

inline flwr::proto::ServerMessage GetPropertiesMessage(const common::ConfigMap& config = {}) {
  flwr::proto::ServerMessage m;
  common::GetPropertiesInsToProto(common::GetPropertiesIns{config}, m.mutable_get_properties_ins());
  return m;
}

inline flwr::proto::ServerMessage ReconnectMessage(int64_t seconds) {
  flwr::proto::ServerMessage m;
  m.mutable_reconnect_ins()->set_seconds(seconds);
  return m;
}

// A client that adds `delta` to every float32 weight it is given, reports
// `num_examples`, and can be told to fail or throw on fit.
class AddingClient : public Client {
 public:
  explicit AddingClient(float delta = 1.0f, int64_t num_examples = 10)
      : delta_(delta), num_examples_(num_examples) {}

  absl::StatusOr<GetPropertiesRes> GetProperties(const GetPropertiesIns& ins) override {
    common::ConfigMap props{{"kind", std::string("adding")},
                            {"echo", static_cast<int64_t>(ins.config.size())}};
    return GetPropertiesRes{common::SuccessStatus(), props};
  }
  absl::StatusOr<GetParametersRes> GetParameters(const GetParametersIns&) override {
    return GetParametersRes{common::SuccessStatus(), {Floats({2}, {0.0f, 0.0f})}};
  }
  absl::StatusOr<FitRes> Fit(const FitIns& ins) override {
    if (ins.config.Contains("throw")) throw std::runtime_error("boom");
    if (ins.config.Contains("fail")) return absl::FailedPreconditionError("asked to fail");
    absl::StatusOr<int64_t> epochs = ins.config.GetIntOr("local_epochs", 1);
    if (!epochs.ok()) return epochs.status();
    common::NDArrays out;
    for (const common::NDArray& a : *ins.parameters) {
      absl::StatusOr<absl::Span<const float>> v = a.As<float>();
      if (!v.ok()) return v.status();
      std::vector<float> next(v->begin(), v->end());
      for (float& x : next) x += delta_ * static_cast<float>(*epochs);
      out.push_back(Floats(a.shape(), next));
    }
    return FitRes{common::SuccessStatus(), std::move(out), num_examples_,
                  common::ConfigMap{{"delta", static_cast<double>(delta_)}}};
  }
  absl::StatusOr<EvaluateRes> Evaluate(const EvaluateIns& ins) override {
    return EvaluateRes{common::SuccessStatus(), 0.25f, num_examples_,
                       common::ConfigMap{{"arrays", static_cast<int64_t>(ins.parameters->size())}}};
  }

 private:
  float delta_;
  int64_t num_examples_;
};

// Implements nothing: every answer is Flower's *_NOT_IMPLEMENTED default.
class BareClient : public Client {};

}  // namespace petal::client::testing
