// File: file_util.h
//
// Whole-file reads and crash-safe writes.
//
//   PETAL_RETURN_IF_ERROR(WriteFileAtomically("ckpt/round_3.npz", bytes));
//
// WriteFileAtomically writes to a temporary file in the same directory,
// fsyncs it, renames it over `path` and fsyncs the directory: a reader (or a
// crash) sees either the old contents or the new, never a torn file. All
// functions are thread-safe; errors name the path and the OS reason.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace petal::common {

// NotFound when the file does not exist; other I/O failures as Internal/PermissionDenied.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);
// Like `mkdir -p`; OK if it already exists as a directory.
absl::Status CreateDirectories(const std::string& path);

}  // namespace petal::common
