#include "client/fleet/content.h"

#include <fmt/format.h>

#include <exception>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include "client/fleet/records.h"
#include "common/status_macros.h"

namespace petal::client::fleet {
namespace {

namespace proto = ::flwr::proto;
using common::NDArrays;
using common::ReplyStatus;

constexpr std::string_view kEmptyTensorKey = "_empty";
constexpr std::string_view kNumExamples = "num-examples";

std::string_view BaseType(std::string_view type) { return type.substr(0, type.find('.')); }

// Runs a Client method, turning exceptions into errors.
template <typename T>
absl::StatusOr<T> CallClient(const std::function<absl::StatusOr<T>()>& call) {
  try {
    return call();
  } catch (const std::exception& e) {
    return absl::InternalError(fmt::format("the Client threw an exception: {}", e.what()));
  } catch (...) {
    return absl::InternalError("the Client threw a non-standard exception");
  }
}

std::string StatusText(const ReplyStatus& status) {
  return fmt::format("{}: {}", common::CodeName(status.code), status.message);
}

// --- arrays ------------------------------------------------------------------

struct DecodedArrays {
  NDArrays arrays;
  std::vector<std::string> keys;
};

absl::StatusOr<DecodedArrays> DecodeArrays(proto::ArrayRecord&& record, bool legacy) {
  DecodedArrays out;
  for (auto& item : *record.mutable_items()) {
    if (legacy && item.key() == kEmptyTensorKey) continue;
    absl::StatusOr<common::NDArray> array = NDArrayFromArray(std::move(*item.mutable_value()));
    if (!array.ok()) return common::Annotate(array.status(), fmt::format("array '{}'", item.key()));
    out.keys.push_back(item.key());
    out.arrays.push_back(*std::move(array));
  }
  return out;
}

// Flower's parameters_to_arrayrecord: keys "0".."n-1", untyped arrays; no
// arrays become one empty "_empty" Array whose stype is the tensor type.
absl::StatusOr<proto::ArrayRecord> LegacyArrayRecord(const NDArrays& arrays, bool status_ok) {
  proto::ArrayRecord record;
  for (size_t i = 0; i < arrays.size(); ++i) {
    auto* item = record.add_items();
    item->set_key(std::to_string(i));
    PETAL_ASSIGN_OR_RETURN(*item->mutable_value(),
                           ArrayFromNDArray(arrays[i], ArrayStyle::kUntyped));
  }
  if (arrays.empty()) {
    auto* item = record.add_items();
    item->set_key(std::string(kEmptyTensorKey));
    // A Python Client's *_NOT_IMPLEMENTED reply carries Parameters with
    // tensor_type ""; a NumPyClient's empty list has "numpy.ndarray".
    item->mutable_value()->set_stype(status_ok ? std::string(kNumpyStype) : "");
  }
  return record;
}

bool IsPositionalKeys(const std::vector<std::string>& keys) {
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] != std::to_string(i)) return false;
  }
  return true;
}

absl::StatusOr<proto::ArrayRecord> TypedArrayRecord(const NDArrays& arrays,
                                                    const std::vector<std::string>& keys) {
  std::vector<std::string> names = keys;
  if (arrays.size() != keys.size()) {
    if (!IsPositionalKeys(keys)) {
      return absl::InvalidArgumentError(fmt::format(
          "the Client returned {} arrays but the instruction named {} ({}): a reply must keep "
          "the instruction's array keys",
          arrays.size(), keys.size(), fmt::join(keys, ", ")));
    }
    names.clear();
    for (size_t i = 0; i < arrays.size(); ++i) names.push_back(std::to_string(i));
  }
  proto::ArrayRecord record;
  for (size_t i = 0; i < arrays.size(); ++i) {
    auto* item = record.add_items();
    item->set_key(names[i]);
    absl::StatusOr<proto::Array> array = ArrayFromNDArray(arrays[i], ArrayStyle::kTyped);
    if (!array.ok())
      return common::Annotate(array.status(), fmt::format("reply array '{}'", names[i]));
    *item->mutable_value() = *std::move(array);
  }
  return record;
}

