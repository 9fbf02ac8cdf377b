// File: serde.h
//
// Conversions between Petal's types and Flower's legacy wire messages
// (flwr.proto.Scalar, map<string, Scalar>, flwr.proto.Parameters), with the
// same rules as Flower's Python serde: every tensor is a complete .npy file and
// tensor_type is "numpy.ndarray"; an int travels as sint64 unless it exceeds
// INT64_MAX; a Scalar is never sent empty.
// Decoding returns InvalidArgument naming the offending key or tensor index.
// All functions are thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/messages.h"
#include "common/ndarray.h"
#include "common/scalar.h"
#include "flwr/proto/transport.pb.h"

namespace petal::common {

// Flower's tensor_type for .npy-encoded tensors.
inline constexpr std::string_view kNumpyTensorType = "numpy.ndarray";

using ProtoScalarMap = google::protobuf::Map<std::string, flwr::proto::Scalar>;

flwr::proto::Scalar ScalarToProto(const Scalar& value);
// InvalidArgument if no field of the oneof is set (Flower's decoder would crash).
absl::StatusOr<Scalar> ScalarFromProto(const flwr::proto::Scalar& proto);

void ConfigMapToProto(const ConfigMap& config, ProtoScalarMap* out);
absl::StatusOr<ConfigMap> ConfigMapFromProto(const ProtoScalarMap& proto);

// Encodes each array with EncodeNpy; tensor_type "numpy.ndarray".
flwr::proto::Parameters NDArraysToParameters(absl::Span<const NDArray> arrays);
// Decodes every tensor. InvalidArgument for another tensor_type or a bad tensor
// ("tensor 3: truncated .npy data: ...").
absl::StatusOr<std::vector<NDArray>> ParametersToNDArrays(const flwr::proto::Parameters& params);
// Same, but moves the tensor bytes out of `params` so arrays can view them
// without a copy. `params` is left with empty tensors.
absl::StatusOr<std::vector<NDArray>> ParametersToNDArrays(flwr::proto::Parameters&& params);

// --- Typed instructions and replies (common/messages.h) ---------------------
// The *ToProto functions write exactly what Flower's Python serde writes: a reply
// whose code is the matching *_NOT_IMPLEMENTED carries only its status. The
// *FromProto functions take the proto by rvalue so tensors can be moved out.

flwr::proto::Status ReplyStatusToProto(const ReplyStatus& status);
ReplyStatus ReplyStatusFromProto(const flwr::proto::Status& proto);

void GetPropertiesInsToProto(const GetPropertiesIns& ins, flwr::proto::ServerMessage::GetPropertiesIns* out);
absl::StatusOr<GetPropertiesIns> GetPropertiesInsFromProto(const flwr::proto::ServerMessage::GetPropertiesIns& proto);
void GetParametersInsToProto(const GetParametersIns& ins, flwr::proto::ServerMessage::GetParametersIns* out);
absl::StatusOr<GetParametersIns> GetParametersInsFromProto(const flwr::proto::ServerMessage::GetParametersIns& proto);
void FitInsToProto(const FitIns& ins, flwr::proto::ServerMessage::FitIns* out);
absl::StatusOr<FitIns> FitInsFromProto(flwr::proto::ServerMessage::FitIns&& proto);
void EvaluateInsToProto(const EvaluateIns& ins, flwr::proto::ServerMessage::EvaluateIns* out);
absl::StatusOr<EvaluateIns> EvaluateInsFromProto(flwr::proto::ServerMessage::EvaluateIns&& proto);

void GetPropertiesResToProto(const GetPropertiesRes& res, flwr::proto::ClientMessage::GetPropertiesRes* out);
absl::StatusOr<GetPropertiesRes> GetPropertiesResFromProto(const flwr::proto::ClientMessage::GetPropertiesRes& proto);
void GetParametersResToProto(const GetParametersRes& res, flwr::proto::ClientMessage::GetParametersRes* out);
absl::StatusOr<GetParametersRes> GetParametersResFromProto(flwr::proto::ClientMessage::GetParametersRes&& proto);
void FitResToProto(const FitRes& res, flwr::proto::ClientMessage::FitRes* out);
absl::StatusOr<FitRes> FitResFromProto(flwr::proto::ClientMessage::FitRes&& proto);
void EvaluateResToProto(const EvaluateRes& res, flwr::proto::ClientMessage::EvaluateRes* out);
absl::StatusOr<EvaluateRes> EvaluateResFromProto(const flwr::proto::ClientMessage::EvaluateRes& proto);

}  // namespace petal::common
