#include "client/message_handler.h"

#include "client/transport.h"
#include "common/serde.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace petal::client {
namespace {

using ::petal::client::testing::AddingClient;
using ::petal::client::testing::BareClient;
using ::petal::client::testing::EvaluateMessage;
using ::petal::client::testing::FitMessage;
using ::petal::client::testing::Floats;
using ::petal::client::testing::GetParametersMessage;
using ::petal::client::testing::GetPropertiesMessage;
using ::petal::client::testing::ReconnectMessage;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int64_t kNoLimit = kFlowerMaxMessageLength;

TEST(MessageHandlerTest, FitIsAnsweredWithTheClientsFitRes) {
  AddingClient client(0.5f, 7);
  HandledInstruction h = HandleServerMessage(
      client, FitMessage({Floats({2}, {1.0f, 2.0f})}, {{"local_epochs", int64_t{2}}}), kNoLimit);
  ASSERT_EQ(h.kind, InstructionKind::kFit);
  ASSERT_TRUE(h.reply.has_value());
  EXPECT_FALSE(h.failed);
  EXPECT_TRUE(h.error.empty());
  ASSERT_TRUE(h.reply->has_fit_res());
  const auto& res = h.reply->fit_res();
  EXPECT_EQ(res.status().code(), flwr::proto::OK);
  EXPECT_EQ(res.status().message(), "Success");
  EXPECT_EQ(res.num_examples(), 7);
  EXPECT_EQ(res.parameters().tensor_type(), "numpy.ndarray");
  PETAL_ASSERT_OK_AND_ASSIGN(common::NDArrays arrays,
                             common::ParametersToNDArrays(res.parameters()));
  ASSERT_EQ(arrays.size(), 1u);
  EXPECT_THAT(arrays[0].values<float>(), ElementsAre(2.0f, 3.0f));
  EXPECT_EQ(res.metrics().at("delta").double_(), 0.5);
}

TEST(MessageHandlerTest, EveryKindGetsTheMatchingReply) {
  AddingClient client;
  HandledInstruction props =
      HandleServerMessage(client, GetPropertiesMessage({{"a", true}}), kNoLimit);
  EXPECT_EQ(props.kind, InstructionKind::kGetProperties);
  ASSERT_TRUE(props.reply->has_get_properties_res());
  EXPECT_EQ(props.reply->get_properties_res().properties().at("echo").sint64(), 1);
  EXPECT_EQ(props.reply->get_properties_res().status().message(), "Success");

  HandledInstruction params = HandleServerMessage(client, GetParametersMessage(), kNoLimit);
  EXPECT_EQ(params.kind, InstructionKind::kGetParameters);
  ASSERT_TRUE(params.reply->has_get_parameters_res());
  EXPECT_EQ(params.reply->get_parameters_res().parameters().tensors_size(), 1);

  HandledInstruction eval = HandleServerMessage(
      client, EvaluateMessage({Floats({1}, {1.0f}), Floats({1}, {2.0f})}), kNoLimit);
  EXPECT_EQ(eval.kind, InstructionKind::kEvaluate);
  ASSERT_TRUE(eval.reply->has_evaluate_res());
  EXPECT_EQ(eval.reply->evaluate_res().loss(), 0.25f);
  EXPECT_EQ(eval.reply->evaluate_res().num_examples(), 10);
  EXPECT_EQ(eval.reply->evaluate_res().metrics().at("arrays").sint64(), 2);
}

TEST(MessageHandlerTest, ReconnectIsAnsweredWithDisconnectResReconnectWhateverTheSeconds) {
  BareClient client;
  for (int64_t seconds : {0, 5}) {
    HandledInstruction h = HandleServerMessage(client, ReconnectMessage(seconds), kNoLimit);
    EXPECT_EQ(h.kind, InstructionKind::kReconnect);
    EXPECT_EQ(h.reconnect_seconds, seconds);
    ASSERT_TRUE(h.reply.has_value());
    ASSERT_TRUE(h.reply->has_disconnect_res());
    EXPECT_EQ(h.reply->disconnect_res().reason(), flwr::proto::RECONNECT);
  }
}

TEST(MessageHandlerTest, UnimplementedMethodsAnswerLikeFlowersClientWithOnlyTheStatus) {
  BareClient client;
  HandledInstruction props = HandleServerMessage(client, GetPropertiesMessage(), kNoLimit);
  EXPECT_TRUE(props.failed);
  EXPECT_TRUE(props.error.empty());
  flwr::proto::ClientMessage want;
  want.mutable_get_properties_res()->mutable_status()->set_code(
      flwr::proto::GET_PROPERTIES_NOT_IMPLEMENTED);
  want.mutable_get_properties_res()->mutable_status()->set_message(
      "Client does not implement `get_properties`");
  EXPECT_EQ(props.reply->SerializeAsString(), want.SerializeAsString());

  HandledInstruction params = HandleServerMessage(client, GetParametersMessage(), kNoLimit);
  want.Clear();
  want.mutable_get_parameters_res()->mutable_status()->set_code(
      flwr::proto::GET_PARAMETERS_NOT_IMPLEMENTED);
  want.mutable_get_parameters_res()->mutable_status()->set_message(
      "Client does not implement `get_parameters`");
  EXPECT_EQ(params.reply->SerializeAsString(), want.SerializeAsString());

  HandledInstruction fit = HandleServerMessage(client, FitMessage({Floats({1}, {1.0f})}), kNoLimit);
  want.Clear();
  want.mutable_fit_res()->mutable_status()->set_code(flwr::proto::FIT_NOT_IMPLEMENTED);
  want.mutable_fit_res()->mutable_status()->set_message("Client does not implement `fit`");
  EXPECT_EQ(fit.reply->SerializeAsString(), want.SerializeAsString());

  HandledInstruction eval = HandleServerMessage(client, EvaluateMessage({}), kNoLimit);
  want.Clear();
  want.mutable_evaluate_res()->mutable_status()->set_code(flwr::proto::EVALUATE_NOT_IMPLEMENTED);
  want.mutable_evaluate_res()->mutable_status()->set_message(
      "Client does not implement `evaluate`");
  EXPECT_EQ(eval.reply->SerializeAsString(), want.SerializeAsString());
}

TEST(MessageHandlerTest, UndecodableTensorIsAFailureReplyNamingTheTensor) {
  AddingClient client;
  flwr::proto::ServerMessage m = FitMessage({Floats({1}, {1.0f}), Floats({1}, {2.0f})});
  m.mutable_fit_ins()->mutable_parameters()->mutable_tensors(1)->assign("not an npy file");
  HandledInstruction h = HandleServerMessage(client, std::move(m), kNoLimit);
  EXPECT_TRUE(h.failed);
  EXPECT_THAT(h.error, StartsWith("error: INVALID_ARGUMENT: fit_ins: tensor 1:"));
  ASSERT_TRUE(h.reply->has_fit_res());
  EXPECT_EQ(h.reply->fit_res().status().code(), flwr::proto::FIT_NOT_IMPLEMENTED);
  EXPECT_EQ(h.reply->fit_res().status().message(), h.error);
  EXPECT_FALSE(h.reply->fit_res().has_parameters());
  EXPECT_EQ(h.reply->fit_res().num_examples(), 0);
}

TEST(MessageHandlerTest, UnsupportedTensorTypeIsAFailure) {
  AddingClient client;
  flwr::proto::ServerMessage m = EvaluateMessage({Floats({1}, {1.0f})});
  m.mutable_evaluate_ins()->mutable_parameters()->set_tensor_type("cpp_double");
  HandledInstruction h = HandleServerMessage(client, std::move(m), kNoLimit);
  EXPECT_TRUE(h.failed);
  EXPECT_EQ(h.reply->evaluate_res().status().code(), flwr::proto::EVALUATE_NOT_IMPLEMENTED);
  EXPECT_THAT(h.reply->evaluate_res().status().message(), HasSubstr("cpp_double"));
}

TEST(MessageHandlerTest, EmptyScalarInConfigIsAFailureNamingTheKey) {
  AddingClient client;
  flwr::proto::ServerMessage m = GetPropertiesMessage();
  (*m.mutable_get_properties_ins()->mutable_config())["broken"];  // Scalar with no value
  HandledInstruction h = HandleServerMessage(client, std::move(m), kNoLimit);
  EXPECT_TRUE(h.failed);
  EXPECT_EQ(h.reply->get_properties_res().status().code(),
            flwr::proto::GET_PROPERTIES_NOT_IMPLEMENTED);
  EXPECT_THAT(h.error, HasSubstr("get_properties_ins: key 'broken'"));
}

TEST(MessageHandlerTest, ConfigValueOfTheWrongTypeIsReportedByTheClient) {
  AddingClient client;
  HandledInstruction h = HandleServerMessage(
      client, FitMessage({Floats({1}, {1.0f})}, {{"local_epochs", std::string("two")}}), kNoLimit);
  EXPECT_TRUE(h.failed);
  EXPECT_THAT(h.error, StartsWith("error: INVALID_ARGUMENT:"));
  EXPECT_THAT(h.error, HasSubstr("local_epochs"));
  EXPECT_EQ(h.reply->fit_res().status().code(), flwr::proto::FIT_NOT_IMPLEMENTED);
}

TEST(MessageHandlerTest, ClientErrorsAndExceptionsBecomeFailureReplies) {
  AddingClient client;
  HandledInstruction failed =
      HandleServerMessage(client, FitMessage({}, {{"fail", true}}), kNoLimit);
  EXPECT_EQ(failed.reply->fit_res().status().message(),
            "error: FAILED_PRECONDITION: asked to fail");
  HandledInstruction threw =
      HandleServerMessage(client, FitMessage({}, {{"throw", true}}), kNoLimit);
  EXPECT_EQ(threw.reply->fit_res().status().code(), flwr::proto::FIT_NOT_IMPLEMENTED);
  EXPECT_EQ(threw.reply->fit_res().status().message(),
            "error: INTERNAL: the client raised an exception: boom");
}

TEST(MessageHandlerTest, WrongDtypeIsAFailureFromTheClient) {
  AddingClient client;
  common::NDArray doubles = *common::NDArray::FromVector<double>({1}, {1.0});
  HandledInstruction h = HandleServerMessage(client, FitMessage({doubles}), kNoLimit);
  EXPECT_TRUE(h.failed);
  EXPECT_THAT(h.error, HasSubstr("float"));
}

TEST(MessageHandlerTest, ReplyLargerThanTheLimitIsReplacedByAFailure) {
  AddingClient client;
  std::vector<float> big(1000, 1.0f);
  HandledInstruction h = HandleServerMessage(client, FitMessage({Floats({1000}, big)}), 1024);
  EXPECT_TRUE(h.failed);
  EXPECT_THAT(h.error, HasSubstr("RESOURCE_EXHAUSTED"));
  EXPECT_THAT(h.error, HasSubstr("more than max_message_length (1024 bytes)"));
  EXPECT_EQ(h.reply->fit_res().status().code(), flwr::proto::FIT_NOT_IMPLEMENTED);
  EXPECT_LE(h.reply->ByteSizeLong(), 1024u);
}

TEST(MessageHandlerTest, EmptyOrUnknownServerMessageGetsNoReply) {
  BareClient client;
  HandledInstruction empty = HandleServerMessage(client, flwr::proto::ServerMessage(), kNoLimit);
  EXPECT_EQ(empty.kind, InstructionKind::kUnknown);
  EXPECT_FALSE(empty.reply.has_value());
  EXPECT_THAT(empty.error, HasSubstr("empty ServerMessage"));

  flwr::proto::ServerMessage future;
  future.GetReflection()->MutableUnknownFields(&future)->AddVarint(42, 1);
  HandledInstruction unknown = HandleServerMessage(client, std::move(future), kNoLimit);
  EXPECT_EQ(unknown.kind, InstructionKind::kUnknown);
  EXPECT_FALSE(unknown.reply.has_value());
  EXPECT_THAT(unknown.error, HasSubstr("does not know"));
}

}  // namespace
}  // namespace petal::client
