#include "common/scalar.h"

#include <limits>

#include "absl/status/status.h"
#include <fmt/format.h>
#include "common/internal/overloaded.h"

namespace petal::common {
namespace {

absl::Status Missing(std::string_view key) {
  return absl::NotFoundError(fmt::format("config key '{}' is missing", key));
}

absl::Status WrongType(std::string_view key, std::string_view wanted, const Scalar& got) {
  return absl::InvalidArgumentError(fmt::format("config key '{}' must be {} but is {} ({})", key,
                                                wanted, ScalarTypeName(got), ScalarToString(got)));
}

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

}  // namespace

std::string_view ScalarTypeName(const Scalar& value) {
  return std::visit(internal::Overloaded{
                        [](bool) { return std::string_view("bool"); },
                        [](const Bytes&) { return std::string_view("bytes"); },
                        [](double) { return std::string_view("double"); },
                        [](int64_t) { return std::string_view("sint64"); },
                        [](uint64_t) { return std::string_view("uint64"); },
                        [](const std::string&) { return std::string_view("string"); },
                    },
                    value);
}

std::string ScalarToString(const Scalar& value) {
  return std::visit(internal::Overloaded{
                        [](bool b) { return std::string(b ? "True" : "False"); },
                        [](const Bytes& b) { return fmt::format("b'<{} bytes>'", b.value.size()); },
                        [](double d) { return fmt::format("{}", d); },
                        [](int64_t i) { return fmt::format("{}", i); },
                        [](uint64_t u) { return fmt::format("{}", u); },
                        [](const std::string& s) { return fmt::format("\"{}\"", s); },
                    },
                    value);
}

void ConfigMap::SetUint(std::string key, uint64_t value) {
  if (value <= kInt64Max) {
    Set(std::move(key), static_cast<int64_t>(value));
  } else {
    Set(std::move(key), value);
  }
}

bool ConfigMap::Erase(std::string_view key) {
  auto it = values_.find(key);
  if (it == values_.end()) return false;
  values_.erase(it);
  return true;
}

const Scalar* ConfigMap::Find(std::string_view key) const {
  auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

absl::StatusOr<bool> ConfigMap::GetBool(std::string_view key) const {
  const Scalar* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (const bool* b = std::get_if<bool>(v)) return *b;
  return WrongType(key, "a bool", *v);
}

absl::StatusOr<int64_t> ConfigMap::GetInt(std::string_view key) const {
  const Scalar* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (const int64_t* i = std::get_if<int64_t>(v)) return *i;
  if (const uint64_t* u = std::get_if<uint64_t>(v)) {
    if (*u <= kInt64Max) return static_cast<int64_t>(*u);
    return absl::OutOfRangeError(
        fmt::format("config key '{}' = {} does not fit a signed 64-bit integer", key, *u));
  }
  return WrongType(key, "an integer", *v);
}

absl::StatusOr<uint64_t> ConfigMap::GetUint(std::string_view key) const {
  const Scalar* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (const uint64_t* u = std::get_if<uint64_t>(v)) return *u;
  if (const int64_t* i = std::get_if<int64_t>(v)) {
    if (*i >= 0) return static_cast<uint64_t>(*i);
    return absl::OutOfRangeError(
        fmt::format("config key '{}' = {} must not be negative", key, *i));
  }
  return WrongType(key, "an unsigned integer", *v);
}

absl::StatusOr<double> ConfigMap::GetDouble(std::string_view key) const {
  const Scalar* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (const double* d = std::get_if<double>(v)) return *d;
  if (const int64_t* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  if (const uint64_t* u = std::get_if<uint64_t>(v)) return static_cast<double>(*u);
  return WrongType(key, "a number", *v);
}

absl::StatusOr<std::string> ConfigMap::GetString(std::string_view key) const {
  const Scalar* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (const std::string* s = std::get_if<std::string>(v)) return *s;
  return WrongType(key, "a string", *v);
}

absl::StatusOr<std::string> ConfigMap::GetBytes(std::string_view key) const {
  const Scalar* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (const Bytes* b = std::get_if<Bytes>(v)) return b->value;
  return WrongType(key, "bytes", *v);
}

absl::StatusOr<bool> ConfigMap::GetBoolOr(std::string_view key, bool fallback) const {
  return Contains(key) ? GetBool(key) : absl::StatusOr<bool>(fallback);
}

absl::StatusOr<int64_t> ConfigMap::GetIntOr(std::string_view key, int64_t fallback) const {
  return Contains(key) ? GetInt(key) : absl::StatusOr<int64_t>(fallback);
}

absl::StatusOr<double> ConfigMap::GetDoubleOr(std::string_view key, double fallback) const {
  return Contains(key) ? GetDouble(key) : absl::StatusOr<double>(fallback);
}

absl::StatusOr<std::string> ConfigMap::GetStringOr(std::string_view key,
                                                   std::string fallback) const {
  return Contains(key) ? GetString(key) : absl::StatusOr<std::string>(std::move(fallback));
}

std::string ConfigMap::DebugString() const {
  std::string out = "{";
  for (const auto& [key, value] : values_) {
    if (out.size() > 1) out += ", ";
    out += fmt::format("{}: {}", key, ScalarToString(value));
  }
  return out + "}";
}

}  // namespace petal::common
