#include "common/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

namespace petal::common {
namespace {

std::vector<std::string> SplitKey(std::string_view key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= key.size()) {
    size_t dot = key.find('.', start);
    if (dot == std::string_view::npos) dot = key.size();
    parts.emplace_back(key.substr(start, dot - start));
    start = dot + 1;
  }
  return parts;
}

std::string_view KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
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

bool IsPrefixKey(std::string_view prefix, std::string_view key) {
  return key.size() > prefix.size() && key.substr(0, prefix.size()) == prefix &&
         key[prefix.size()] == '.';
}

// Types a plain YAML scalar the way Flower's Python side would see the value.
Scalar TypeScalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted: always a string
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  const bool looks_float = text.find_first_of(".eEnN") != std::string::npos;
  if (!looks_float) {
    try {
      return node.as<int64_t>();
    } catch (const YAML::Exception&) {
    }
    try {
      uint64_t u = node.as<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return u;
    } catch (const YAML::Exception&) {
    }
  }
  try {
    return node.as<double>();
  } catch (const YAML::Exception&) {
  }
  return text;
}

}  // namespace

Check<std::string> OneOf(std::vector<std::string> allowed) {
  return [allowed = std::move(allowed)](const std::string& v) {
    if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return std::string();
    return fmt::format("must be one of: {}", fmt::join(allowed, ", "));
  };
}

// --- YamlConfig --------------------------------------------------------------

YamlConfig::YamlConfig() : root_(std::make_unique<YAML::Node>(YAML::NodeType::Map)) {}
YamlConfig::YamlConfig(const YamlConfig& other)
    : source_(other.source_),
      root_(std::make_unique<YAML::Node>(YAML::Clone(*other.root_))),
      overridden_(other.overridden_) {}
YamlConfig& YamlConfig::operator=(const YamlConfig& other) {
  if (this != &other) *this = YamlConfig(other);
  return *this;
}
YamlConfig::YamlConfig(YamlConfig&&) noexcept = default;
YamlConfig& YamlConfig::operator=(YamlConfig&&) noexcept = default;
YamlConfig::~YamlConfig() = default;

const YAML::Node& YamlConfig::root() const { return *root_; }

absl::StatusOr<YamlConfig> YamlConfig::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(fmt::format("cannot open config file '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

absl::StatusOr<YamlConfig> YamlConfig::Parse(std::string_view text, std::string source) {
  YamlConfig config;
  config.source_ = std::move(source);
  try {
    YAML::Node node = YAML::Load(std::string(text));
    if (node.IsNull() || !node.IsDefined()) {
      node = YAML::Node(YAML::NodeType::Map);  // an empty file is an empty config
    }
    if (!node.IsMap()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: the top level of a config must be a map of keys, not {}", config.source_,
          KindName(node)));
    }
    *config.root_ = node;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("{}:{}:{}: invalid YAML: {}", config.source_,
                                                  e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  return config;
}

absl::Status YamlConfig::ApplyOverride(std::string_view assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(
        fmt::format("override '{}' must look like key=value (e.g. num_rounds=5)", assignment));
  }
  const std::string key(assignment.substr(0, eq));
  const std::string value_text(assignment.substr(eq + 1));
  YAML::Node value;
  try {
    value = value_text.empty() ? YAML::Node(std::string()) : YAML::Load(value_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("override '{}': the value is not valid YAML: {}", assignment, e.msg));
  }
  const std::vector<std::string> parts = SplitKey(key);
  for (const std::string& p : parts) {
    if (p.empty()) return absl::InvalidArgumentError(fmt::format("override key '{}' has an empty part", key));
  }
  try {
    YAML::Node cur = *root_;
    std::string path;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      path += (i ? "." : "") + parts[i];
      YAML::Node next = cur[parts[i]];
      if (!next.IsDefined() || next.IsNull()) {
        next = YAML::Node(YAML::NodeType::Map);
        cur[parts[i]] = next;
      } else if (!next.IsMap()) {
        return absl::InvalidArgumentError(fmt::format(
            "override '{}': '{}' is {}, not a map", assignment, path, KindName(next)));
      }
      cur.reset(cur[parts[i]]);  // rebind (plain assignment would copy the value)
    }
    cur[parts.back()] = value;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("override '{}': {}", assignment, e.msg));
  }
  overridden_.insert(key);
  return absl::OkStatus();
}

