#include "common/ndarray.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

using ::petal::testing::IsOkAndHolds;
using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(DTypeTest, SizesAndNamesMatchNumpy) {
  EXPECT_EQ(DTypeSize(DType::kFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4u);
  EXPECT_EQ(DTypeSize(DType::kFloat64), 8u);
  EXPECT_EQ(DTypeSize(DType::kInt32), 4u);
  EXPECT_EQ(DTypeSize(DType::kInt64), 8u);
  EXPECT_EQ(DTypeSize(DType::kUInt8), 1u);
  EXPECT_EQ(DTypeSize(DType::kBool), 1u);
  for (DType d : {DType::kFloat16, DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64,
                  DType::kUInt8, DType::kBool}) {
    EXPECT_THAT(DTypeFromName(DTypeName(d)), IsOkAndHolds(d));
  }
  EXPECT_THAT(DTypeFromName("complex64"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("complex64")));
}

TEST(NumElementsTest, CountsAndRejectsBadShapes) {
  EXPECT_THAT(NumElements({}), IsOkAndHolds(1));
  EXPECT_THAT(NumElements({0}), IsOkAndHolds(0));
  EXPECT_THAT(NumElements({2, 3, 4}), IsOkAndHolds(24));
  EXPECT_THAT(NumElements({2, -1}), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("negative dimension at axis 1")));
  const int64_t big = std::numeric_limits<int64_t>::max() / 2;
  EXPECT_THAT(NumElements({big, 3}), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(NumElements({big}, 8), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(ShapeToStringTest, MatchesPythonTupleRepr) {
  EXPECT_EQ(ShapeToString({}), "()");
  EXPECT_EQ(ShapeToString({3}), "(3,)");
  EXPECT_EQ(ShapeToString({3, 4}), "(3, 4)");
}

TEST(NDArrayTest, DefaultIsEmptyFloat32Vector) {
  NDArray a;
  EXPECT_EQ(a.dtype(), DType::kFloat32);
  EXPECT_THAT(a.shape(), ElementsAre(0));
  EXPECT_EQ(a.size(), 0);
  EXPECT_EQ(a.nbytes(), 0u);
  EXPECT_NE(a.data(), nullptr);
}

TEST(NDArrayTest, FromVectorKeepsValuesAndShape) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::FromVector<float>({2, 2}, {1, 2, 3, 4}));
  EXPECT_EQ(a.dtype(), DType::kFloat32);
  EXPECT_EQ(a.ndim(), 2);
  EXPECT_EQ(a.size(), 4);
  EXPECT_EQ(a.nbytes(), 16u);
  EXPECT_THAT(a.values<float>(), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(a.DebugString(), "float32(2, 2)");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 64, 0u);
}

TEST(NDArrayTest, FromBytesRejectsSizeMismatch) {
  EXPECT_THAT(NDArray::FromBytes(DType::kFloat64, {3}, std::string(16, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs 24 bytes but 16")));
  EXPECT_THAT(NDArray::FromVector<int32_t>({2, 2}, {1, 2, 3}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(NDArrayTest, ZerosIsZeroFilled) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::Zeros(DType::kInt64, {3, 2}));
  EXPECT_THAT(a.values<int64_t>(), ElementsAre(0, 0, 0, 0, 0, 0));
  EXPECT_THAT(NDArray::Zeros(DType::kFloat32, {-3}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(NDArrayTest, ForOverwriteHasTheShapeAndChecksItLikeZeros) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::ForOverwrite(DType::kFloat64, {4, 5}));
  EXPECT_EQ(a.dtype(), DType::kFloat64);
  EXPECT_EQ(a.shape(), (Shape{4, 5}));
  EXPECT_EQ(a.nbytes(), 160u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 64, 0u);
  EXPECT_THAT(NDArray::ForOverwrite(DType::kFloat32, {-3}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NDArray::ForOverwrite(DType::kFloat64, {int64_t{1} << 40, int64_t{1} << 40}),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("overflow")));
}

TEST(NDArrayTest, ZeroDimensionalHoldsOneElement) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::FromVector<double>({}, {2.5}));
  EXPECT_EQ(a.ndim(), 0);
  EXPECT_EQ(a.size(), 1);
  EXPECT_THAT(a.values<double>(), ElementsAre(2.5));
}

TEST(NDArrayTest, CopyIsDeepMoveIsCheap) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::FromVector<int32_t>({3}, {1, 2, 3}));
  NDArray b = a;
  b.mutable_values<int32_t>()[0] = 42;
  EXPECT_THAT(a.values<int32_t>(), ElementsAre(1, 2, 3));
  EXPECT_THAT(b.values<int32_t>(), ElementsAre(42, 2, 3));
  const std::byte* before = b.data();
  NDArray c = std::move(b);
  EXPECT_EQ(c.data(), before);
  a = c;
  EXPECT_EQ(a, c);
  EXPECT_NE(a.data(), c.data());
}

TEST(NDArrayTest, WrapViewsExternalMemoryAndKeepsOwnerAlive) {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4, 5, 6});
  std::weak_ptr<std::vector<float>> watch = owner;
  auto* raw = reinterpret_cast<std::byte*>(owner->data());
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a,
                             NDArray::Wrap(DType::kFloat32, {2, 3}, raw, 24, std::move(owner)));
  EXPECT_EQ(a.data(), raw);
  EXPECT_FALSE(watch.expired());
  EXPECT_THAT(a.values<float>(), ElementsAre(1, 2, 3, 4, 5, 6));
  a = NDArray();
  EXPECT_TRUE(watch.expired());
}

TEST(NDArrayTest, WrapRejectsWrongSizeAndNulls) {
  auto owner = std::make_shared<int>(0);
  std::byte buf[8];
  EXPECT_THAT(NDArray::Wrap(DType::kFloat32, {3}, buf, 8, owner),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NDArray::Wrap(DType::kFloat32, {2}, nullptr, 8, owner),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NDArray::Wrap(DType::kFloat32, {2}, buf, 8, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(NDArrayTest, AsChecksDType) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::FromVector<float>({1}, {1.0f}));
  EXPECT_TRUE(a.As<float>().ok());
  EXPECT_THAT(a.As<double>(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                       HasSubstr("float32, not float64")));
}

TEST(NDArrayTest, EqualityComparesDTypeShapeAndBytes) {
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray a, NDArray::FromVector<int32_t>({2}, {1, 2}));
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray b, NDArray::FromVector<int32_t>({2, 1}, {1, 2}));
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray c, NDArray::FromVector<float>({2}, {1, 2}));
  PETAL_ASSERT_OK_AND_ASSIGN(NDArray d, NDArray::FromVector<int32_t>({2}, {1, 3}));
  EXPECT_FALSE(a == b);
  EXPECT_FALSE(a == c);
  EXPECT_FALSE(a == d);
  EXPECT_TRUE(a == NDArray(a));
}

}  // namespace
}  // namespace petal::common