// --- records -------------------------------------------------------------------

proto::ConfigRecord StatusRecord(const ReplyStatus& status) {
  proto::ConfigRecord record;
  AddConfig(&record, "code", static_cast<int64_t>(status.code));
  AddConfig(&record, "message", status.message);
  return record;
}

proto::MetricRecord NumExamples(std::string_view key, int64_t n) {
  proto::MetricRecord record;
  AddMetric(&record, std::string(key), n);
  return record;
}

// Takes the record `key` of the given kind out of `dict`.
template <typename Record>
absl::StatusOr<Record> TakeRecord(proto::RecordDict& dict, std::string_view key,
                                  std::string_view what) {
  proto::RecordDict::Item* item = FindMutableRecord(&dict, key);
  if (item == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("the {} instruction lacks the record '{}'", what, key));
  }
  if constexpr (std::is_same_v<Record, proto::ArrayRecord>) {
    if (!item->has_array_record())
      return absl::InvalidArgumentError(fmt::format("'{}' is not an ArrayRecord", key));
    return std::move(*item->mutable_array_record());
  } else {
    if (!item->has_config_record())
      return absl::InvalidArgumentError(fmt::format("'{}' is not a ConfigRecord", key));
    return std::move(*item->mutable_config_record());
  }
}

// The instruction's single ArrayRecord (current API); nullopt if it has none
// and `required` is false.
absl::StatusOr<std::optional<proto::ArrayRecord>> TakeOnlyArrayRecord(proto::RecordDict& dict,
                                                                      bool required) {
  proto::RecordDict::Item* found = nullptr;
  int count = 0;
  for (auto& item : *dict.mutable_items()) {
    if (item.has_array_record()) {
      ++count;
      found = &item;
    }
  }
  if (count > 1) {
    return absl::InvalidArgumentError(
        fmt::format("expected one ArrayRecord in the instruction, found {}", count));
  }
  if (count == 0) {
    if (required)
      return absl::InvalidArgumentError("expected one ArrayRecord in the instruction, found none");
    return std::optional<proto::ArrayRecord>();
  }
  return std::optional<proto::ArrayRecord>(std::move(*found->mutable_array_record()));
}

// The instruction's ConfigRecord: the only one, or the one named "config";
// empty when there is none.
absl::StatusOr<common::ConfigMap> CurrentApiConfig(const proto::RecordDict& dict) {
  const proto::RecordDict::Item* chosen = nullptr;
  int count = 0;
  for (const auto& item : dict.items()) {
    if (!item.has_config_record()) continue;
    ++count;
    if (chosen == nullptr || item.key() == "config") chosen = &item;
  }
  if (count > 1 && chosen->key() != "config") {
    return absl::InvalidArgumentError(
        fmt::format("the instruction holds {} ConfigRecords and none is named 'config'", count));
  }
  if (chosen == nullptr) return common::ConfigMap();
  return ConfigMapFromRecord(chosen->config_record());
}

// Numeric metrics into `metrics` (after `first` entries), the rest into a
// ConfigRecord returned when non-empty.
std::optional<proto::ConfigRecord> SplitMetrics(const common::ConfigMap& values,
                                                proto::MetricRecord* metrics) {
  proto::ConfigRecord others;
  for (const auto& [key, value] : values) {
    if (key == kNumExamples) continue;  // the reply's num_examples is authoritative
    proto::MetricRecordValue v;
    if (ScalarToMetricValue(value, &v)) {
      auto* item = metrics->add_items();
      item->set_key(key);
      *item->mutable_value() = std::move(v);
    } else {
      AddConfig(&others, key, value);
    }
  }
  if (others.items().empty()) return std::nullopt;
  return others;
}

// --- handlers ------------------------------------------------------------------

InstructionOutcome ContentOutcome(proto::RecordDict content, bool failed, std::string description) {
  InstructionOutcome out;
  out.content = std::move(content);
  out.failed = failed;
  out.description = std::move(description);
  return out;
}

InstructionOutcome ClientError(const absl::Status& status, std::string_view what) {
  return ErrorOutcome(kErrorClientAppRaisedException, status.ToString(),
                      fmt::format("{} failed: {}", what, status.ToString()));
}

