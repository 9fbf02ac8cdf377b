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

}  // namespace petal::common
