// File: internal/numeric.h
//
// Element arithmetic that reproduces NumPy's: float32 and float64 are the
// native IEEE types; float16 is a wrapper whose every operation is computed in
// float and rounded to half precision (round to nearest even), exactly as
// NumPy's float16 loops do. Python float scalars that meet an array are first
// rounded to the array's dtype (NumPy 1.x value-based casting): use Cast<T>.
// Private to src/strategy.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/ndarray.h"

namespace petal::strategy::internal {

// float -> IEEE half bits, round to nearest even (NumPy's npy_float_to_half).
uint16_t FloatToHalfBits(float value);
// double -> IEEE half bits in one rounding (NumPy's npy_double_to_half).
uint16_t DoubleToHalfBits(double value);
float HalfBitsToFloat(uint16_t bits);

// A float16 value held as the float it converts to exactly.
struct Half {
  float v = 0.0f;

  static Half FromBits(uint16_t bits) { return Half{HalfBitsToFloat(bits)}; }
  static Half Round(float f) { return Half{HalfBitsToFloat(FloatToHalfBits(f))}; }
  uint16_t bits() const { return FloatToHalfBits(v); }

  friend Half operator+(Half a, Half b) { return Round(a.v + b.v); }
  friend Half operator-(Half a, Half b) { return Round(a.v - b.v); }
  friend Half operator*(Half a, Half b) { return Round(a.v * b.v); }
  friend Half operator/(Half a, Half b) { return Round(a.v / b.v); }
};

inline Half Sqrt(Half a) { return Half::Round(std::sqrt(a.v)); }
inline float Sqrt(float a) { return std::sqrt(a); }
inline double Sqrt(double a) { return std::sqrt(a); }

// np.sign: -1, 0 or +1 (NaN stays NaN).
template <typename T>
T Sign(T a);
template <>
inline float Sign(float a) {
  return a > 0 ? 1.0f : (a < 0 ? -1.0f : a);
}
template <>
inline double Sign(double a) {
  return a > 0 ? 1.0 : (a < 0 ? -1.0 : a);
}
template <>
inline Half Sign(Half a) {
  return Half{Sign(a.v)};
}

// A Python float (double) or int converted to the array's element type.
template <typename T>
T Cast(double value);
template <>
inline float Cast<float>(double value) {
  return static_cast<float>(value);
}
template <>
inline double Cast<double>(double value) {
  return value;
}
template <>
inline Half Cast<Half>(double value) {
  return Half::FromBits(DoubleToHalfBits(value));
}

inline double ToDouble(float a) { return a; }
inline double ToDouble(double a) { return a; }
inline double ToDouble(Half a) { return a.v; }

// Rounds a double to T (one rounding).
template <typename T>
T FromDouble(double value) {
  return Cast<T>(value);
}

// Reads element i of a float array of type T.
template <typename T>
T Load(const std::byte* data, int64_t i);
template <>
inline float Load<float>(const std::byte* data, int64_t i) {
  float v;
  std::memcpy(&v, data + i * 4, 4);
  return v;
}
template <>
inline double Load<double>(const std::byte* data, int64_t i) {
  double v;
  std::memcpy(&v, data + i * 8, 8);
  return v;
}
template <>
inline Half Load<Half>(const std::byte* data, int64_t i) {
  uint16_t b;
  std::memcpy(&b, data + i * 2, 2);
  return Half::FromBits(b);
}

template <typename T>
void Store(std::byte* data, int64_t i, T value);
template <>
inline void Store<float>(std::byte* data, int64_t i, float value) {
  std::memcpy(data + i * 4, &value, 4);
}
template <>
inline void Store<double>(std::byte* data, int64_t i, double value) {
  std::memcpy(data + i * 8, &value, 8);
}
template <>
inline void Store<Half>(std::byte* data, int64_t i, Half value) {
  const uint16_t b = value.bits();
  std::memcpy(data + i * 2, &b, 2);
}

// Calls fn(T{}) with T = float, double or Half for a floating dtype; returns
// false for any other dtype without calling fn.
template <typename Fn>
bool DispatchFloat(common::DType dtype, Fn&& fn) {
  switch (dtype) {
    case common::DType::kFloat32:
      fn(float{});
      return true;
    case common::DType::kFloat64:
      fn(double{});
      return true;
    case common::DType::kFloat16:
      fn(Half{});
      return true;
    default:
      return false;
  }
}

// NumPy 1.x value-based casting of a float array meeting a positive Python
// int n (array * n, array / n): n counts as the smallest unsigned type that
// holds it (uint8 <= 255, uint16 <= 65535, uint32, uint64), which promotes
// float16 to float32 beyond 255 and float32 to float64 beyond 65535. A 0-d
// array counts as a scalar itself, so the int is int64 and the result float64.
common::DType PromoteWithCount(common::DType float_dtype, double n, bool zero_dim);
// The wider of two float dtypes (float16 < float32 < float64).
common::DType WiderFloat(common::DType a, common::DType b);

// Integer and bool arrays: element i as a double (exact up to 2^53), and the
// inverse with round-half-to-even and saturation to the dtype's range.
double LoadIntegerAsDouble(common::DType dtype, const std::byte* data, int64_t i);
void StoreRoundedInteger(common::DType dtype, std::byte* data, int64_t i, double value);

}  // namespace petal::strategy::internal
