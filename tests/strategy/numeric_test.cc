#include "strategy/internal/numeric.h"

#include <cmath>
#include <cstring>

#include "gtest/gtest.h"

namespace petal::strategy::internal {
namespace {

TEST(HalfTest, KnownValues) {
  EXPECT_EQ(FloatToHalfBits(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalfBits(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalfBits(0.1f), 0x2e66);
  EXPECT_EQ(FloatToHalfBits(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalfBits(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToHalfBits(65520.0f), 0x7c00);  // tie rounds to even: infinity
  EXPECT_EQ(FloatToHalfBits(1e10f), 0x7c00);
  EXPECT_EQ(FloatToHalfBits(-INFINITY), 0xfc00);
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -25)), 0x0000);  // tie to even (zero)
  EXPECT_EQ(FloatToHalfBits(std::ldexp(3.0f, -25)), 0x0002);  // tie to even (two)
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1023.5f, -24)), 0x0400);  // rounds up into the normals
  EXPECT_EQ(FloatToHalfBits(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalfBits(1e-30f), 0x0000);
  const uint16_t nan = FloatToHalfBits(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
}

TEST(HalfTest, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const float f = HalfBitsToFloat(static_cast<uint16_t>(bits));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalfBits(f), bits) << std::hex << bits;
    ASSERT_EQ(DoubleToHalfBits(f), bits) << std::hex << bits;
  }
}

TEST(HalfTest, DoubleRoundsOnceNotTwice) {
  // 1 + 2^-11 + 2^-40: just above the tie between 1 and 1 + 2^-10. As a float
  // it becomes exactly the tie (then to even: 1.0); rounded directly it goes up.
  const double x = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  EXPECT_EQ(FloatToHalfBits(static_cast<float>(x)), 0x3c00);
  EXPECT_EQ(DoubleToHalfBits(x), 0x3c01);
}

TEST(HalfTest, ArithmeticRoundsEveryStep) {
  const Half a = Cast<Half>(0.1);
  const Half b = Cast<Half>(0.2);
  const Half sum = a + b;
  EXPECT_EQ(sum.bits(), FloatToHalfBits(a.v + b.v));
  EXPECT_EQ(Sqrt(Cast<Half>(2.0)).bits(), FloatToHalfBits(std::sqrt(2.0f)));
  EXPECT_EQ(Sign(Half{-3.0f}).v, -1.0f);
  EXPECT_EQ(Sign(Half{0.0f}).v, 0.0f);
}

TEST(IntegerTest, RoundHalfToEvenAndSaturate) {
  std::byte buf[8];
  StoreRoundedInteger(common::DType::kInt64, buf, 0, 2.5);
  EXPECT_EQ(LoadIntegerAsDouble(common::DType::kInt64, buf, 0), 2.0);
  StoreRoundedInteger(common::DType::kInt64, buf, 0, -3.5);
  EXPECT_EQ(LoadIntegerAsDouble(common::DType::kInt64, buf, 0), -4.0);
  StoreRoundedInteger(common::DType::kInt32, buf, 0, 1e12);
  EXPECT_EQ(LoadIntegerAsDouble(common::DType::kInt32, buf, 0), 2147483647.0);
  StoreRoundedInteger(common::DType::kUInt8, buf, 0, -7.0);
  EXPECT_EQ(LoadIntegerAsDouble(common::DType::kUInt8, buf, 0), 0.0);
  StoreRoundedInteger(common::DType::kBool, buf, 0, 0.5);
  EXPECT_EQ(LoadIntegerAsDouble(common::DType::kBool, buf, 0), 0.0);
  StoreRoundedInteger(common::DType::kBool, buf, 0, 0.75);
  EXPECT_EQ(LoadIntegerAsDouble(common::DType::kBool, buf, 0), 1.0);
}

}  // namespace
}  // namespace petal::strategy::internal