absl::StatusOr<InstructionOutcome> LegacyFit(Client& client, proto::RecordDict& dict) {
  PETAL_ASSIGN_OR_RETURN(proto::ArrayRecord params,
                         TakeRecord<proto::ArrayRecord>(dict, "fitins.parameters", "train"));
  PETAL_ASSIGN_OR_RETURN(proto::ConfigRecord config,
                         TakeRecord<proto::ConfigRecord>(dict, "fitins.config", "train"));
  PETAL_ASSIGN_OR_RETURN(DecodedArrays arrays, DecodeArrays(std::move(params), /*legacy=*/true));
  FitIns ins;
  ins.parameters = common::Share(std::move(arrays.arrays));
  PETAL_ASSIGN_OR_RETURN(ins.config, ConfigMapFromRecord(config));
  absl::StatusOr<FitRes> res = CallClient<FitRes>([&] { return client.Fit(ins); });
  if (!res.ok()) return ClientError(res.status(), "train (legacy)");
  proto::RecordDict reply;
  AddConfigRecord(&reply, "fitres.metrics", ConfigRecordFromMap(res->metrics));
  AddMetricRecord(&reply, "fitres.num_examples", NumExamples("num_examples", res->num_examples));
  PETAL_ASSIGN_OR_RETURN(proto::ArrayRecord out,
                         LegacyArrayRecord(res->parameters, res->status.ok()));
  AddArrayRecord(&reply, "fitres.parameters", std::move(out));
  AddConfigRecord(&reply, "fitres.status", StatusRecord(res->status));
  return ContentOutcome(
      std::move(reply), !res->status.ok(),
      res->status.ok() ? "train (legacy)" : "train (legacy): " + StatusText(res->status));
}

absl::StatusOr<InstructionOutcome> LegacyEvaluate(Client& client, proto::RecordDict& dict) {
  PETAL_ASSIGN_OR_RETURN(
      proto::ArrayRecord params,
      TakeRecord<proto::ArrayRecord>(dict, "evaluateins.parameters", "evaluate"));
  PETAL_ASSIGN_OR_RETURN(proto::ConfigRecord config,
                         TakeRecord<proto::ConfigRecord>(dict, "evaluateins.config", "evaluate"));
  PETAL_ASSIGN_OR_RETURN(DecodedArrays arrays, DecodeArrays(std::move(params), /*legacy=*/true));
  EvaluateIns ins;
  ins.parameters = common::Share(std::move(arrays.arrays));
  PETAL_ASSIGN_OR_RETURN(ins.config, ConfigMapFromRecord(config));
  absl::StatusOr<EvaluateRes> res = CallClient<EvaluateRes>([&] { return client.Evaluate(ins); });
  if (!res.ok()) return ClientError(res.status(), "evaluate (legacy)");
  proto::RecordDict reply;
  proto::MetricRecord loss;
  AddMetric(&loss, "loss", static_cast<double>(res->loss));
  AddMetricRecord(&reply, "evaluateres.loss", std::move(loss));
  AddMetricRecord(&reply, "evaluateres.num_examples",
                  NumExamples("num_examples", res->num_examples));
  AddConfigRecord(&reply, "evaluateres.metrics", ConfigRecordFromMap(res->metrics));
  AddConfigRecord(&reply, "evaluateres.status", StatusRecord(res->status));
  return ContentOutcome(
      std::move(reply), !res->status.ok(),
      res->status.ok() ? "evaluate (legacy)" : "evaluate (legacy): " + StatusText(res->status));
}

