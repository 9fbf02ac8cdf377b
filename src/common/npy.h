// File: npy.h
//
// The .npy codec Flower uses for every tensor on the wire
// (np.save(buf, arr, allow_pickle=False) / np.load(buf, allow_pickle=False)).
//
//   std::string bytes = EncodeNpy(array);               // what numpy.save writes
//   PETAL_ASSIGN_OR_RETURN(NDArray back, DecodeNpy(bytes));
//
// EncodeNpy writes exactly the bytes numpy.save writes for a C-order
// little-endian array: format 1.0 (2.0 only if the header would not fit),
// numpy's header dict with its spare "growth" spaces, padding so the data
// starts on a 64-byte boundary.
// DecodeNpy reads format 1.0, 2.0 and 3.0 headers, 0-d and n-d shapes,
// big-endian and Fortran-order data (converted to little-endian C order), and
// returns InvalidArgument/OutOfRange naming the problem for anything else
// (bad magic, truncated or trailing data, object/pickled or unsupported
// dtypes, malformed headers, sizes that overflow). It never reads out of bounds.
// All functions are thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/ndarray.h"

namespace petal::common {

// Parsed preamble of a .npy file.
struct NpyHeader {
  int major_version = 1;
  int minor_version = 0;
  DType dtype = DType::kFloat32;
  bool big_endian = false;
  bool fortran_order = false;
  Shape shape;
  size_t data_offset = 0;  // bytes from the start of the file to the data
  size_t data_size = 0;    // prod(shape) * DTypeSize(dtype)
};

// Serializes `array` as numpy.save(allow_pickle=False) would.
std::string EncodeNpy(const NDArray& array);
// Appends the same bytes to `*out` (one allocation when reserved by the caller).
void AppendNpy(const NDArray& array, std::string* out);
// The size EncodeNpy(array) will have.
size_t EncodedNpySize(const NDArray& array);

// Parses and validates the preamble; checks the data that follows has exactly
// the size the header implies.
absl::StatusOr<NpyHeader> ParseNpyHeader(std::string_view bytes);

// Decodes a complete .npy file, copying the data.
absl::StatusOr<NDArray> DecodeNpy(std::string_view bytes);
// Decodes a complete .npy file, taking ownership of `bytes`: when the payload
// is already little-endian C order the array views it without a copy.
absl::StatusOr<NDArray> DecodeNpy(std::string&& bytes);

}  // namespace petal::common
