// File: ndarray.h
//
// NDArray: a dense, C-ordered, little-endian array of one of the dtypes that
// travel in Flower's Parameters (float16/32/64, int32/64, uint8, bool).
//
//   PETAL_ASSIGN_OR_RETURN(NDArray a, NDArray::FromVector<float>({2, 2}, {1, 2, 3, 4}));
//   absl::Span<const float> v = a.values<float>();
//
// Copying an NDArray copies its bytes (value semantics, like std::vector);
// moving is cheap. An NDArray may also view memory owned by someone else
// (NDArray::Wrap, or a decoded .npy string), kept alive by a shared owner.
// Not thread-safe for concurrent mutation; concurrent reads are fine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace petal::common {

enum class DType : uint8_t { kFloat16, kFloat32, kFloat64, kInt32, kInt64, kUInt8, kBool };

// Bytes per element.
size_t DTypeSize(DType dtype);
// NumPy's name for the dtype ("float32", "bool", ...).
std::string_view DTypeName(DType dtype);
// Inverse of DTypeName; InvalidArgument naming `name` if it is not supported.
absl::StatusOr<DType> DTypeFromName(std::string_view name);
bool IsFloating(DType dtype);

// Maps a C++ element type to its DType (uint16_t stands for float16 bits).
template <typename T>
constexpr DType DTypeOf() {
  if constexpr (std::is_same_v<T, float>) return DType::kFloat32;
  else if constexpr (std::is_same_v<T, double>) return DType::kFloat64;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::kInt32;
  else if constexpr (std::is_same_v<T, int64_t>) return DType::kInt64;
  else if constexpr (std::is_same_v<T, uint8_t>) return DType::kUInt8;
  else if constexpr (std::is_same_v<T, bool>) return DType::kBool;
  else if constexpr (std::is_same_v<T, uint16_t>) return DType::kFloat16;
  else static_assert(sizeof(T) == 0, "unsupported NDArray element type");
}

using Shape = std::vector<int64_t>;

// Number of elements of `shape` (1 for a 0-d shape). InvalidArgument for a
// negative dimension, OutOfRange if the count or its byte size overflows.
absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape, size_t item_size = 1);
// "(2, 3)"-style rendering used in error messages.
std::string ShapeToString(absl::Span<const int64_t> shape);

class NDArray {
 public:
  // An empty float32 array of shape (0,).
  NDArray();
  NDArray(const NDArray& other);
  NDArray& operator=(const NDArray& other);
  NDArray(NDArray&& other) noexcept = default;
  NDArray& operator=(NDArray&& other) noexcept = default;
  ~NDArray() = default;

  // A zero-filled array. Errors as NumElements.
  static absl::StatusOr<NDArray> Zeros(DType dtype, Shape shape);
  // An array whose bytes are left uninitialized, for code that overwrites every
  // element (make_unique_for_overwrite's counterpart). Errors as Zeros.
  static absl::StatusOr<NDArray> ForOverwrite(DType dtype, Shape shape);
  // Copies `bytes` (little-endian, C order). InvalidArgument if its size is not
  // prod(shape) * DTypeSize(dtype).
  static absl::StatusOr<NDArray> FromBytes(DType dtype, Shape shape, std::string_view bytes);
  // Views `nbytes` at `data` without copying; `owner` keeps that memory alive
  // for as long as any NDArray views it. Same size check as FromBytes.
  static absl::StatusOr<NDArray> Wrap(DType dtype, Shape shape, std::byte* data, size_t nbytes,
                                      std::shared_ptr<void> owner);
  // Copies `values` into a new array of the given shape.
  template <typename T>
  static absl::StatusOr<NDArray> FromVector(Shape shape, const std::vector<T>& values) {
    static_assert(!std::is_same_v<T, bool>, "std::vector<bool> is packed: use FromBytes");
    return FromBytes(DTypeOf<T>(), std::move(shape),
                     std::string_view(reinterpret_cast<const char*>(values.data()),
                                      values.size() * sizeof(T)));
  }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  // Number of elements.
  int64_t size() const { return static_cast<int64_t>(nbytes_ / DTypeSize(dtype_)); }
  size_t nbytes() const { return nbytes_; }
  const std::byte* data() const { return data_.get(); }
  std::byte* mutable_data() { return data_.get(); }
  std::string_view bytes() const {
    return std::string_view(reinterpret_cast<const char*>(data_.get()), nbytes_);
  }

  // Typed views. Precondition: DTypeOf<T>() == dtype() (checked by As<T>()).
  template <typename T>
  absl::Span<const T> values() const {
    return absl::Span<const T>(reinterpret_cast<const T*>(data_.get()), nbytes_ / sizeof(T));
  }
  template <typename T>
  absl::Span<T> mutable_values() {
    return absl::Span<T>(reinterpret_cast<T*>(data_.get()), nbytes_ / sizeof(T));
  }
  // Checked typed view: FailedPrecondition naming both dtypes on mismatch.
  template <typename T>
  absl::StatusOr<absl::Span<const T>> As() const {
    if (DTypeOf<T>() != dtype_) return DTypeMismatch(DTypeOf<T>());
    return values<T>();
  }

  // True when the dtype, shape and bytes are all equal.
  bool operator==(const NDArray& other) const;
  // "float32(2, 3)".
  std::string DebugString() const;

 private:
  NDArray(DType dtype, Shape shape, size_t nbytes, std::shared_ptr<std::byte> data);
  absl::Status DTypeMismatch(DType wanted) const;

  DType dtype_ = DType::kFloat32;
  Shape shape_;
  size_t nbytes_ = 0;
  std::shared_ptr<std::byte> data_;  // owned buffer, or an aliasing view of an owner
};

// Allocates `nbytes` of uninitialized, 64-byte-aligned memory (never null;
// std::bad_alloc when memory runs out), from AllocateAligned (aligned_alloc.h:
// model-sized buffers are huge-page advised and reused).
std::shared_ptr<std::byte> AllocateBuffer(size_t nbytes);

}  // namespace petal::common
