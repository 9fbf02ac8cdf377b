// File: npz.h
//
// .npz archives: what numpy.savez writes and numpy.load reads (a zip file of
// "<name>.npy" members). Petal saves final models and checkpoints this way so
// that `numpy.load("model.npz")` opens them.
//
//   PETAL_RETURN_IF_ERROR(WriteNpz("out/model.npz", {{"item_embedding", a}, {"mlp.0.weight", b}}));
//   PETAL_ASSIGN_OR_RETURN(NamedArrays arrays, ReadNpz("out/model.npz"));
//
// Writing stores members uncompressed (like numpy.savez), Zip64 when sizes
// require it. Reading accepts stored and deflated members (numpy.savez and
// savez_compressed), Zip64 records, and verifies every CRC. Errors name the
// archive and member. Member order is preserved. Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/ndarray.h"

namespace petal::common {

using NamedArrays = std::vector<std::pair<std::string, NDArray>>;

// The archive bytes. InvalidArgument for an empty or duplicate name.
absl::StatusOr<std::string> EncodeNpz(const NamedArrays& arrays);
// `source` names the archive in error messages.
absl::StatusOr<NamedArrays> DecodeNpz(std::string_view bytes, std::string_view source = "<npz>");

// EncodeNpz + WriteFileAtomically.
absl::Status WriteNpz(const std::string& path, const NamedArrays& arrays);
// ReadFileToString + DecodeNpz.
absl::StatusOr<NamedArrays> ReadNpz(const std::string& path);

}  // namespace petal::common
