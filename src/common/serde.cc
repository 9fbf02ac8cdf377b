#include "common/serde.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include <fmt/format.h>
#include "common/internal/overloaded.h"
#include "common/npy.h"
#include "common/status_macros.h"

namespace petal::common {
namespace {

absl::Status CheckTensorType(const flwr::proto::Parameters& params) {
  // An empty Parameters (no tensors) is valid whatever its tensor_type says:
  // Flower sends Parameters(tensors=[], tensor_type="") when it has none.
  if (params.tensors_size() == 0 || params.tensor_type() == kNumpyTensorType) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(fmt::format("unsupported tensor_type '{}' (expected '{}')",
                                                params.tensor_type(), kNumpyTensorType));
}

}  // namespace

flwr::proto::Scalar ScalarToProto(const Scalar& value) {
  flwr::proto::Scalar out;
  std::visit(internal::Overloaded{
                 [&](bool b) { out.set_bool_(b); },
                 [&](const Bytes& b) { out.set_bytes(b.value); },
                 [&](double d) { out.set_double_(d); },
                 [&](int64_t i) { out.set_sint64(i); },
                 [&](uint64_t u) {
                   // Python ints become sint64 unless they exceed INT64_MAX.
                   if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                     out.set_sint64(static_cast<int64_t>(u));
                   } else {
                     out.set_uint64(u);
                   }
                 },
                 [&](const std::string& s) { out.set_string(s); },
             },
             value);
  return out;
}