absl::StatusOr<InstructionOutcome> LegacyGetParameters(Client& client, proto::RecordDict& dict) {
  PETAL_ASSIGN_OR_RETURN(
      proto::ConfigRecord config,
      TakeRecord<proto::ConfigRecord>(dict, "getparametersins.config", "get_parameters"));
  GetParametersIns ins;
  PETAL_ASSIGN_OR_RETURN(ins.config, ConfigMapFromRecord(config));
  absl::StatusOr<GetParametersRes> res =
      CallClient<GetParametersRes>([&] { return client.GetParameters(ins); });
  if (!res.ok()) return ClientError(res.status(), "get_parameters (legacy)");
  proto::RecordDict reply;
  PETAL_ASSIGN_OR_RETURN(proto::ArrayRecord out,
                         LegacyArrayRecord(res->parameters, res->status.ok()));
  AddArrayRecord(&reply, "getparametersres.parameters", std::move(out));
  AddConfigRecord(&reply, "getparametersres.status", StatusRecord(res->status));
  return ContentOutcome(std::move(reply), !res->status.ok(),
                        res->status.ok() ? "get_parameters (legacy)"
                                         : "get_parameters (legacy): " + StatusText(res->status));
}

absl::StatusOr<InstructionOutcome> LegacyGetProperties(Client& client, proto::RecordDict& dict) {
  PETAL_ASSIGN_OR_RETURN(
      proto::ConfigRecord config,
      TakeRecord<proto::ConfigRecord>(dict, "getpropertiesins.config", "get_properties"));
  GetPropertiesIns ins;
  PETAL_ASSIGN_OR_RETURN(ins.config, ConfigMapFromRecord(config));
  absl::StatusOr<GetPropertiesRes> res =
      CallClient<GetPropertiesRes>([&] { return client.GetProperties(ins); });
  if (!res.ok()) return ClientError(res.status(), "get_properties (legacy)");
  proto::RecordDict reply;
  AddConfigRecord(&reply, "getpropertiesres.properties", ConfigRecordFromMap(res->properties));
  AddConfigRecord(&reply, "getpropertiesres.status", StatusRecord(res->status));
  return ContentOutcome(std::move(reply), !res->status.ok(),
                        res->status.ok() ? "get_properties (legacy)"
                                         : "get_properties (legacy): " + StatusText(res->status));
}

absl::StatusOr<InstructionOutcome> CurrentTrain(Client& client, proto::RecordDict& dict) {
  PETAL_ASSIGN_OR_RETURN(common::ConfigMap config, CurrentApiConfig(dict));
  PETAL_ASSIGN_OR_RETURN(std::optional<proto::ArrayRecord> record,
                         TakeOnlyArrayRecord(dict, /*required=*/true));
  PETAL_ASSIGN_OR_RETURN(DecodedArrays arrays, DecodeArrays(std::move(*record), /*legacy=*/false));
  FitIns ins;
  ins.parameters = common::Share(std::move(arrays.arrays));
  ins.config = std::move(config);
  absl::StatusOr<FitRes> res = CallClient<FitRes>([&] { return client.Fit(ins); });
  if (!res.ok()) return ClientError(res.status(), "train");
  if (!res->status.ok()) {
    return ErrorOutcome(kErrorClientAppRaisedException, StatusText(res->status),
                        "train: the Client answered " + StatusText(res->status));
  }
  proto::RecordDict reply;
  PETAL_ASSIGN_OR_RETURN(proto::ArrayRecord out, TypedArrayRecord(res->parameters, arrays.keys));
  AddArrayRecord(&reply, "arrays", std::move(out));
  proto::MetricRecord metrics = NumExamples(kNumExamples, res->num_examples);
  std::optional<proto::ConfigRecord> others = SplitMetrics(res->metrics, &metrics);
  AddMetricRecord(&reply, "metrics", std::move(metrics));
  if (others) AddConfigRecord(&reply, "config-metrics", std::move(*others));
  return ContentOutcome(std::move(reply), false, "train");
}

