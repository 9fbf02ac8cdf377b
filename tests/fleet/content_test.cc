#include "client/fleet/content.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "client/fleet/records.h"
#include "common/npy.h"
#include "common/testing/status_matchers.h"

namespace petal::client::fleet {
namespace {

namespace proto = ::flwr::proto;
using common::ConfigMap;
using common::NDArray;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

NDArray F32(std::vector<float> v) {
  return *NDArray::FromVector<float>({static_cast<int64_t>(v.size())}, v);
}

// A Client that records what it was given and answers as configured.
class RecordingClient : public Client {
 public:
  absl::StatusOr<FitRes> Fit(const FitIns& ins) override {
    fit_ins = ins;
    if (throw_) throw std::runtime_error("boom");
    if (!fail_.ok()) return fail_;
    return fit_res;
  }
  absl::StatusOr<EvaluateRes> Evaluate(const EvaluateIns& ins) override {
    evaluate_ins = ins;
    if (!fail_.ok()) return fail_;
    return evaluate_res;
  }
  absl::StatusOr<GetPropertiesRes> GetProperties(const GetPropertiesIns& ins) override {
    properties_ins = ins;
    return properties_res;
  }
  absl::StatusOr<GetParametersRes> GetParameters(const GetParametersIns& ins) override {
    parameters_ins = ins;
    return parameters_res;
  }

