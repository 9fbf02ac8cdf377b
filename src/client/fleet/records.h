// File: records.h
//
// Flower's record containers (flwr.proto.RecordDict, ArrayRecord, ConfigRecord,
// MetricRecord, Array) as used on the Fleet API, and their conversions to
// Petal's types (common::NDArray, common::ConfigMap).
//
//   PETAL_ASSIGN_OR_RETURN(flwr::proto::Array a, ArrayFromNDArray(w, ArrayStyle::kTyped));
//   PETAL_ASSIGN_OR_RETURN(common::NDArray back, NDArrayFromArray(a));
//
// The protobuf messages themselves are the in-memory model: their repeated
// `items` keep Flower's insertion order, which object ids depend on (see
// objects.h). Typing follows Flower's Python side: an integer is sint64 unless
// it exceeds INT64_MAX (then uint64), bool is never an integer.
// Errors are InvalidArgument naming the record key. All functions are
// thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/messages.h"
#include "common/ndarray.h"
#include "common/scalar.h"
#include "flwr/proto/message.pb.h"
#include "flwr/proto/recorddict.pb.h"

namespace petal::client::fleet {

// Flower's `stype` for arrays serialized as complete .npy files.
inline constexpr std::string_view kNumpyStype = "numpy.ndarray";

// How an Array describes its tensor.
enum class ArrayStyle {
  // Current strategy API: dtype = NumPy name ("float32"), shape filled in.
  kTyped,
  // Legacy compat (Flower's parameters_to_arrayrecord): dtype "" and shape ()
  // because legacy Parameters carry neither; the .npy header is authoritative.
  kUntyped,
};

// Encodes `array` as a .npy file in an Array with stype "numpy.ndarray".
// InvalidArgument if a dimension does not fit the proto's int32 shape.
absl::StatusOr<flwr::proto::Array> ArrayFromNDArray(const common::NDArray& array, ArrayStyle style);
// Decodes an Array whose stype is "numpy.ndarray". When dtype/shape are set
// (typed style) they must agree with the .npy header. InvalidArgument names the
// mismatch; the .npy codec's errors pass through.
absl::StatusOr<common::NDArray> NDArrayFromArray(const flwr::proto::Array& array);
// Same, taking the bytes so the array can view them without a copy.
absl::StatusOr<common::NDArray> NDArrayFromArray(flwr::proto::Array&& array);

// ConfigMap <-> ConfigRecord. Values keep Flower's Python typing.
flwr::proto::ConfigRecord ConfigRecordFromMap(const common::ConfigMap& map);
// InvalidArgument for list values (a ConfigMap holds scalars only), naming the
// key, and for values with no field set.
absl::StatusOr<common::ConfigMap> ConfigMapFromRecord(const flwr::proto::ConfigRecord& record);

// Numeric metrics -> MetricRecord value; nullopt-like false return for values a
// MetricRecord cannot hold (bool, string, bytes).
bool ScalarToMetricValue(const common::Scalar& value, flwr::proto::MetricRecordValue* out);
// Scalar metric value -> Scalar. InvalidArgument for lists and empty values.
absl::StatusOr<common::Scalar> MetricValueToScalar(const flwr::proto::MetricRecordValue& value);

// Record builders/accessors over RecordDict items.
void AddArrayRecord(flwr::proto::RecordDict* dict, std::string key,
                    flwr::proto::ArrayRecord record);
void AddConfigRecord(flwr::proto::RecordDict* dict, std::string key,
                     flwr::proto::ConfigRecord record);
void AddMetricRecord(flwr::proto::RecordDict* dict, std::string key,
                     flwr::proto::MetricRecord record);
// The item named `key`, or null.
const flwr::proto::RecordDict::Item* FindRecord(const flwr::proto::RecordDict& dict,
                                                std::string_view key);
flwr::proto::RecordDict::Item* FindMutableRecord(flwr::proto::RecordDict* dict,
                                                 std::string_view key);

// Adds one metric/config value (Python typing for integers).
void AddMetric(flwr::proto::MetricRecord* record, std::string key, double value);
void AddMetric(flwr::proto::MetricRecord* record, std::string key, int64_t value);
void AddConfig(flwr::proto::ConfigRecord* record, std::string key, const common::Scalar& value);

// InvalidArgument when a record dict, or any record in it, repeats a key
// (Flower's records are Python dicts) or holds an item with no record set.
absl::Status ValidateRecordDict(const flwr::proto::RecordDict& dict);

}  // namespace petal::client::fleet
