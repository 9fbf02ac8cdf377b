#include "strategy/params.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace petal::strategy {
namespace {

std::string ShowNumber(double v) {
  std::string s = fmt::format("{}", v);
  return s;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1);
  std::vector<size_t> cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

[[noreturn]] void Die(std::string_view what, std::string_view name) {
  std::cerr << "petal::strategy::Params: " << what << " '" << name << "'\n";
  std::abort();
}

std::string Located(const WhereFn& where, std::string_view name) {
  if (!where) return "";
  std::string w = where(name);
  return w.empty() ? "" : fmt::format(" ({})", w);
}

}  // namespace

std::string_view ParamTypeName(ParamType type) {
  switch (type) {
    case ParamType::kDouble:
      return "float";
    case ParamType::kInt:
      return "int";
    case ParamType::kBool:
      return "bool";
    case ParamType::kString:
      return "string";
  }
  return "?";
}

std::string DescribeConstraint(const ParamSpec& spec) {
  if (!spec.choices.empty()) return fmt::format("{}", fmt::join(spec.choices, "|"));
  if (!spec.min && !spec.max) return "";
  std::string lo = spec.min ? ShowNumber(*spec.min) : "-inf";
  std::string hi = spec.max ? ShowNumber(*spec.max) : "inf";
  return fmt::format("{}{}, {}{}", spec.min && !spec.min_exclusive ? "[" : "(", lo, hi,
                     spec.max && !spec.max_exclusive ? "]" : ")");
}

std::string CheckParamValue(const ParamSpec& spec, const common::Scalar& value) {
  if (spec.type == ParamType::kString) {
    const std::string* s = std::get_if<std::string>(&value);
    if (s == nullptr) return "must be a string";
    if (!spec.choices.empty() &&
        std::find(spec.choices.begin(), spec.choices.end(), *s) == spec.choices.end()) {
      return fmt::format("must be one of: {}", fmt::join(spec.choices, ", "));
    }
    return "";
  }
  if (spec.type == ParamType::kBool) return std::holds_alternative<bool>(value) ? "" : "must be a bool";
  double v;
  if (const double* d = std::get_if<double>(&value)) {
    if (spec.type == ParamType::kInt) return "must be an integer";
    v = *d;
  } else if (const int64_t* i = std::get_if<int64_t>(&value)) {
    v = static_cast<double>(*i);
  } else {
    return spec.type == ParamType::kInt ? "must be an integer" : "must be a number";
  }
  if (spec.type == ParamType::kDouble && !std::isfinite(v)) return "must be a finite number";
  const bool below = spec.min && (spec.min_exclusive ? !(v > *spec.min) : !(v >= *spec.min));
  const bool above = spec.max && (spec.max_exclusive ? !(v < *spec.max) : !(v <= *spec.max));
  if (below || above) return fmt::format("must be in {}", DescribeConstraint(spec));
  return "";
}

double Params::GetDouble(std::string_view name) const {
  const common::Scalar* v = values_.Find(name);
  if (v == nullptr) Die("undeclared parameter", name);
  if (const double* d = std::get_if<double>(v)) return *d;
  if (const int64_t* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  Die("parameter is not a number", name);
}

int64_t Params::GetInt(std::string_view name) const {
  const common::Scalar* v = values_.Find(name);
  if (v == nullptr) Die("undeclared parameter", name);
  if (const int64_t* i = std::get_if<int64_t>(v)) return *i;
  Die("parameter is not an integer", name);
}

bool Params::GetBool(std::string_view name) const {
  const common::Scalar* v = values_.Find(name);
  if (v == nullptr) Die("undeclared parameter", name);
  if (const bool* b = std::get_if<bool>(v)) return *b;
  Die("parameter is not a bool", name);
}

std::string Params::GetString(std::string_view name) const {
  const common::Scalar* v = values_.Find(name);
  if (v == nullptr) Die("undeclared parameter", name);
  if (const std::string* s = std::get_if<std::string>(v)) return *s;
  Die("parameter is not a string", name);
}

absl::StatusOr<Params> ValidateParams(std::string_view strategy_name,
                                      const std::vector<ParamSpec>& specs,
                                      const common::ConfigMap& given, const WhereFn& where) {
  for (const auto& [key, value] : given) {
    const bool known = std::any_of(specs.begin(), specs.end(),
                                   [&](const ParamSpec& s) { return s.name == key; });
    if (known) continue;
    std::string best;
    size_t best_distance = 3;
    for (const ParamSpec& s : specs) {
      const size_t d = EditDistance(s.name, key);
      if (d < best_distance) {
        best_distance = d;
        best = s.name;
      }
    }
    return absl::InvalidArgumentError(fmt::format(
        "strategy '{}' has no parameter '{}'{}{}", strategy_name, key, Located(where, key),
        best.empty() ? "" : fmt::format("; did you mean '{}'?", best)));
  }
  common::ConfigMap values;
  for (const ParamSpec& spec : specs) {
    const common::Scalar* v = given.Find(spec.name);
    if (v == nullptr) {
      if (!spec.default_value) {
        return absl::InvalidArgumentError(fmt::format(
            "strategy '{}' requires parameter '{}' ({})", strategy_name, spec.name, spec.help));
      }
      values.Set(spec.name, *spec.default_value);
      continue;
    }
    std::string problem = CheckParamValue(spec, *v);
    if (!problem.empty()) {
      return absl::InvalidArgumentError(fmt::format("strategy '{}' parameter '{}'{} = {}: {}",
                                                    strategy_name, spec.name,
                                                    Located(where, spec.name),
                                                    common::ScalarToString(*v), problem));
    }
    values.Set(spec.name, *v);
  }
  return Params(std::move(values));
}

}  // namespace petal::strategy