absl::StatusOr<InstructionOutcome> CurrentEvaluate(Client& client, proto::RecordDict& dict) {
  PETAL_ASSIGN_OR_RETURN(common::ConfigMap config, CurrentApiConfig(dict));
  PETAL_ASSIGN_OR_RETURN(std::optional<proto::ArrayRecord> record,
                         TakeOnlyArrayRecord(dict, /*required=*/false));
  EvaluateIns ins;
  if (record) {
    PETAL_ASSIGN_OR_RETURN(DecodedArrays arrays,
                           DecodeArrays(std::move(*record), /*legacy=*/false));
    ins.parameters = common::Share(std::move(arrays.arrays));
  }
  ins.config = std::move(config);
  absl::StatusOr<EvaluateRes> res = CallClient<EvaluateRes>([&] { return client.Evaluate(ins); });
  if (!res.ok()) return ClientError(res.status(), "evaluate");
  if (!res->status.ok()) {
    return ErrorOutcome(kErrorClientAppRaisedException, StatusText(res->status),
                        "evaluate: the Client answered " + StatusText(res->status));
  }
  proto::RecordDict reply;
  proto::MetricRecord metrics = NumExamples(kNumExamples, res->num_examples);
  common::ConfigMap rest = res->metrics;
  rest.Erase("loss");
  AddMetric(&metrics, "loss", static_cast<double>(res->loss));
  std::optional<proto::ConfigRecord> others = SplitMetrics(rest, &metrics);
  AddMetricRecord(&reply, "metrics", std::move(metrics));
  if (others) AddConfigRecord(&reply, "config-metrics", std::move(*others));
  return ContentOutcome(std::move(reply), false, "evaluate");
}

absl::StatusOr<InstructionOutcome> CurrentQuery(Client& client, proto::RecordDict& dict) {
  GetPropertiesIns ins;
  PETAL_ASSIGN_OR_RETURN(ins.config, CurrentApiConfig(dict));
  absl::StatusOr<GetPropertiesRes> res =
      CallClient<GetPropertiesRes>([&] { return client.GetProperties(ins); });
  if (!res.ok()) return ClientError(res.status(), "query");
  if (!res->status.ok()) {
    return ErrorOutcome(kErrorClientAppRaisedException, StatusText(res->status),
                        "query: the Client answered " + StatusText(res->status));
  }
  proto::RecordDict reply;
  AddConfigRecord(&reply, "properties", ConfigRecordFromMap(res->properties));
  return ContentOutcome(std::move(reply), false, "query");
}

absl::StatusOr<InstructionOutcome> Dispatch(Client& client, const std::string& type,
                                            proto::RecordDict& dict) {
  PETAL_RETURN_IF_ERROR(ValidateRecordDict(dict));
  const std::string_view base = BaseType(type);
  if (base == "train") {
    if (FindRecord(dict, "fitins.parameters") || FindRecord(dict, "fitins.config"))
      return LegacyFit(client, dict);
    return CurrentTrain(client, dict);
  }
  if (base == "evaluate") {
    if (FindRecord(dict, "evaluateins.parameters") || FindRecord(dict, "evaluateins.config")) {
      return LegacyEvaluate(client, dict);
    }
    return CurrentEvaluate(client, dict);
  }
  if (base == "query") return CurrentQuery(client, dict);
  if (type == "get_parameters") return LegacyGetParameters(client, dict);
  if (type == "get_properties") return LegacyGetProperties(client, dict);
  return absl::UnimplementedError(fmt::format(
      "message type '{}' is not supported by a Petal node (train, evaluate, query, get_parameters, "
      "get_properties)",
      type));
}

}  // namespace

InstructionOutcome ErrorOutcome(int code, std::string reason, std::string description) {
  InstructionOutcome out;
  out.error.emplace();
  out.error->set_code(code);
  out.error->set_reason(std::move(reason));
  out.failed = true;
  out.description = std::move(description);
  return out;
}

InstructionOutcome HandleInstruction(Client& client, proto::Message&& instruction) {
  const std::string type = instruction.metadata().message_type();
  if (!instruction.has_content()) {
    return ErrorOutcome(kErrorUnknown, "the instruction carries no content",
                        fmt::format("{}: the instruction carries no content", type));
  }
  proto::RecordDict dict = std::move(*instruction.mutable_content());
  absl::StatusOr<InstructionOutcome> outcome = Dispatch(client, type, dict);
  if (!outcome.ok()) {
    return ErrorOutcome(kErrorClientAppRaisedException, outcome.status().ToString(),
                        fmt::format("{}: {}", type, outcome.status().ToString()));
  }
  return *std::move(outcome);
}

}  // namespace petal::client::fleet
