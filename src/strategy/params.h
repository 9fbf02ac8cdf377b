// File: params.h
//
// Declared, validated strategy parameters. Each registered strategy lists its
// parameters as ParamSpecs (name, type, default, range, help); the same list
// drives validation in MakeStrategy, the YAML reader in src/server (so errors
// name the key and line), and the generated documentation.
//
//   PETAL_ASSIGN_OR_RETURN(Params p, ValidateParams("fedadam", specs, given, where));
//   double eta = p.GetDouble("eta");
//
// Thread-safe (immutable after construction).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/scalar.h"

namespace petal::strategy {

enum class ParamType { kDouble, kInt, kBool, kString };
std::string_view ParamTypeName(ParamType type);

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::kDouble;
  // nullopt: the parameter is required (e.g. FedProx's proximal_mu, as in Flower).
  std::optional<common::Scalar> default_value;
  std::string help;
  // Numeric bounds (kDouble, kInt).
  std::optional<double> min;
  bool min_exclusive = false;
  std::optional<double> max;
  bool max_exclusive = false;
  // Allowed values (kString).
  std::vector<std::string> choices;
};

// "" if `value` (already of the spec's type) is allowed, else the reason
// ("must be in [0, 1]", "must be one of: float64, native").
std::string CheckParamValue(const ParamSpec& spec, const common::Scalar& value);
// The range/choices as text for help output ("[0, 0.5)", "float64|native"), "" if none.
std::string DescribeConstraint(const ParamSpec& spec);

// Maps a parameter name to where it was written ("server.yaml:12"), for messages.
using WhereFn = std::function<std::string(std::string_view name)>;

// A complete, validated set of parameter values: every spec'd name present with
// its declared type. Getters on an undeclared name or wrong type abort: they are
// programming errors, ruled out by ValidateParams.
class Params {
 public:
  Params() = default;
  explicit Params(common::ConfigMap values) : values_(std::move(values)) {}

  double GetDouble(std::string_view name) const;
  int64_t GetInt(std::string_view name) const;
  bool GetBool(std::string_view name) const;
  std::string GetString(std::string_view name) const;
  const common::ConfigMap& values() const { return values_; }

 private:
  common::ConfigMap values_;
};

// Checks `given` against `specs`: unknown names (with a suggestion), wrong
// types (an int is accepted for a double), out-of-range values, missing
// required ones. Fills in defaults. InvalidArgument naming strategy, parameter
// and (through `where`, may be null) its location.
absl::StatusOr<Params> ValidateParams(std::string_view strategy_name,
                                      const std::vector<ParamSpec>& specs,
                                      const common::ConfigMap& given, const WhereFn& where);

}  // namespace petal::strategy
