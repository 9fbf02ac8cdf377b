#include "common/serde.h"

#include <limits>

#include "common/npy.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

using ::petal::testing::IsOkAndHolds;
using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ScalarSerdeTest, EachTypeUsesFlowersField) {
  using S = flwr::proto::Scalar;
  EXPECT_EQ(ScalarToProto(Scalar(true)).scalar_case(), S::kBool);
  EXPECT_EQ(ScalarToProto(Scalar(Bytes{"ab"})).scalar_case(), S::kBytes);
  EXPECT_EQ(ScalarToProto(Scalar(1.5)).scalar_case(), S::kDouble);
  EXPECT_EQ(ScalarToProto(Scalar(int64_t{-4})).scalar_case(), S::kSint64);
  EXPECT_EQ(ScalarToProto(Scalar(std::string("s"))).scalar_case(), S::kString);
  // Python: int -> sint64 unless it exceeds INT64_MAX.
  EXPECT_EQ(ScalarToProto(Scalar(uint64_t{7})).scalar_case(), S::kSint64);
  EXPECT_EQ(ScalarToProto(Scalar(uint64_t{1} << 63)).scalar_case(), S::kUint64);
}

TEST(ScalarSerdeTest, RoundTripsValues) {
  for (const Scalar& v : {Scalar(false), Scalar(Bytes{std::string("\0x", 2)}), Scalar(-0.25),
                          Scalar(std::numeric_limits<int64_t>::min()),
                          Scalar(std::numeric_limits<uint64_t>::max()), Scalar(std::string("é"))}) {
    EXPECT_THAT(ScalarFromProto(ScalarToProto(v)), IsOkAndHolds(v)) << ScalarToString(v);
  }
}

TEST(ScalarSerdeTest, EmptyScalarIsAnError) {
  EXPECT_THAT(ScalarFromProto(flwr::proto::Scalar()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no value")));
}

TEST(ConfigMapSerdeTest, RoundTripsAndNamesBadKey) {
  ConfigMap m{{"lr", 0.1}, {"epochs", int64_t{2}}, {"tag", std::string("x")}};
  ProtoScalarMap proto;
  ConfigMapToProto(m, &proto);
  EXPECT_EQ(proto.size(), 3u);
  EXPECT_THAT(ConfigMapFromProto(proto), IsOkAndHolds(m));
  proto["broken"] = flwr::proto::Scalar();
  EXPECT_THAT(ConfigMapFromProto(proto),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key 'broken'")));
}

TEST(ParametersSerdeTest, RoundTripsArraysAsNpy) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::FromVector<float>({2, 2}, {1, 2, 3, 4}));
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray b, NDArray::FromVector<int64_t>({3}, {7, 8, 9}));
  flwr::proto::Parameters p = NDArraysToParameters({a, b});
  EXPECT_EQ(p.tensor_type(), "numpy.ndarray");
  ASSERT_EQ(p.tensors_size(), 2);
  EXPECT_EQ(p.tensors(0), EncodeNpy(a));
  EXPECT_THAT(ParametersToNDArrays(p), IsOkAndHolds(ElementsAre(a, b)));
  EXPECT_THAT(ParametersToNDArrays(std::move(p)), IsOkAndHolds(ElementsAre(a, b)));
}

TEST(ParametersSerdeTest, EmptyParametersAreValid) {
  flwr::proto::Parameters p;  // Flower's Parameters(tensors=[], tensor_type="")
  EXPECT_THAT(ParametersToNDArrays(p), IsOkAndHolds(ElementsAre()));
}

TEST(ParametersSerdeTest, RejectsOtherTensorTypeAndNamesBadTensor) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::FromVector<double>({1}, {1.0}));
  flwr::proto::Parameters p = NDArraysToParameters({a, a});
  p.set_tensor_type("cpp_double");
  EXPECT_THAT(ParametersToNDArrays(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'cpp_double'")));
  p.set_tensor_type("numpy.ndarray");
  p.mutable_tensors(1)->resize(20);
  EXPECT_THAT(ParametersToNDArrays(p),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tensor 1: ")));
}

}  // namespace
}  // namespace petal::common
