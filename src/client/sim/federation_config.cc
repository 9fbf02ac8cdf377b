#include "client/sim/federation_config.h"

#include <fmt/format.h>

#include <filesystem>

#include "common/status_macros.h"

namespace petal::sim {
namespace {

namespace fs = std::filesystem;

void ReadSection(common::ConfigReader& r, const common::YamlConfig& yaml, const std::string& role,
                 const fs::path& base, FederationSection* out) {
  r.Require(role + ".config");
  std::string config;
  r.Read(role + ".config", &config);
  r.Read(role + ".set", &out->sets);
  for (const std::string& s : out->sets) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      r.Fail(role + ".set", fmt::format("'{}' must look like key=value", s));
    }
  }
  if (config.empty()) return;
  const fs::path resolved = (base / config).lexically_normal();
  std::error_code ec;
  if (!fs::is_regular_file(resolved, ec)) {
    r.Fail(role + ".config", fmt::format("no such file {}", resolved.string()));
  }
  out->config = resolved.string();
}

}  // namespace

absl::StatusOr<FederationFile> LoadFederationFile(const std::string& path) {
  PETAL_ASSIGN_OR_RETURN(common::YamlConfig yaml, common::YamlConfig::LoadFile(path));
  FederationFile f;
  f.path = path;
  f.name = fs::path(path).stem().string();
  const fs::path base = fs::absolute(fs::path(path)).parent_path();
  common::ConfigReader r(yaml);
  r.Read("description", &f.description);
  r.Require("clients");
  int clients = 0;
  r.Read("clients", &clients, common::InRange<int64_t>(1, 1 << 24));
  f.clients = clients;
  r.Read("docker", &f.docker);
  ReadSection(r, yaml, "server", base, &f.server);
  ReadSection(r, yaml, "client", base, &f.client);
  if (r.Has("centralized")) {
    FederationSection c;
    ReadSection(r, yaml, "centralized", base, &c);
    f.centralized = std::move(c);
  }
  int threads = f.sim_threads;
  r.Read("sim.threads", &threads, common::InRange<int64_t>(1, 1024));
  f.sim_threads = threads;
  r.Read("sim.evaluate_every", &f.sim_evaluate_every, common::AtLeast<int64_t>(0));
  int max_parallel = f.sim_max_parallel;
  r.Read("sim.max_parallel", &max_parallel, common::InRange<int64_t>(0, 1 << 20));
  f.sim_max_parallel = max_parallel;
  PETAL_RETURN_IF_ERROR(r.Finish());
  return f;
}

absl::StatusOr<common::YamlConfig> LoadWithSets(const FederationSection& section,
                                                const std::vector<std::string>& extra) {
  PETAL_ASSIGN_OR_RETURN(common::YamlConfig yaml, common::YamlConfig::LoadFile(section.config));
  for (const std::string& s : section.sets) PETAL_RETURN_IF_ERROR(yaml.ApplyOverride(s));
  for (const std::string& s : extra) PETAL_RETURN_IF_ERROR(yaml.ApplyOverride(s));
  return yaml;
}

std::vector<std::string> ServerTopologySets(int32_t num_clients, double fraction_fit,
                                            double fraction_evaluate) {
  std::vector<std::string> sets = {fmt::format("strategy.min_available_clients={}", num_clients)};
  if (fraction_fit == 1.0) sets.push_back(fmt::format("strategy.min_fit_clients={}", num_clients));
  if (fraction_evaluate == 1.0) {
    sets.push_back(fmt::format("strategy.min_evaluate_clients={}", num_clients));
  }
  return sets;
}

}  // namespace petal::sim
