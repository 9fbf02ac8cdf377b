#include "strategy/internal/numeric.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace petal::strategy::internal {
namespace {

// Rounds the magnitude m * 2^(exponent) (m an integer with `bits` significant
// bits, exponent of its lowest bit) to half bits, round to nearest even. Shared
// by the float and double paths so both round exactly once.
uint16_t RoundToHalf(uint16_t sign, uint64_t mantissa, int exponent_of_lsb) {
  if (mantissa == 0) return sign;
  // Normalise: find the value's binary exponent e (value in [2^e, 2^(e+1))).
  int top = 63 - std::countl_zero(mantissa);
  int e = exponent_of_lsb + top;
  if (e > 15) return sign | 0x7c00;  // beyond max finite (65504 < 2^16) even before rounding
  // Unit of the last place of the result: 2^(e-10) for normals, 2^-24 for subnormals.
  int ulp_exp = e >= -14 ? e - 10 : -24;
  int shift = ulp_exp - exponent_of_lsb;  // bits of `mantissa` below the result's last place
  uint64_t q;
  if (shift <= 0) {
    q = mantissa << (-shift);
  } else if (shift >= 64) {
    q = 0;  // far below half an ulp (mantissa < 2^63 <= half of 2^shift)
  } else {
    q = mantissa >> shift;
    const uint64_t rem = mantissa & ((uint64_t{1} << shift) - 1);
    const uint64_t half = uint64_t{1} << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
  }
  // q counts ulps of 2^ulp_exp. Assemble; a carry into the next binade works out
  // because the exponent field sits just above the mantissa field.
  uint32_t bits;
  if (ulp_exp == -24) {
    bits = static_cast<uint32_t>(q);  // subnormal (or rounds up to the smallest normal: 0x400)
  } else {
    const uint32_t biased = static_cast<uint32_t>(e + 15);
    bits = (biased << 10) + static_cast<uint32_t>(q - 0x400);  // q in [0x400, 0x800]
  }
  if (bits >= 0x7c00) return sign | 0x7c00;
  return static_cast<uint16_t>(sign | bits);
}

}  // namespace

uint16_t FloatToHalfBits(float value) {
  const uint32_t x = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t exp = (x >> 23) & 0xff;
  const uint32_t mant = x & 0x7fffff;
  if (exp == 0xff) {
    if (mant == 0) return sign | 0x7c00;
    // NaN: keep the top payload bits, force quiet so it stays a NaN.
    return static_cast<uint16_t>(sign | 0x7e00 | (mant >> 13));
  }
  if (exp == 0) return RoundToHalf(sign, mant, -149);
  return RoundToHalf(sign, mant | 0x800000, static_cast<int>(exp) - 150);
}

uint16_t DoubleToHalfBits(double value) {
  const uint64_t x = std::bit_cast<uint64_t>(value);
  const uint16_t sign = static_cast<uint16_t>((x >> 48) & 0x8000);
  const uint64_t exp = (x >> 52) & 0x7ff;
  const uint64_t mant = x & 0xfffffffffffffULL;
  if (exp == 0x7ff) {
    if (mant == 0) return sign | 0x7c00;
    return static_cast<uint16_t>(sign | 0x7e00 | (mant >> 42));
  }
  if (exp == 0) return RoundToHalf(sign, mant, -1074);
  return RoundToHalf(sign, mant | (uint64_t{1} << 52), static_cast<int>(exp) - 1075);
}

float HalfBitsToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exp = (bits >> 10) & 0x1f;
  const uint32_t mant = bits & 0x3ff;
  if (exp == 0x1f) {
    return std::bit_cast<float>(sign | 0x7f800000 | (mant << 13));
  }
  if (exp == 0) {
    // Subnormal or zero: exactly mant * 2^-24.
    const float magnitude = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

namespace {
int FloatRank(common::DType d) {
  return d == common::DType::kFloat16 ? 0 : d == common::DType::kFloat32 ? 1 : 2;
}
common::DType FloatOfRank(int r) {
  return r == 0 ? common::DType::kFloat16 : r == 1 ? common::DType::kFloat32 : common::DType::kFloat64;
}
}  // namespace

common::DType PromoteWithCount(common::DType float_dtype, double n, bool zero_dim) {
  if (zero_dim) return common::DType::kFloat64;
  const int needed = n <= 255.0 ? 0 : n <= 65535.0 ? 1 : 2;
  return FloatOfRank(std::max(FloatRank(float_dtype), needed));
}

common::DType WiderFloat(common::DType a, common::DType b) {
  return FloatOfRank(std::max(FloatRank(a), FloatRank(b)));
}

double LoadIntegerAsDouble(common::DType dtype, const std::byte* data, int64_t i) {
  switch (dtype) {
    case common::DType::kInt32: {
      int32_t v;
      std::memcpy(&v, data + i * 4, 4);
      return v;
    }
    case common::DType::kInt64: {
      int64_t v;
      std::memcpy(&v, data + i * 8, 8);
      return static_cast<double>(v);
    }
    case common::DType::kUInt8:
      return static_cast<double>(static_cast<uint8_t>(data[i]));
    case common::DType::kBool:
      return data[i] != std::byte{0} ? 1.0 : 0.0;
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

void StoreRoundedInteger(common::DType dtype, std::byte* data, int64_t i, double value) {
  const double r = std::nearbyint(value);  // default rounding mode: half to even
  switch (dtype) {
    case common::DType::kInt32: {
      const double c = std::fmin(std::fmax(r, -2147483648.0), 2147483647.0);
      const int32_t v = static_cast<int32_t>(c);
      std::memcpy(data + i * 4, &v, 4);
      return;
    }
    case common::DType::kInt64: {
      // 2^63 is exactly representable; anything >= it saturates.
      int64_t v;
      if (r >= 9223372036854775808.0) {
        v = std::numeric_limits<int64_t>::max();
      } else if (r <= -9223372036854775808.0) {
        v = std::numeric_limits<int64_t>::min();
      } else {
        v = static_cast<int64_t>(r);
      }
      std::memcpy(data + i * 8, &v, 8);
      return;
    }
    case common::DType::kUInt8: {
      const double c = std::fmin(std::fmax(r, 0.0), 255.0);
      data[i] = static_cast<std::byte>(static_cast<uint8_t>(c));
      return;
    }
    case common::DType::kBool:
      data[i] = r != 0.0 ? std::byte{1} : std::byte{0};
      return;
    default:
      return;
  }
}

}  // namespace petal::strategy::internal