absl::StatusOr<Scalar> ScalarFromProto(const flwr::proto::Scalar& proto) {
  using S = flwr::proto::Scalar;
  switch (proto.scalar_case()) {
    case S::kDouble:
      return Scalar(proto.double_());
    case S::kUint64:
      return Scalar(proto.uint64());
    case S::kSint64:
      return Scalar(static_cast<int64_t>(proto.sint64()));
    case S::kBool:
      return Scalar(proto.bool_());
    case S::kString:
      return Scalar(proto.string());
    case S::kBytes:
      return Scalar(Bytes{proto.bytes()});
    case S::SCALAR_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("Scalar has no value set");
}

void ConfigMapToProto(const ConfigMap& config, ProtoScalarMap* out) {
  out->clear();
  for (const auto& [key, value] : config) (*out)[key] = ScalarToProto(value);
}

absl::StatusOr<ConfigMap> ConfigMapFromProto(const ProtoScalarMap& proto) {
  ConfigMap out;
  for (const auto& [key, value] : proto) {
    absl::StatusOr<Scalar> scalar = ScalarFromProto(value);
    if (!scalar.ok()) return Annotate(scalar.status(), fmt::format("key '{}'", key));
    out.Set(key, *std::move(scalar));
  }
  return out;
}

flwr::proto::Parameters NDArraysToParameters(absl::Span<const NDArray> arrays) {
  flwr::proto::Parameters out;
  out.set_tensor_type(std::string(kNumpyTensorType));
  out.mutable_tensors()->Reserve(static_cast<int>(arrays.size()));
  for (const NDArray& a : arrays) AppendNpy(a, out.add_tensors());
  return out;
}

absl::StatusOr<std::vector<NDArray>> ParametersToNDArrays(const flwr::proto::Parameters& params) {
  PETAL_RETURN_IF_ERROR(CheckTensorType(params));
  std::vector<NDArray> out;
  out.reserve(params.tensors_size());
  for (int i = 0; i < params.tensors_size(); ++i) {
    absl::StatusOr<NDArray> a = DecodeNpy(std::string_view(params.tensors(i)));
    if (!a.ok()) return Annotate(a.status(), fmt::format("tensor {}", i));
    out.push_back(*std::move(a));
  }
  return out;
}

absl::StatusOr<std::vector<NDArray>> ParametersToNDArrays(flwr::proto::Parameters&& params) {
  PETAL_RETURN_IF_ERROR(CheckTensorType(params));
  std::vector<NDArray> out;
  out.reserve(params.tensors_size());
  for (int i = 0; i < params.tensors_size(); ++i) {
    std::string bytes;
    params.mutable_tensors(i)->swap(bytes);
    absl::StatusOr<NDArray> a = DecodeNpy(std::move(bytes));
    if (!a.ok()) return Annotate(a.status(), fmt::format("tensor {}", i));
    out.push_back(*std::move(a));
  }
  return out;
}

flwr::proto::Status ReplyStatusToProto(const ReplyStatus& status) {
  flwr::proto::Status out;
  out.set_code(static_cast<flwr::proto::Code>(status.code));
  out.set_message(status.message);
  return out;
}

ReplyStatus ReplyStatusFromProto(const flwr::proto::Status& proto) {
  return ReplyStatus{static_cast<Code>(proto.code()), proto.message()};
}

void GetPropertiesInsToProto(const GetPropertiesIns& ins,
                             flwr::proto::ServerMessage::GetPropertiesIns* out) {
  ConfigMapToProto(ins.config, out->mutable_config());
}

absl::StatusOr<GetPropertiesIns> GetPropertiesInsFromProto(
    const flwr::proto::ServerMessage::GetPropertiesIns& proto) {
  PETAL_ASSIGN_OR_RETURN(ConfigMap config, ConfigMapFromProto(proto.config()));
  return GetPropertiesIns{std::move(config)};
}

void GetParametersInsToProto(const GetParametersIns& ins,
                             flwr::proto::ServerMessage::GetParametersIns* out) {
  ConfigMapToProto(ins.config, out->mutable_config());
}

absl::StatusOr<GetParametersIns> GetParametersInsFromProto(
    const flwr::proto::ServerMessage::GetParametersIns& proto) {
  PETAL_ASSIGN_OR_RETURN(ConfigMap config, ConfigMapFromProto(proto.config()));
  return GetParametersIns{std::move(config)};
}

void FitInsToProto(const FitIns& ins, flwr::proto::ServerMessage::FitIns* out) {
  *out->mutable_parameters() = NDArraysToParameters(*ins.parameters);
  ConfigMapToProto(ins.config, out->mutable_config());
}

absl::StatusOr<FitIns> FitInsFromProto(flwr::proto::ServerMessage::FitIns&& proto) {
  PETAL_ASSIGN_OR_RETURN(ConfigMap config, ConfigMapFromProto(proto.config()));
  PETAL_ASSIGN_OR_RETURN(NDArrays arrays,
                         ParametersToNDArrays(std::move(*proto.mutable_parameters())));
  return FitIns{Share(std::move(arrays)), std::move(config)};
}

void EvaluateInsToProto(const EvaluateIns& ins, flwr::proto::ServerMessage::EvaluateIns* out) {
  *out->mutable_parameters() = NDArraysToParameters(*ins.parameters);
  ConfigMapToProto(ins.config, out->mutable_config());
}

absl::StatusOr<EvaluateIns> EvaluateInsFromProto(flwr::proto::ServerMessage::EvaluateIns&& proto) {
  PETAL_ASSIGN_OR_RETURN(ConfigMap config, ConfigMapFromProto(proto.config()));
  PETAL_ASSIGN_OR_RETURN(NDArrays arrays,
                         ParametersToNDArrays(std::move(*proto.mutable_parameters())));
  return EvaluateIns{Share(std::move(arrays)), std::move(config)};
}

void GetPropertiesResToProto(const GetPropertiesRes& res,
                             flwr::proto::ClientMessage::GetPropertiesRes* out) {
  *out->mutable_status() = ReplyStatusToProto(res.status);
  if (res.status.code == Code::kGetPropertiesNotImplemented) return;
  ConfigMapToProto(res.properties, out->mutable_properties());
}

absl::StatusOr<GetPropertiesRes> GetPropertiesResFromProto(
    const flwr::proto::ClientMessage::GetPropertiesRes& proto) {
  PETAL_ASSIGN_OR_RETURN(ConfigMap properties, ConfigMapFromProto(proto.properties()));
  return GetPropertiesRes{ReplyStatusFromProto(proto.status()), std::move(properties)};
}

void GetParametersResToProto(const GetParametersRes& res,
                             flwr::proto::ClientMessage::GetParametersRes* out) {
  *out->mutable_status() = ReplyStatusToProto(res.status);
  if (res.status.code == Code::kGetParametersNotImplemented) return;
  *out->mutable_parameters() = NDArraysToParameters(res.parameters);
}

absl::StatusOr<GetParametersRes> GetParametersResFromProto(
    flwr::proto::ClientMessage::GetParametersRes&& proto) {
  PETAL_ASSIGN_OR_RETURN(NDArrays arrays,
                         ParametersToNDArrays(std::move(*proto.mutable_parameters())));
  return GetParametersRes{ReplyStatusFromProto(proto.status()), std::move(arrays)};
}

void FitResToProto(const FitRes& res, flwr::proto::ClientMessage::FitRes* out) {
  *out->mutable_status() = ReplyStatusToProto(res.status);
  if (res.status.code == Code::kFitNotImplemented) return;
  *out->mutable_parameters() = NDArraysToParameters(res.parameters);
  out->set_num_examples(res.num_examples);
  ConfigMapToProto(res.metrics, out->mutable_metrics());
}

absl::StatusOr<FitRes> FitResFromProto(flwr::proto::ClientMessage::FitRes&& proto) {
  PETAL_ASSIGN_OR_RETURN(ConfigMap metrics, ConfigMapFromProto(proto.metrics()));
  PETAL_ASSIGN_OR_RETURN(NDArrays arrays,
                         ParametersToNDArrays(std::move(*proto.mutable_parameters())));
  return FitRes{ReplyStatusFromProto(proto.status()), std::move(arrays), proto.num_examples(),
                std::move(metrics)};
}

void EvaluateResToProto(const EvaluateRes& res, flwr::proto::ClientMessage::EvaluateRes* out) {
  *out->mutable_status() = ReplyStatusToProto(res.status);
  if (res.status.code == Code::kEvaluateNotImplemented) return;
  out->set_loss(res.loss);
  out->set_num_examples(res.num_examples);
  ConfigMapToProto(res.metrics, out->mutable_metrics());
}

absl::StatusOr<EvaluateRes> EvaluateResFromProto(
    const flwr::proto::ClientMessage::EvaluateRes& proto) {
  PETAL_ASSIGN_OR_RETURN(ConfigMap metrics, ConfigMapFromProto(proto.metrics()));
  return EvaluateRes{ReplyStatusFromProto(proto.status()), proto.loss(), proto.num_examples(),
                     std::move(metrics)};
}

}  // namespace petal::common
