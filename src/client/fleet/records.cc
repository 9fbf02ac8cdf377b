#include "client/fleet/records.h"

#include <fmt/format.h>

#include <limits>
#include <set>
#include <type_traits>
#include <utility>
#include <variant>

#include "common/internal/overloaded.h"
#include "common/npy.h"
#include "common/status_macros.h"

namespace petal::client::fleet {
namespace {

using common::NDArray;
using flwr::proto::Array;

absl::Status CheckArrayHeader(const Array& array, const NDArray& decoded) {
  if (array.stype() != kNumpyStype) {
    return absl::InvalidArgumentError(fmt::format(
        "unsupported Array stype '{}' (only '{}' is understood)", array.stype(), kNumpyStype));
  }
  if (!array.dtype().empty() && array.dtype() != common::DTypeName(decoded.dtype())) {
    return absl::InvalidArgumentError(
        fmt::format("Array dtype '{}' disagrees with its .npy data ({})", array.dtype(),
                    common::DTypeName(decoded.dtype())));
  }
  // A typed Array carries its shape; an untyped (legacy) one has shape ().
  if (!array.dtype().empty()) {
    bool same = static_cast<int64_t>(array.shape_size()) == decoded.ndim();
    for (int i = 0; same && i < array.shape_size(); ++i) {
      same = array.shape(i) == decoded.shape()[static_cast<size_t>(i)];
    }
    if (!same) {
      std::vector<int64_t> shape(array.shape().begin(), array.shape().end());
      return absl::InvalidArgumentError(
          fmt::format("Array shape {} disagrees with its .npy data {}",
                      common::ShapeToString(shape), common::ShapeToString(decoded.shape())));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStype(const Array& array) {
  if (array.stype() != kNumpyStype) {
    return absl::InvalidArgumentError(fmt::format(
        "unsupported Array stype '{}' (only '{}' is understood)", array.stype(), kNumpyStype));
  }
  return absl::OkStatus();
}

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

}  // namespace

absl::StatusOr<Array> ArrayFromNDArray(const NDArray& array, ArrayStyle style) {
  Array out;
  out.set_stype(std::string(kNumpyStype));
  if (style == ArrayStyle::kTyped) {
    out.set_dtype(std::string(common::DTypeName(array.dtype())));
    for (int64_t dim : array.shape()) {
      if (dim > std::numeric_limits<int32_t>::max()) {
        return absl::InvalidArgumentError(
            fmt::format("array {} has a dimension that does not fit Flower's int32 shape",
                        array.DebugString()));
      }
      out.add_shape(static_cast<int32_t>(dim));
    }
  }
  std::string* data = out.mutable_data();
  data->reserve(common::EncodedNpySize(array));
  common::AppendNpy(array, data);
  return out;
}

absl::StatusOr<NDArray> NDArrayFromArray(const Array& array) {
  PETAL_RETURN_IF_ERROR(CheckStype(array));
  PETAL_ASSIGN_OR_RETURN(NDArray decoded, common::DecodeNpy(std::string_view(array.data())));
  PETAL_RETURN_IF_ERROR(CheckArrayHeader(array, decoded));
  return decoded;
}

absl::StatusOr<NDArray> NDArrayFromArray(Array&& array) {
  PETAL_RETURN_IF_ERROR(CheckStype(array));
  std::string data = std::move(*array.mutable_data());
  PETAL_ASSIGN_OR_RETURN(NDArray decoded, common::DecodeNpy(std::move(data)));
  PETAL_RETURN_IF_ERROR(CheckArrayHeader(array, decoded));
  return decoded;
}

void AddConfig(flwr::proto::ConfigRecord* record, std::string key, const common::Scalar& value) {
  auto* item = record->add_items();
  item->set_key(std::move(key));
  auto* v = item->mutable_value();
  std::visit(common::internal::Overloaded{
                 [&](bool b) { v->set_bool_(b); },
                 [&](const common::Bytes& b) { v->set_bytes(b.value); },
                 [&](double d) { v->set_double_(d); },
                 [&](int64_t i) { v->set_sint64(i); },
                 [&](uint64_t u) {
                   if (u <= kInt64Max) {
                     v->set_sint64(static_cast<int64_t>(u));
                   } else {
                     v->set_uint64(u);
                   }
                 },
                 [&](const std::string& s) { v->set_string(s); },
             },
             value);
}

flwr::proto::ConfigRecord ConfigRecordFromMap(const common::ConfigMap& map) {
  flwr::proto::ConfigRecord record;
  for (const auto& [key, value] : map) AddConfig(&record, key, value);
  return record;
}

absl::StatusOr<common::ConfigMap> ConfigMapFromRecord(const flwr::proto::ConfigRecord& record) {
  common::ConfigMap out;
  using V = flwr::proto::ConfigRecordValue;
  for (const auto& item : record.items()) {
    const V& v = item.value();
    switch (v.value_case()) {
      case V::kDouble:
        out.Set(item.key(), v.double_());
        break;
      case V::kSint64:
        out.Set(item.key(), static_cast<int64_t>(v.sint64()));
        break;
      case V::kUint64:
        out.SetUint(item.key(), v.uint64());
        break;
      case V::kBool:
        out.Set(item.key(), v.bool_());
        break;
      case V::kString:
        out.Set(item.key(), v.string());
        break;
      case V::kBytes:
        out.Set(item.key(), common::Bytes{v.bytes()});
        break;
      case V::VALUE_NOT_SET:
        return absl::InvalidArgumentError(fmt::format("config key '{}' has no value", item.key()));
      default:
        return absl::InvalidArgumentError(
            fmt::format("config key '{}' holds a list, which a Petal Client's config (scalars "
                        "only) cannot carry",
                        item.key()));
    }
  }
  return out;
}

bool ScalarToMetricValue(const common::Scalar& value, flwr::proto::MetricRecordValue* out) {
  if (const auto* d = std::get_if<double>(&value)) {
    out->set_double_(*d);
    return true;
  }
  if (const auto* i = std::get_if<int64_t>(&value)) {
    out->set_sint64(*i);
    return true;
  }
  if (const auto* u = std::get_if<uint64_t>(&value)) {
    if (*u <= kInt64Max) {
      out->set_sint64(static_cast<int64_t>(*u));
    } else {
      out->set_uint64(*u);
    }
    return true;
  }
  return false;
}

absl::StatusOr<common::Scalar> MetricValueToScalar(const flwr::proto::MetricRecordValue& value) {
  using V = flwr::proto::MetricRecordValue;
  switch (value.value_case()) {
    case V::kDouble:
      return common::Scalar(value.double_());
    case V::kSint64:
      return common::Scalar(static_cast<int64_t>(value.sint64()));
    case V::kUint64:
      if (value.uint64() <= kInt64Max) return common::Scalar(static_cast<int64_t>(value.uint64()));
      return common::Scalar(value.uint64());
    case V::VALUE_NOT_SET:
      return absl::InvalidArgumentError("metric value has no field set");
    default:
      return absl::InvalidArgumentError("metric value is a list, not a scalar");
  }
}

void AddArrayRecord(flwr::proto::RecordDict* dict, std::string key,
                    flwr::proto::ArrayRecord record) {
  auto* item = dict->add_items();
  item->set_key(std::move(key));
  *item->mutable_array_record() = std::move(record);
}

void AddConfigRecord(flwr::proto::RecordDict* dict, std::string key,
                     flwr::proto::ConfigRecord record) {
  auto* item = dict->add_items();
  item->set_key(std::move(key));
  *item->mutable_config_record() = std::move(record);
}

void AddMetricRecord(flwr::proto::RecordDict* dict, std::string key,
                     flwr::proto::MetricRecord record) {
  auto* item = dict->add_items();
  item->set_key(std::move(key));
  *item->mutable_metric_record() = std::move(record);
}

const flwr::proto::RecordDict::Item* FindRecord(const flwr::proto::RecordDict& dict,
                                                std::string_view key) {
  for (const auto& item : dict.items()) {
    if (item.key() == key) return &item;
  }
  return nullptr;
}

flwr::proto::RecordDict::Item* FindMutableRecord(flwr::proto::RecordDict* dict,
                                                 std::string_view key) {
  for (auto& item : *dict->mutable_items()) {
    if (item.key() == key) return &item;
  }
  return nullptr;
}

void AddMetric(flwr::proto::MetricRecord* record, std::string key, double value) {
  auto* item = record->add_items();
  item->set_key(std::move(key));
  item->mutable_value()->set_double_(value);
}

void AddMetric(flwr::proto::MetricRecord* record, std::string key, int64_t value) {
  auto* item = record->add_items();
  item->set_key(std::move(key));
  item->mutable_value()->set_sint64(value);
}

namespace {

template <typename Items>
absl::Status CheckUniqueKeys(const Items& items, std::string_view what) {
  std::set<std::string_view> seen;
  for (const auto& item : items) {
    if (!seen.insert(item.key()).second) {
      return absl::InvalidArgumentError(fmt::format("{} repeats key '{}'", what, item.key()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRecordDict(const flwr::proto::RecordDict& dict) {
  PETAL_RETURN_IF_ERROR(CheckUniqueKeys(dict.items(), "RecordDict"));
  using Item = flwr::proto::RecordDict::Item;
  for (const auto& item : dict.items()) {
    switch (item.value_case()) {
      case Item::kArrayRecord:
        PETAL_RETURN_IF_ERROR(CheckUniqueKeys(item.array_record().items(),
                                              fmt::format("ArrayRecord '{}'", item.key())));
        break;
      case Item::kConfigRecord:
        PETAL_RETURN_IF_ERROR(CheckUniqueKeys(item.config_record().items(),
                                              fmt::format("ConfigRecord '{}'", item.key())));
        break;
      case Item::kMetricRecord:
        PETAL_RETURN_IF_ERROR(CheckUniqueKeys(item.metric_record().items(),
                                              fmt::format("MetricRecord '{}'", item.key())));
        break;
      case Item::VALUE_NOT_SET:
        return absl::InvalidArgumentError(
            fmt::format("RecordDict item '{}' holds no record", item.key()));
    }
  }
  return absl::OkStatus();
}

}  // namespace petal::client::fleet
