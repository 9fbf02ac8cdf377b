#include "common/messages.h"

#include "common/serde.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

using ::testing::ElementsAre;

NDArrays TwoArrays() {
  return {*NDArray::FromVector<float>({2}, {1, 2}), *NDArray::FromVector<int64_t>({1}, {9})};
}

TEST(MessagesSerdeTest, FitInsRoundTrip) {
  FitIns ins{Share(TwoArrays()), ConfigMap{{"lr", 0.1}}};
  flwr::proto::ServerMessage::FitIns proto;
  FitInsToProto(ins, &proto);
  EXPECT_EQ(proto.parameters().tensor_type(), "numpy.ndarray");
  PETAL_ASSERT_OK_AND_ASSIGN(FitIns back, FitInsFromProto(std::move(proto)));
  EXPECT_EQ(*back.parameters, *ins.parameters);
  EXPECT_EQ(back.config, ins.config);
}

TEST(MessagesSerdeTest, FitResRoundTripAndNotImplementedCarriesOnlyStatus) {
  FitRes res{SuccessStatus(), TwoArrays(), 12, ConfigMap{{"loss", 0.5}}};
  flwr::proto::ClientMessage::FitRes proto;
  FitResToProto(res, &proto);
  PETAL_ASSERT_OK_AND_ASSIGN(FitRes back, FitResFromProto(std::move(proto)));
  EXPECT_EQ(back.status, res.status);
  EXPECT_EQ(back.parameters, res.parameters);
  EXPECT_EQ(back.num_examples, 12);
  EXPECT_EQ(back.metrics, res.metrics);

  FitRes nope{{Code::kFitNotImplemented, "Client does not implement `fit`"}, TwoArrays(), 5, {}};
  flwr::proto::ClientMessage::FitRes p2;
  FitResToProto(nope, &p2);
  EXPECT_FALSE(p2.has_parameters());
  EXPECT_EQ(p2.num_examples(), 0);
  EXPECT_EQ(p2.status().code(), flwr::proto::FIT_NOT_IMPLEMENTED);
}

TEST(MessagesSerdeTest, EvaluateResLossIsFloat32) {
  EvaluateRes res{SuccessStatus(), 0.1f, 3, ConfigMap{{"hr@10", 0.4}}};
  flwr::proto::ClientMessage::EvaluateRes proto;
  EvaluateResToProto(res, &proto);
  PETAL_ASSERT_OK_AND_ASSIGN(EvaluateRes back, EvaluateResFromProto(proto));
  EXPECT_EQ(back.loss, 0.1f);
  EXPECT_EQ(back.metrics, res.metrics);
}

TEST(MessagesSerdeTest, OtherMessages) {
  flwr::proto::ServerMessage::GetParametersIns gp;
  GetParametersInsToProto(GetParametersIns{ConfigMap{{"x", true}}}, &gp);
  PETAL_ASSERT_OK_AND_ASSIGN(GetParametersIns gpi, GetParametersInsFromProto(gp));
  EXPECT_EQ(gpi.config, (ConfigMap{{"x", true}}));

  flwr::proto::ClientMessage::GetParametersRes gpr;
  GetParametersResToProto(GetParametersRes{SuccessStatus(), TwoArrays()}, &gpr);
  PETAL_ASSERT_OK_AND_ASSIGN(GetParametersRes gprr, GetParametersResFromProto(std::move(gpr)));
  EXPECT_EQ(gprr.parameters, TwoArrays());

  flwr::proto::ClientMessage::GetPropertiesRes props;
  GetPropertiesResToProto(GetPropertiesRes{SuccessStatus(), ConfigMap{{"os", std::string("linux")}}},
                          &props);
  PETAL_ASSERT_OK_AND_ASSIGN(GetPropertiesRes pr, GetPropertiesResFromProto(props));
  EXPECT_EQ(pr.properties, (ConfigMap{{"os", std::string("linux")}}));

  EXPECT_EQ(CodeName(Code::kEvaluateNotImplemented), "EVALUATE_NOT_IMPLEMENTED");
}

TEST(MessagesSerdeTest, BadTensorsInReplyAreErrors) {
  flwr::proto::ClientMessage::FitRes proto;
  proto.mutable_parameters()->set_tensor_type("numpy.ndarray");
  proto.mutable_parameters()->add_tensors("garbage");
  EXPECT_THAT(FitResFromProto(std::move(proto)),
              ::petal::testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace petal::common
