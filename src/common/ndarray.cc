#include "common/ndarray.h"

#include <bit>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "common/aligned_alloc.h"
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace petal::common {

static_assert(std::endian::native == std::endian::little,
              "Petal stores NDArray data little-endian and assumes a little-endian host");

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return 2;
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
    case DType::kUInt8:
    case DType::kBool:
      return 1;
  }
  return 1;
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return "float16";
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kUInt8:
      return "uint8";
    case DType::kBool:
      return "bool";
  }
  return "unknown";
}

absl::StatusOr<DType> DTypeFromName(std::string_view name) {
  for (DType d : {DType::kFloat16, DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kInt64,
                  DType::kUInt8, DType::kBool}) {
    if (DTypeName(d) == name) return d;
  }
  return absl::InvalidArgumentError(fmt::format(
      "unsupported dtype '{}' (supported: float16, float32, float64, int32, int64, uint8, bool)",
      name));
}

bool IsFloating(DType dtype) {
  return dtype == DType::kFloat16 || dtype == DType::kFloat32 || dtype == DType::kFloat64;
}

absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape, size_t item_size) {
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return absl::InvalidArgumentError(
          fmt::format("shape {} has a negative dimension at axis {}", ShapeToString(shape), i));
    }
    if (__builtin_mul_overflow(count, shape[i], &count)) {
      return absl::OutOfRangeError(
          fmt::format("shape {} has too many elements (overflow)", ShapeToString(shape)));
    }
  }
  int64_t bytes = 0;
  if (__builtin_mul_overflow(count, static_cast<int64_t>(item_size), &bytes)) {
    return absl::OutOfRangeError(
        fmt::format("shape {} needs more bytes than fit in 64 bits", ShapeToString(shape)));
  }
  return count;
}

std::string ShapeToString(absl::Span<const int64_t> shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

std::shared_ptr<std::byte> AllocateBuffer(size_t nbytes) {
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(AllocateAligned(nbytes)),
                                    [nbytes](std::byte* q) { FreeAligned(q, nbytes); });
}

NDArray::NDArray() : shape_{0}, data_(AllocateBuffer(0)) {}

NDArray::NDArray(DType dtype, Shape shape, size_t nbytes, std::shared_ptr<std::byte> data)
    : dtype_(dtype), shape_(std::move(shape)), nbytes_(nbytes), data_(std::move(data)) {}

NDArray::NDArray(const NDArray& other)
    : dtype_(other.dtype_),
      shape_(other.shape_),
      nbytes_(other.nbytes_),
      data_(AllocateBuffer(other.nbytes_)) {
  if (nbytes_ > 0) std::memcpy(data_.get(), other.data_.get(), nbytes_);
}

NDArray& NDArray::operator=(const NDArray& other) {
  if (this != &other) *this = NDArray(other);
  return *this;
}

namespace {

absl::StatusOr<size_t> CheckedByteSize(DType dtype, const Shape& shape) {
  auto count = NumElements(shape, DTypeSize(dtype));
  if (!count.ok()) return count.status();
  return static_cast<size_t>(*count) * DTypeSize(dtype);
}

}  // namespace

absl::StatusOr<NDArray> NDArray::Zeros(DType dtype, Shape shape) {
  absl::StatusOr<NDArray> out = ForOverwrite(dtype, std::move(shape));
  if (out.ok()) std::memset(out->mutable_data(), 0, out->nbytes());
  return out;
}

absl::StatusOr<NDArray> NDArray::ForOverwrite(DType dtype, Shape shape) {
  auto nbytes = CheckedByteSize(dtype, shape);
  if (!nbytes.ok()) return nbytes.status();
  std::shared_ptr<std::byte> buf = AllocateBuffer(*nbytes);
  return NDArray(dtype, std::move(shape), *nbytes, std::move(buf));
}

absl::StatusOr<NDArray> NDArray::FromBytes(DType dtype, Shape shape, std::string_view bytes) {
  auto nbytes = CheckedByteSize(dtype, shape);
  if (!nbytes.ok()) return nbytes.status();
  if (*nbytes != bytes.size()) {
    return absl::InvalidArgumentError(fmt::format("{}{} needs {} bytes but {} were given",
                                                  DTypeName(dtype), ShapeToString(shape), *nbytes,
                                                  bytes.size()));
  }
  std::shared_ptr<std::byte> buf = AllocateBuffer(*nbytes);
  if (*nbytes > 0) std::memcpy(buf.get(), bytes.data(), *nbytes);
  return NDArray(dtype, std::move(shape), *nbytes, std::move(buf));
}

absl::StatusOr<NDArray> NDArray::Wrap(DType dtype, Shape shape, std::byte* data, size_t nbytes,
                                      std::shared_ptr<void> owner) {
  auto expected = CheckedByteSize(dtype, shape);
  if (!expected.ok()) return expected.status();
  if (*expected != nbytes) {
    return absl::InvalidArgumentError(fmt::format("{}{} needs {} bytes but the view has {}",
                                                  DTypeName(dtype), ShapeToString(shape),
                                                  *expected, nbytes));
  }
  if (data == nullptr || owner == nullptr) {
    return absl::InvalidArgumentError("NDArray::Wrap needs non-null data and owner");
  }
  // Aliasing constructor: shares ownership with `owner`, points at `data`.
  return NDArray(dtype, std::move(shape), nbytes, std::shared_ptr<std::byte>(owner, data));
}

bool NDArray::operator==(const NDArray& other) const {
  return dtype_ == other.dtype_ && shape_ == other.shape_ && nbytes_ == other.nbytes_ &&
         (nbytes_ == 0 || std::memcmp(data_.get(), other.data_.get(), nbytes_) == 0);
}

std::string NDArray::DebugString() const {
  return fmt::format("{}{}", DTypeName(dtype_), ShapeToString(shape_));
}

absl::Status NDArray::DTypeMismatch(DType wanted) const {
  return absl::FailedPreconditionError(
      fmt::format("array is {}, not {}", DTypeName(dtype_), DTypeName(wanted)));
}

}  // namespace petal::common
