// File: config.h
//
// YAML configuration with errors that name the file, line and key, and
// command-line overrides for any key.
//
//   PETAL_ASSIGN_OR_RETURN(YamlConfig yaml, YamlConfig::LoadFile("configs/server.yaml"));
//   PETAL_RETURN_IF_ERROR(yaml.ApplyOverride("strategy.eta=0.05"));   // --set
//   ConfigReader r(yaml);
//   r.Read("num_rounds", &cfg.num_rounds, AtLeast<int64_t>(1));
//   r.Read("strategy.name", &cfg.strategy, OneOf({"fedavg", "fedadam"}));
//   r.ReadMap("fit_config", &cfg.fit_config);        // free-form Scalar map
//   PETAL_RETURN_IF_ERROR(r.Finish());               // first error, or unknown keys
//
// Keys are dotted paths into nested maps. A missing key leaves the default in
// place (Require() makes it mandatory). Finish() reports every key of the file
// that no Read consumed ("unknown key 'strategy.etaa' (server.yaml:7); did you
// mean 'strategy.eta'?"), so typos fail fast instead of being ignored.
// yaml-cpp exceptions never escape this module. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/scalar.h"

namespace YAML {
class Node;
}

namespace petal::common {

class YamlConfig {
 public:
  YamlConfig();
  YamlConfig(const YamlConfig& other);
  YamlConfig& operator=(const YamlConfig& other);
  YamlConfig(YamlConfig&&) noexcept;
  YamlConfig& operator=(YamlConfig&&) noexcept;
  ~YamlConfig();

  // NotFound if the file is missing; InvalidArgument "file:line:col: ..." for bad YAML
  // or a top level that is not a map.
  static absl::StatusOr<YamlConfig> LoadFile(const std::string& path);
  // `source` names the text in messages (e.g. "<string>").
  static absl::StatusOr<YamlConfig> Parse(std::string_view text, std::string source = "<string>");

  // Applies "dotted.key=value": the value is parsed as YAML ("5", "0.1",
  // "true", "[1, 2]", "{a: 1}", "text"), intermediate maps are created.
  absl::Status ApplyOverride(std::string_view assignment);

  const std::string& source() const { return source_; }
  const YAML::Node& root() const;
  // The node at a dotted path, or nullopt.
  std::optional<YAML::Node> Find(std::string_view key) const;
  // "file:line" of the node at `key` ("--set" for overrides), for messages.
  std::string Where(std::string_view key) const;
  // The whole document as YAML text (for logging the effective config).
  std::string Dump() const;

 private:
  std::string source_;
  std::unique_ptr<YAML::Node> root_;
  std::set<std::string> overridden_;
};

// Renders a bound for messages ("0.5", "1").
template <typename T>
std::string Show(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else {
    std::string s = std::to_string(v);
    if constexpr (std::is_floating_point_v<T>) {
      while (!s.empty() && s.back() == '0') s.pop_back();
      if (!s.empty() && s.back() == '.') s.pop_back();
    }
    return s;
  }
}

// A validation rule for a value: returns an error message, or "" when valid.
template <typename T>
using Check = std::function<std::string(const T&)>;

template <typename T>
Check<T> AtLeast(T min) {
  return [min](const T& v) { return v >= min ? std::string() : "must be >= " + Show(min); };
}
template <typename T>
Check<T> GreaterThan(T min) {
  return [min](const T& v) { return v > min ? std::string() : "must be > " + Show(min); };
}
template <typename T>
Check<T> InRange(T lo, T hi) {
  return [lo, hi](const T& v) {
    return (v >= lo && v <= hi) ? std::string() : "must be in [" + Show(lo) + ", " + Show(hi) + "]";
  };
}
Check<std::string> OneOf(std::vector<std::string> allowed);

class ConfigReader {
 public:
  explicit ConfigReader(const YamlConfig& config);

  // Reads `key` into *out when present (leaves the default otherwise). Records
  // an error naming source:line and key for a wrong type or a failed check.
  void Read(std::string_view key, bool* out);
  void Read(std::string_view key, int64_t* out, Check<int64_t> check = nullptr);
  void Read(std::string_view key, int* out, Check<int64_t> check = nullptr);
  void Read(std::string_view key, double* out, Check<double> check = nullptr);
  void Read(std::string_view key, std::string* out, Check<std::string> check = nullptr);
  void Read(std::string_view key, std::vector<std::string>* out);
  void Read(std::string_view key, std::vector<int64_t>* out);
  void Read(std::string_view key, std::vector<double>* out);
  // A free-form map of scalars, typed as Flower's Python side would type them
  // (true/false -> bool, 12 -> sint64, 1.5 -> double, quoted or other -> string).
  void ReadMap(std::string_view key, ConfigMap* out);
  // Marks `key` mandatory: an error if absent.
  void Require(std::string_view key);
  // True if `key` is present in the document.
  bool Has(std::string_view key) const;
  // Marks `key` and everything below it as consumed without reading it (for
  // sections handed to another reader).
  void Consume(std::string_view key);
  // Records a custom error at `key` (e.g. a cross-field rule).
  void Fail(std::string_view key, std::string_view message);

  // The first error recorded, else InvalidArgument listing unknown keys, else OK.
  absl::Status Finish() const;

 private:
  template <typename T>
  void ReadScalar(std::string_view key, T* out, const Check<T>& check, std::string_view type_name);
  template <typename T>
  void ReadList(std::string_view key, std::vector<T>* out, std::string_view type_name);

  const YamlConfig& config_;
  std::set<std::string, std::less<>> consumed_;
  std::vector<std::string> errors_;
};

}  // namespace petal::common
