#include "common/cli.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/status_macros.h"

namespace petal::common {

CommandLine::CommandLine(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void CommandLine::AddFlag(std::string name, std::string value_name, std::string help,
                          std::string fallback) {
  order_.push_back(name);
  flags_[std::move(name)] = Flag{std::move(value_name), std::move(help), std::move(fallback)};
}

void CommandLine::AddSwitch(std::string name, std::string help) {
  order_.push_back(name);
  flags_[std::move(name)] = Flag{"", std::move(help), ""};
}

absl::Status CommandLine::Parse(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      help_ = true;
      continue;
    }
    if (arg == "--") {
      for (++i; i < argc; ++i) positional_.emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      if (!arg.empty() && arg[0] == '-') {
        return absl::InvalidArgumentError(fmt::format("unknown option '{}' (see --help)", arg));
      }
      positional_.emplace_back(arg);
      continue;
    }
    std::string_view body = arg.substr(2);
    std::string_view name = body;
    std::optional<std::string> value;
    if (size_t eq = body.find('='); eq != std::string_view::npos) {
      name = body.substr(0, eq);
      value = std::string(body.substr(eq + 1));
    }
    if (name == "set") {
      if (!value) {
        if (i + 1 >= argc) return absl::InvalidArgumentError("--set needs key=value");
        value = argv[++i];
      }
      overrides_.push_back(*value);
      continue;
    }
    auto it = flags_.find(name);
    if (it == flags_.end()) {
      return absl::InvalidArgumentError(fmt::format("unknown option '--{}' (see --help)", name));
    }
    if (it->second.value_name.empty()) {
      if (value) return absl::InvalidArgumentError(fmt::format("--{} takes no value", name));
      values_[std::string(name)] = "true";
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(
            fmt::format("--{} needs a value ({})", name, it->second.value_name));
      }
      value = argv[++i];
    }
    values_[std::string(name)] = *value;
  }
  return absl::OkStatus();
}

std::string CommandLine::Usage() const {
  std::string out = fmt::format("Usage: {} [options] [--set key=value ...]\n\n{}\n\nOptions:\n",
                                program_, summary_);
  for (const std::string& name : order_) {
    const Flag& f = flags_.at(name);
    std::string left = f.value_name.empty() ? fmt::format("--{}", name)
                                            : fmt::format("--{} {}", name, f.value_name);
    std::string help = f.help;
    if (!f.fallback.empty()) help += fmt::format(" (default: {})", f.fallback);
    out += fmt::format("  {:<28} {}\n", left, help);
  }
  out += fmt::format("  {:<28} {}\n", "--set key=value",
                     "override any config key (dotted path), repeatable");
  out += fmt::format("  {:<28} {}\n", "-h, --help", "show this help");
  if (!epilog_.empty()) out += "\n" + epilog_ + "\n";
  return out;
}

std::string CommandLine::Get(std::string_view name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  if (auto it = flags_.find(name); it != flags_.end()) return it->second.fallback;
  return "";
}

bool CommandLine::Has(std::string_view name) const { return values_.find(name) != values_.end(); }

absl::Status CommandLine::ApplyOverrides(YamlConfig& config) const {
  for (const std::string& o : overrides_) PETAL_RETURN_IF_ERROR(config.ApplyOverride(o));
  return absl::OkStatus();
}

}  // namespace petal::common