std::optional<YAML::Node> YamlConfig::Find(std::string_view key) const {
  YAML::Node cur = *root_;  // a handle sharing the document; only read through const refs
  for (const std::string& part : SplitKey(key)) {
    if (!cur.IsMap()) return std::nullopt;
    const YAML::Node& const_cur = cur;
    YAML::Node next = const_cur[part];  // const access: never inserts
    if (!next.IsDefined()) return std::nullopt;
    cur.reset(next);
  }
  return cur;
}

std::string YamlConfig::Where(std::string_view key) const {
  for (const std::string& o : overridden_) {
    if (o == key || IsPrefixKey(o, key) || IsPrefixKey(key, o)) return "--set " + o;
  }
  std::optional<YAML::Node> node = Find(key);
  if (!node || node->Mark().is_null()) return source_;
  return fmt::format("{}:{}", source_, node->Mark().line + 1);
}

std::string YamlConfig::Dump() const {
  YAML::Emitter out;
  out << *root_;
  return out.c_str();
}

// --- ConfigReader ------------------------------------------------------------

ConfigReader::ConfigReader(const YamlConfig& config) : config_(config) {}

bool ConfigReader::Has(std::string_view key) const { return config_.Find(key).has_value(); }

void ConfigReader::Consume(std::string_view key) { consumed_.emplace(key); }

void ConfigReader::Require(std::string_view key) {
  consumed_.emplace(key);
  if (!Has(key)) {
    errors_.push_back(fmt::format("{}: required key '{}' is missing", config_.source(), key));
  }
}

void ConfigReader::Fail(std::string_view key, std::string_view message) {
  errors_.push_back(fmt::format("{}: key '{}': {}", config_.Where(key), key, message));
}

template <typename T>
void ConfigReader::ReadScalar(std::string_view key, T* out, const Check<T>& check,
                              std::string_view type_name) {
  consumed_.emplace(key);
  std::optional<YAML::Node> node = config_.Find(key);
  if (!node) return;
  if (!node->IsScalar()) {
    Fail(key, fmt::format("expected {}, got {}", type_name, KindName(*node)));
    return;
  }
  T value{};
  try {
    value = node->as<T>();
  } catch (const YAML::Exception&) {
    Fail(key, fmt::format("expected {}, got '{}'", type_name, node->Scalar()));
    return;
  }
  if (check) {
    std::string problem = check(value);
    if (!problem.empty()) {
      Fail(key, fmt::format("{} (got {})", problem, node->Scalar()));
      return;
    }
  }
  *out = std::move(value);
}

template <typename T>
void ConfigReader::ReadList(std::string_view key, std::vector<T>* out, std::string_view type_name) {
  consumed_.emplace(key);
  std::optional<YAML::Node> node = config_.Find(key);
  if (!node) return;
  if (!node->IsSequence()) {
    Fail(key, fmt::format("expected a list of {}, got {}", type_name, KindName(*node)));
    return;
  }
  std::vector<T> values;
  for (size_t i = 0; i < node->size(); ++i) {
    const YAML::Node item = (*node)[i];
    try {
      if (!item.IsScalar()) throw YAML::Exception(YAML::Mark::null_mark(), "not a scalar");
      values.push_back(item.as<T>());
    } catch (const YAML::Exception&) {
      Fail(key, fmt::format("item {} is not {}", i, type_name));
      return;
    }
  }
  *out = std::move(values);
}

