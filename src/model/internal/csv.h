// File: internal/csv.h
//
// A fast record reader over a whole file held in memory, for the dataset
// loaders. Handles '\n' and "\r\n" line ends, a missing final newline, blank
// lines (skipped), and, when quoting is on, RFC 4180 quoted fields ("a, b",
// "say ""hi""", line breaks inside quotes). Errors name "path:line".
//
//   CsvReader reader(text, path, ',', /*quoting=*/true);
//   while (reader.Next()) { reader.fields()[0] ... }
//   PETAL_RETURN_IF_ERROR(reader.status());
//
// Field views stay valid until the next call to Next(). Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace petal::model::internal {

class CsvReader {
 public:
  CsvReader(std::string_view text, std::string path, char separator, bool quoting);

  // Advances to the next non-blank record; false at the end or on error.
  bool Next();
  const std::vector<std::string_view>& fields() const { return fields_; }
  // 1-based line where the current record starts.
  int64_t line() const { return record_line_; }
  const std::string& path() const { return path_; }
  // OK, or the error that stopped Next().
  const absl::Status& status() const { return status_; }

  // InvalidArgument "path:line: message" for the current record.
  absl::Status Error(std::string_view message) const;
  // Error unless the record has exactly `n` fields ("expected N columns, got M").
  absl::Status ExpectColumns(size_t n) const;
  absl::Status ExpectColumns(size_t min, size_t max) const;

  // Typed field parsers; errors name the file, line and column.
  absl::StatusOr<int64_t> Int(size_t column, std::string_view column_name) const;
  absl::StatusOr<double> Double(size_t column, std::string_view column_name) const;

 private:
  std::string_view text_;
  std::string path_;
  char separator_;
  bool quoting_;
  size_t pos_ = 0;
  int64_t line_ = 1;
  int64_t record_line_ = 0;
  std::vector<std::string_view> fields_;
  std::deque<std::string> unescaped_;
  absl::Status status_;
};

// ASCII whitespace trimmed from both ends.
std::string_view Trim(std::string_view s);
// ASCII lower-case copy.
std::string ToLower(std::string_view s);
// Splits on `sep` (no quoting); an empty input gives no parts.
std::vector<std::string_view> SplitList(std::string_view s, char sep);

}  // namespace petal::model::internal
