#include "model/internal/csv.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace petal::model::internal {

CsvReader::CsvReader(std::string_view text, std::string path, char separator, bool quoting)
    : text_(text), path_(std::move(path)), separator_(separator), quoting_(quoting) {
  // Skip a UTF-8 byte-order mark.
  if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
}

bool CsvReader::Next() {
  if (!status_.ok()) return false;
  fields_.clear();
  unescaped_.clear();
  // Skip blank lines.
  while (pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == '\r')) {
    if (text_[pos_] == '\n') ++line_;
    ++pos_;
  }
  if (pos_ >= text_.size()) return false;
  record_line_ = line_;
  while (true) {
    if (quoting_ && pos_ < text_.size() && text_[pos_] == '"') {
      // Quoted field.
      ++pos_;
      std::string value;
      bool closed = false;
      while (pos_ < text_.size()) {
        const char c = text_[pos_];
        if (c == '"') {
          if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
            value.push_back('"');
            pos_ += 2;
            continue;
          }
          ++pos_;
          closed = true;
          break;
        }
        if (c == '\n') ++line_;
        value.push_back(c);
        ++pos_;
      }
      if (!closed) {
        status_ = Error("unterminated quoted field");
        return false;
      }
      unescaped_.push_back(std::move(value));
      fields_.push_back(unescaped_.back());
      // After the closing quote: a separator, a line end or the end of text.
      if (pos_ < text_.size() && text_[pos_] == '\r') ++pos_;
      if (pos_ >= text_.size()) return true;
      if (text_[pos_] == '\n') {
        ++pos_;
        ++line_;
        return true;
      }
      if (text_[pos_] != separator_) {
        status_ = Error("unexpected character after a closing quote");
        return false;
      }
      ++pos_;
      continue;
    }
    // Unquoted field: up to the separator or the line end.
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != separator_ && text_[pos_] != '\n') ++pos_;
    size_t end = pos_;
    if (end > start && text_[end - 1] == '\r' && (pos_ >= text_.size() || text_[pos_] == '\n')) {
      --end;
    }
    fields_.push_back(text_.substr(start, end - start));
    if (pos_ >= text_.size()) return true;
    if (text_[pos_] == '\n') {
      ++pos_;
      ++line_;
      return true;
    }
    ++pos_;  // separator
    if (pos_ >= text_.size()) {
      fields_.push_back(std::string_view());
      return true;
    }
  }
}

absl::Status CsvReader::Error(std::string_view message) const {
  return absl::InvalidArgumentError(fmt::format("{}:{}: {}", path_, record_line_, message));
}

absl::Status CsvReader::ExpectColumns(size_t n) const { return ExpectColumns(n, n); }

absl::Status CsvReader::ExpectColumns(size_t min, size_t max) const {
  if (fields_.size() >= min && fields_.size() <= max) return absl::OkStatus();
  const std::string expected =
      min == max ? fmt::format("{}", min) : fmt::format("{} to {}", min, max);
  return Error(fmt::format("expected {} columns separated by '{}', got {}", expected,
                           separator_ == '\t' ? std::string("\\t") : std::string(1, separator_),
                           fields_.size()));
}

absl::StatusOr<int64_t> CsvReader::Int(size_t column, std::string_view column_name) const {
  const std::string_view s = Trim(fields_[column]);
  int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
    return Error(fmt::format("column {} ({}): '{}' is not an integer", column + 1, column_name, s));
  }
  return value;
}

absl::StatusOr<double> CsvReader::Double(size_t column, std::string_view column_name) const {
  const std::string_view s = Trim(fields_[column]);
  double value = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(value)) {
    return Error(fmt::format("column {} ({}): '{}' is not a finite number", column + 1,
                             column_name, s));
  }
  return value;
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::vector<std::string_view> SplitList(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  if (s.empty()) return parts;
  size_t start = 0;
  while (true) {
    const size_t p = s.find(sep, start);
    if (p == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, p - start));
    start = p + 1;
  }
}

}  // namespace petal::model::internal