void ConfigReader::Read(std::string_view key, bool* out) {
  ReadScalar<bool>(key, out, nullptr, "a bool (true/false)");
}
void ConfigReader::Read(std::string_view key, int64_t* out, Check<int64_t> check) {
  ReadScalar<int64_t>(key, out, check, "an integer");
}
void ConfigReader::Read(std::string_view key, int* out, Check<int64_t> check) {
  int64_t value = *out;
  Check<int64_t> bounded = [check](const int64_t& v) {
    if (v < INT32_MIN || v > INT32_MAX) return std::string("must fit a 32-bit integer");
    return check ? check(v) : std::string();
  };
  ReadScalar<int64_t>(key, &value, bounded, "an integer");
  *out = static_cast<int>(value);
}
void ConfigReader::Read(std::string_view key, double* out, Check<double> check) {
  ReadScalar<double>(key, out, check, "a number");
}
void ConfigReader::Read(std::string_view key, std::string* out, Check<std::string> check) {
  ReadScalar<std::string>(key, out, check, "a string");
}
void ConfigReader::Read(std::string_view key, std::vector<std::string>* out) {
  ReadList<std::string>(key, out, "strings");
}
void ConfigReader::Read(std::string_view key, std::vector<int64_t>* out) {
  ReadList<int64_t>(key, out, "integers");
}
void ConfigReader::Read(std::string_view key, std::vector<double>* out) {
  ReadList<double>(key, out, "numbers");
}

void ConfigReader::ReadMap(std::string_view key, ConfigMap* out) {
  consumed_.emplace(key);
  std::optional<YAML::Node> node = config_.Find(key);
  if (!node || node->IsNull()) return;
  if (!node->IsMap()) {
    Fail(key, fmt::format("expected a map of scalars, got {}", KindName(*node)));
    return;
  }
  ConfigMap values;
  for (const auto& kv : *node) {
    const std::string name = kv.first.as<std::string>();
    if (!kv.second.IsScalar()) {
      Fail(fmt::format("{}.{}", key, name),
           fmt::format("expected a scalar (bool, number or string), got {}", KindName(kv.second)));
      return;
    }
    values.Set(name, TypeScalar(kv.second));
  }
  *out = std::move(values);
}

absl::Status ConfigReader::Finish() const {
  if (!errors_.empty()) return absl::InvalidArgumentError(errors_.front());
  // Walk the document: report every key that no Read consumed.
  std::vector<std::string> unknown;
  std::function<void(const YAML::Node&, const std::string&)> walk =
      [&](const YAML::Node& node, const std::string& prefix) {
        for (const auto& kv : node) {
          const std::string path =
              prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>();
          if (consumed_.count(path) > 0) continue;
          bool ancestor_consumed = false;
          for (const std::string& c : consumed_) ancestor_consumed |= IsPrefixKey(c, path);
          if (ancestor_consumed) continue;
          bool is_section = false;
          for (const std::string& c : consumed_) is_section |= IsPrefixKey(path, c);
          if (is_section && kv.second.IsMap()) {
            walk(kv.second, path);
            continue;
          }
          std::string message = fmt::format("unknown key '{}' ({})", path, config_.Where(path));
          // Suggest the closest known key under the same parent.
          const std::string parent = prefix.empty() ? "" : prefix + ".";
          std::string best;
          size_t best_distance = 3;
          for (const std::string& c : consumed_) {
            if (c.rfind(parent, 0) != 0 || c.find('.', parent.size()) != std::string::npos) continue;
            size_t d = EditDistance(c, path);
            if (d < best_distance) {
              best_distance = d;
              best = c;
            }
          }
          if (!best.empty()) message += fmt::format("; did you mean '{}'?", best);
          unknown.push_back(std::move(message));
        }
      };
  walk(config_.root(), "");
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", config_.source(), fmt::join(unknown, "; ")));
  }
  return absl::OkStatus();
}

}  // namespace petal::common
