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

}  // namespace petal::common
