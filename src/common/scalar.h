// File: scalar.h
//
// Scalar and ConfigMap: the typed values of Flower's config, properties and
// metrics dictionaries (Python Dict[str, Scalar]), as a std::variant.
//
//   ConfigMap config{{"lr", 0.01}, {"local_epochs", int64_t{2}}};
//   PETAL_ASSIGN_OR_RETURN(double lr, config.GetDouble("lr"));
//   PETAL_ASSIGN_OR_RETURN(int64_t epochs, config.GetIntOr("local_epochs", 1));
//
// Typing follows Flower's Python side (flower-wire.md A.6): bool, bytes,
// float (double), int (sint64 on the wire; uint64 only above INT64_MAX) and
// str. Getters return NotFound for a missing key and InvalidArgument naming the
// key, the wanted and the actual type for a wrong one. Not thread-safe for
// concurrent mutation.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "absl/status/statusor.h"

namespace petal::common {

// Raw bytes (Python `bytes`), kept distinct from text (Python `str`).
struct Bytes {
  std::string value;
  bool operator==(const Bytes&) const = default;
};

using Scalar = std::variant<bool, Bytes, double, int64_t, uint64_t, std::string>;

// "bool", "bytes", "double", "sint64", "uint64" or "string".
std::string_view ScalarTypeName(const Scalar& value);
// A short human rendering for logs ("0.01", "\"abc\"", "b'<3 bytes>'").
std::string ScalarToString(const Scalar& value);

class ConfigMap {
 public:
  using Map = std::map<std::string, Scalar, std::less<>>;

  ConfigMap() = default;
  ConfigMap(std::initializer_list<Map::value_type> values) : values_(values) {}

  void Set(std::string key, Scalar value) { values_.insert_or_assign(std::move(key), std::move(value)); }
  // Integers follow Python's rule: uint64 only when the value exceeds INT64_MAX.
  void SetInt(std::string key, int64_t value) { Set(std::move(key), value); }
  void SetUint(std::string key, uint64_t value);
  bool Erase(std::string_view key);

  bool Contains(std::string_view key) const { return values_.find(key) != values_.end(); }
  // Null when absent.
  const Scalar* Find(std::string_view key) const;

  absl::StatusOr<bool> GetBool(std::string_view key) const;
  // sint64, or uint64 that fits int64.
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  // uint64, or a non-negative sint64.
  absl::StatusOr<uint64_t> GetUint(std::string_view key) const;
  // double, or an integer converted as Python's float(int) would.
  absl::StatusOr<double> GetDouble(std::string_view key) const;
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<std::string> GetBytes(std::string_view key) const;

  // The same, but `fallback` when the key is absent (a wrong type is still an error).
  absl::StatusOr<bool> GetBoolOr(std::string_view key, bool fallback) const;
  absl::StatusOr<int64_t> GetIntOr(std::string_view key, int64_t fallback) const;
  absl::StatusOr<double> GetDoubleOr(std::string_view key, double fallback) const;
  absl::StatusOr<std::string> GetStringOr(std::string_view key, std::string fallback) const;

  size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  Map::const_iterator begin() const { return values_.begin(); }
  Map::const_iterator end() const { return values_.end(); }
  const Map& values() const { return values_; }
  bool operator==(const ConfigMap&) const = default;
  // "{a: 1, b: \"x\"}" for logs.
  std::string DebugString() const;

 private:
  Map values_;
};

}  // namespace petal::common