  FitIns fit_ins;
  EvaluateIns evaluate_ins;
  GetPropertiesIns properties_ins;
  GetParametersIns parameters_ins;
  FitRes fit_res{common::SuccessStatus(), {}, 7, {}};
  EvaluateRes evaluate_res{common::SuccessStatus(), 0.25f, 9, {}};
  GetPropertiesRes properties_res{common::SuccessStatus(), {{"name", std::string("petal")}}};
  GetParametersRes parameters_res{common::SuccessStatus(), {}};
  absl::Status fail_;
  bool throw_ = false;
};

proto::Message Instruction(std::string type, proto::RecordDict content) {
  proto::Message m;
  m.mutable_metadata()->set_message_type(std::move(type));
  *m.mutable_content() = std::move(content);
  return m;
}

proto::ArrayRecord Arrays(const std::vector<std::pair<std::string, NDArray>>& arrays,
                          ArrayStyle style) {
  proto::ArrayRecord record;
  for (const auto& [key, array] : arrays) {
    auto* item = record.add_items();
    item->set_key(key);
    *item->mutable_value() = *ArrayFromNDArray(array, style);
  }
  return record;
}

std::vector<std::string> Keys(const proto::RecordDict& dict) {
  std::vector<std::string> keys;
  for (const auto& item : dict.items()) keys.push_back(item.key());
  return keys;
}

template <typename Record>
std::vector<std::string> Keys(const Record& record) {
  std::vector<std::string> keys;
  for (const auto& item : record.items()) keys.push_back(item.key());
  return keys;
}

const proto::ConfigRecordValue& ConfigValue(const proto::ConfigRecord& record,
                                            std::string_view key) {
  for (const auto& item : record.items()) {
    if (item.key() == key) return item.value();
  }
  static proto::ConfigRecordValue none;
  ADD_FAILURE() << "no key " << key;
  return none;
}

const proto::MetricRecordValue& MetricValue(const proto::MetricRecord& record,
                                            std::string_view key) {
  for (const auto& item : record.items()) {
    if (item.key() == key) return item.value();
  }
  static proto::MetricRecordValue none;
  ADD_FAILURE() << "no key " << key;
  return none;
}

// --- current strategy API ------------------------------------------------------

TEST(ContentTest, CurrentApiTrainKeepsKeysAndReportsNumExamples) {
  RecordingClient client;
  client.fit_res.parameters = {F32({1, 2}), F32({3})};
  client.fit_res.metrics =
      ConfigMap{{"acc", 0.5}, {"note", std::string("ok")}, {"steps", int64_t{4}}};
  proto::RecordDict content;
  AddArrayRecord(&content, "arrays",
                 Arrays({{"fc.weight", F32({0, 0})}, {"fc.bias", F32({0})}}, ArrayStyle::kTyped));
  proto::ConfigRecord config;
  AddConfig(&config, "server-round", int64_t{3});
  AddConfig(&config, "lr", 0.1);
  AddConfigRecord(&content, "config", config);

  InstructionOutcome out = HandleInstruction(client, Instruction("train", content));
  ASSERT_TRUE(out.content.has_value()) << out.description;
  EXPECT_FALSE(out.failed);
  EXPECT_THAT(client.fit_ins.config.GetInt("server-round"), ::petal::testing::IsOkAndHolds(3));
  ASSERT_EQ(client.fit_ins.parameters->size(), 2u);
  EXPECT_EQ((*client.fit_ins.parameters)[0], F32({0, 0}));

  EXPECT_THAT(Keys(*out.content), ElementsAre("arrays", "metrics", "config-metrics"));
  const auto& arrays = out.content->items(0).array_record();
  EXPECT_THAT(Keys(arrays), ElementsAre("fc.weight", "fc.bias"));
  EXPECT_EQ(arrays.items(0).value().dtype(), "float32");
  EXPECT_THAT(arrays.items(0).value().shape(), ElementsAre(2));
  EXPECT_EQ(arrays.items(0).value().stype(), "numpy.ndarray");
  EXPECT_EQ(arrays.items(0).value().data(), common::EncodeNpy(F32({1, 2})));
  const auto& metrics = out.content->items(1).metric_record();
  EXPECT_THAT(Keys(metrics), ElementsAre("num-examples", "acc", "steps"));
  EXPECT_EQ(MetricValue(metrics, "num-examples").sint64(), 7);
  EXPECT_EQ(MetricValue(metrics, "acc").double_(), 0.5);
  EXPECT_EQ(ConfigValue(out.content->items(2).config_record(), "note").string(), "ok");
}

TEST(ContentTest, CurrentApiPositionalKeysFollowTheReplyLength) {
  RecordingClient client;
  client.fit_res.parameters = {F32({1}), F32({2}), F32({3})};
  proto::RecordDict content;
  AddArrayRecord(&content, "arrays", Arrays({{"0", F32({0})}}, ArrayStyle::kTyped));
  InstructionOutcome out = HandleInstruction(client, Instruction("train.custom", content));
  ASSERT_TRUE(out.content.has_value()) << out.description;
  EXPECT_THAT(Keys(out.content->items(0).array_record()), ElementsAre("0", "1", "2"));

  // Named keys cannot be guessed: an error reply.
  proto::RecordDict named;
  AddArrayRecord(&named, "arrays", Arrays({{"w", F32({0})}}, ArrayStyle::kTyped));
  out = HandleInstruction(client, Instruction("train", named));
  ASSERT_TRUE(out.error.has_value());
  EXPECT_EQ(out.error->code(), kErrorClientAppRaisedException);
  EXPECT_THAT(out.error->reason(), HasSubstr("returned 3 arrays"));
}

TEST(ContentTest, CurrentApiEvaluateAndQuery) {
  RecordingClient client;
  client.evaluate_res.metrics = ConfigMap{{"hr@10", 0.75}};
  proto::RecordDict content;
  AddArrayRecord(&content, "arrays", Arrays({{"0", F32({1})}}, ArrayStyle::kTyped));
  InstructionOutcome out = HandleInstruction(client, Instruction("evaluate", content));
  ASSERT_TRUE(out.content.has_value()) << out.description;
  EXPECT_THAT(Keys(*out.content), ElementsAre("metrics"));
  const auto& metrics = out.content->items(0).metric_record();
  EXPECT_THAT(Keys(metrics), ElementsAre("num-examples", "loss", "hr@10"));
  EXPECT_EQ(MetricValue(metrics, "num-examples").sint64(), 9);
  EXPECT_EQ(MetricValue(metrics, "loss").double_(), 0.25);

  proto::RecordDict query;
  proto::ConfigRecord config;
  AddConfig(&config, "what", std::string("all"));
  AddConfigRecord(&query, "config", config);
  out = HandleInstruction(client, Instruction("query", query));
  ASSERT_TRUE(out.content.has_value()) << out.description;
  EXPECT_THAT(client.properties_ins.config.GetString("what"),
              ::petal::testing::IsOkAndHolds(std::string("all")));
  EXPECT_EQ(ConfigValue(out.content->items(0).config_record(), "name").string(), "petal");
}

TEST(ContentTest, FailuresBecomeErrorReplies) {
  proto::RecordDict content;
  AddArrayRecord(&content, "arrays", Arrays({{"0", F32({1})}}, ArrayStyle::kTyped));
  {
    RecordingClient client;
    client.fail_ = absl::ResourceExhaustedError("out of memory");
    InstructionOutcome out = HandleInstruction(client, Instruction("train", content));
    ASSERT_TRUE(out.error.has_value());
    EXPECT_TRUE(out.failed);
    EXPECT_EQ(out.error->code(), 2);
    EXPECT_THAT(out.error->reason(), HasSubstr("out of memory"));
  }
  {
    RecordingClient client;
    client.throw_ = true;
    InstructionOutcome out = HandleInstruction(client, Instruction("train", content));
    ASSERT_TRUE(out.error.has_value());
    EXPECT_THAT(out.error->reason(), HasSubstr("threw an exception: boom"));
  }
  {
    // A Client that does not implement fit: the current API has no status, so an error.
    Client plain;
    InstructionOutcome out = HandleInstruction(plain, Instruction("train", content));
    ASSERT_TRUE(out.error.has_value());
    EXPECT_THAT(out.error->reason(), HasSubstr("Client does not implement `fit`"));
  }
  RecordingClient client;
  auto error_of = [&](proto::Message m) {
    InstructionOutcome out = HandleInstruction(client, std::move(m));
    EXPECT_TRUE(out.error.has_value()) << out.description;
    return out.error.has_value() ? out.error->reason() : std::string();
  };
  EXPECT_THAT(error_of(Instruction("unknown", content)), HasSubstr("not supported"));
  proto::RecordDict two = content;
  AddArrayRecord(&two, "more", Arrays({{"0", F32({1})}}, ArrayStyle::kTyped));
  EXPECT_THAT(error_of(Instruction("train", two)), HasSubstr("found 2"));
  proto::RecordDict list = content;
  proto::ConfigRecord config;
  auto* item = config.add_items();
  item->set_key("sizes");
  item->mutable_value()->mutable_sint_list()->add_vals(1);
  AddConfigRecord(&list, "config", config);
  EXPECT_THAT(error_of(Instruction("train", list)), HasSubstr("'sizes' holds a list"));
  proto::RecordDict broken = content;
  broken.mutable_items(0)->mutable_array_record()->mutable_items(0)->mutable_value()->set_data(
      "garbage");
  EXPECT_THAT(error_of(Instruction("train", broken)), HasSubstr("array '0'"));
  proto::RecordDict mismatched = content;
  mismatched.mutable_items(0)->mutable_array_record()->mutable_items(0)->mutable_value()->set_dtype(
      "float64");
  EXPECT_THAT(error_of(Instruction("train", mismatched)), HasSubstr("disagrees"));
  proto::RecordDict duplicate = content;
  AddConfigRecord(&duplicate, "arrays", proto::ConfigRecord());
  EXPECT_THAT(error_of(Instruction("train", duplicate)), HasSubstr("repeats key 'arrays'"));
  proto::Message empty;
  empty.mutable_metadata()->set_message_type("train");
  EXPECT_THAT(error_of(empty), HasSubstr("no content"));
}

// --- legacy strategies (DefaultWorkflow compat records) -------------------------

TEST(ContentTest, LegacyTrainUsesCompatKeys) {
  RecordingClient client;
  client.fit_res.parameters = {F32({5, 6})};
  client.fit_res.metrics = ConfigMap{{"acc", 0.5}};
  proto::RecordDict content;
  AddArrayRecord(&content, "fitins.parameters", Arrays({{"0", F32({1, 2})}}, ArrayStyle::kUntyped));
  proto::ConfigRecord config;
  AddConfig(&config, "epochs", int64_t{2});
  AddConfigRecord(&content, "fitins.config", config);
  InstructionOutcome out = HandleInstruction(client, Instruction("train", content));
  ASSERT_TRUE(out.content.has_value()) << out.description;
  EXPECT_EQ((*client.fit_ins.parameters)[0], F32({1, 2}));
  EXPECT_THAT(client.fit_ins.config.GetInt("epochs"), ::petal::testing::IsOkAndHolds(2));
  EXPECT_THAT(Keys(*out.content), ElementsAre("fitres.metrics", "fitres.num_examples",
                                              "fitres.parameters", "fitres.status"));
  EXPECT_EQ(MetricValue(out.content->items(1).metric_record(), "num_examples").sint64(), 7);
  const auto& params = out.content->items(2).array_record();
  EXPECT_THAT(Keys(params), ElementsAre("0"));
  EXPECT_EQ(params.items(0).value().dtype(), "");
  EXPECT_EQ(params.items(0).value().shape_size(), 0);
  EXPECT_EQ(params.items(0).value().stype(), "numpy.ndarray");
  EXPECT_EQ(params.items(0).value().data(), common::EncodeNpy(F32({5, 6})));
  const auto& status = out.content->items(3).config_record();
  EXPECT_THAT(Keys(status), ElementsAre("code", "message"));
  EXPECT_EQ(ConfigValue(status, "code").sint64(), 0);
  EXPECT_EQ(ConfigValue(status, "message").string(), "Success");
}

TEST(ContentTest, LegacyNotImplementedTravelsAsStatusLikePython) {
  Client plain;
  proto::RecordDict content;
  AddArrayRecord(&content, "fitins.parameters", Arrays({}, ArrayStyle::kUntyped));
  AddConfigRecord(&content, "fitins.config", proto::ConfigRecord());
  InstructionOutcome out = HandleInstruction(plain, Instruction("train", content));
  ASSERT_TRUE(out.content.has_value()) << out.description;
  EXPECT_TRUE(out.failed);
  const auto& params = FindRecord(*out.content, "fitres.parameters")->array_record();
  EXPECT_THAT(Keys(params), ElementsAre("_empty"));
  EXPECT_EQ(params.items(0).value().stype(), "");  // Parameters(tensor_type="")
  const auto& status = FindRecord(*out.content, "fitres.status")->config_record();
  EXPECT_EQ(ConfigValue(status, "code").sint64(), 3);
  EXPECT_EQ(ConfigValue(status, "message").string(), "Client does not implement `fit`");
}

TEST(ContentTest, LegacyEvaluateGetParametersAndGetProperties) {
  RecordingClient client;
  proto::RecordDict content;
  AddArrayRecord(&content, "evaluateins.parameters",
                 Arrays({{"0", F32({1})}}, ArrayStyle::kUntyped));
  AddConfigRecord(&content, "evaluateins.config", proto::ConfigRecord());
  InstructionOutcome out = HandleInstruction(client, Instruction("evaluate", content));
  ASSERT_TRUE(out.content.has_value()) << out.description;
  EXPECT_THAT(Keys(*out.content), ElementsAre("evaluateres.loss", "evaluateres.num_examples",
                                              "evaluateres.metrics", "evaluateres.status"));
  EXPECT_EQ(MetricValue(out.content->items(0).metric_record(), "loss").double_(), 0.25);

  client.parameters_res.parameters = {F32({4})};
  proto::RecordDict gp;
  AddConfigRecord(&gp, "getparametersins.config", proto::ConfigRecord());
  out = HandleInstruction(client, Instruction("get_parameters", gp));
  ASSERT_TRUE(out.content.has_value()) << out.description;
  EXPECT_THAT(Keys(*out.content),
              ElementsAre("getparametersres.parameters", "getparametersres.status"));

  proto::RecordDict props;
  AddConfigRecord(&props, "getpropertiesins.config", proto::ConfigRecord());
  out = HandleInstruction(client, Instruction("get_properties", props));
  ASSERT_TRUE(out.content.has_value()) << out.description;
  EXPECT_THAT(Keys(*out.content),
              ElementsAre("getpropertiesres.properties", "getpropertiesres.status"));

  // A legacy instruction missing a record is an error reply.
  proto::RecordDict half;
  AddArrayRecord(&half, "fitins.parameters", Arrays({}, ArrayStyle::kUntyped));
  out = HandleInstruction(client, Instruction("train", half));
  ASSERT_TRUE(out.error.has_value());
  EXPECT_THAT(out.error->reason(), HasSubstr("lacks the record 'fitins.config'"));
}

// --- records --------------------------------------------------------------------

TEST(RecordsTest, ConfigTypingFollowsPython) {
  ConfigMap map{{"b", true},
                {"i", int64_t{-3}},
                {"d", 1.5},
                {"s", std::string("x")},
                {"y", common::Bytes{"\x01"}}};
  map.SetUint("big", uint64_t{1} << 63);
  map.Set("small_u", uint64_t{5});
  proto::ConfigRecord record = ConfigRecordFromMap(map);
  EXPECT_EQ(ConfigValue(record, "b").value_case(), proto::ConfigRecordValue::kBool);
  EXPECT_EQ(ConfigValue(record, "i").sint64(), -3);
  EXPECT_EQ(ConfigValue(record, "big").uint64(), uint64_t{1} << 63);
  EXPECT_EQ(ConfigValue(record, "small_u").value_case(), proto::ConfigRecordValue::kSint64);
  PETAL_ASSERT_OK_AND_ASSIGN(ConfigMap back, ConfigMapFromRecord(record));
  EXPECT_EQ(back.size(), map.size());
  EXPECT_THAT(back.GetUint("big"), ::petal::testing::IsOkAndHolds(uint64_t{1} << 63));
  EXPECT_THAT(back.GetBytes("y"), ::petal::testing::IsOkAndHolds(std::string("\x01")));
  proto::ConfigRecord empty_value;
  empty_value.add_items()->set_key("nothing");
  EXPECT_THAT(ConfigMapFromRecord(empty_value),
              ::petal::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("'nothing' has no value")));
}

TEST(RecordsTest, ArraysRoundTripInBothStyles) {
  NDArray a = *NDArray::FromVector<double>({2, 2}, {1, 2, 3, 4});
  PETAL_ASSERT_OK_AND_ASSIGN(proto::Array typed, ArrayFromNDArray(a, ArrayStyle::kTyped));
  EXPECT_EQ(typed.dtype(), "float64");
  EXPECT_THAT(typed.shape(), ElementsAre(2, 2));
  EXPECT_THAT(NDArrayFromArray(typed), ::petal::testing::IsOkAndHolds(a));
  PETAL_ASSERT_OK_AND_ASSIGN(proto::Array untyped, ArrayFromNDArray(a, ArrayStyle::kUntyped));
  EXPECT_EQ(untyped.dtype(), "");
  EXPECT_EQ(untyped.shape_size(), 0);
  EXPECT_THAT(NDArrayFromArray(std::move(untyped)), ::petal::testing::IsOkAndHolds(a));
  proto::Array wrong_shape = typed;
  wrong_shape.set_shape(0, 4);
  EXPECT_THAT(NDArrayFromArray(wrong_shape),
              ::petal::testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shape")));
  proto::Array torch = typed;
  torch.set_stype("torch.Tensor");
  EXPECT_THAT(NDArrayFromArray(torch),
              ::petal::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("stype 'torch.Tensor'")));
}

}  // namespace
}  // namespace petal::client::fleet
