// File: cli.h
//
// A small command-line parser shared by Petal's executables: declared flags
// with help text, --help, and repeatable `--set key=value` config overrides.
//
//   CommandLine cli("petal-server", "Runs a Flower-compatible federated server.");
//   cli.AddFlag("config", "PATH", "YAML config file", "configs/server.yaml");
//   cli.AddSwitch("resume", "continue from the latest checkpoint");
//   PETAL_RETURN_IF_ERROR(cli.Parse(argc, argv));
//   if (cli.help_requested()) { std::cout << cli.Usage(); return 0; }
//   std::string path = cli.Get("config");
//
// Flags are written --name=value or --name value; switches are --name. Unknown
// flags and missing values are InvalidArgument errors naming the flag.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/config.h"

namespace petal::common {

class CommandLine {
 public:
  CommandLine(std::string program, std::string summary);

  // A flag taking a value; `fallback` is returned by Get when it is absent.
  void AddFlag(std::string name, std::string value_name, std::string help, std::string fallback = "");
  // A boolean switch.
  void AddSwitch(std::string name, std::string help);
  // Text appended to Usage() (examples, notes).
  void AddEpilog(std::string text) { epilog_ = std::move(text); }

  absl::Status Parse(int argc, const char* const* argv);

  bool help_requested() const { return help_; }
  std::string Usage() const;
  // The flag's value, or its fallback.
  std::string Get(std::string_view name) const;
  // True if the flag or switch was given.
  bool Has(std::string_view name) const;
  const std::vector<std::string>& overrides() const { return overrides_; }
  const std::vector<std::string>& positional() const { return positional_; }

  // Applies every --set override to `config` in order.
  absl::Status ApplyOverrides(YamlConfig& config) const;

 private:
  struct Flag {
    std::string value_name;  // empty for switches
    std::string help;
    std::string fallback;
  };
  std::string program_;
  std::string summary_;
  std::string epilog_;
  std::map<std::string, Flag, std::less<>> flags_;
  std::vector<std::string> order_;
  std::map<std::string, std::string, std::less<>> values_;
  std::vector<std::string> overrides_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

}  // namespace petal::common
