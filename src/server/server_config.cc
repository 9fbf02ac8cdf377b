#include "server/server_config.h"

#include <filesystem>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "common/file_util.h"
#include "common/npy.h"
#include "common/npz.h"
#include "common/status_macros.h"

namespace petal::server {
namespace {

using common::Check;
using strategy::ParamSpec;
using strategy::ParamType;

template <typename T>
Check<T> SpecCheck(const ParamSpec& spec) {
  return [spec](const T& v) { return strategy::CheckParamValue(spec, common::Scalar(v)); };
}

std::string ShowDefault(const ParamSpec& spec) {
  if (!spec.default_value) return "required";
  return common::ScalarToString(*spec.default_value);
}

void ReadStrategy(common::ConfigReader& r, const common::YamlConfig& yaml, ServerConfig& c) {
  r.Read("strategy.name", &c.strategy, common::OneOf(strategy::StrategyNames()));
  const strategy::StrategyInfo* info = strategy::FindStrategy(c.strategy);
  if (info == nullptr) return;  // the OneOf check recorded the error
  for (const ParamSpec& spec : info->params) {
    const std::string key = "strategy." + spec.name;
    if (!r.Has(key)) {
      r.Consume(key);
      continue;
    }
    switch (spec.type) {
      case ParamType::kDouble: {
        double v = 0.0;
        r.Read(key, &v, SpecCheck<double>(spec));
        c.strategy_params.Set(spec.name, v);
        break;
      }
      case ParamType::kInt: {
        int64_t v = 0;
        r.Read(key, &v, SpecCheck<int64_t>(spec));
        c.strategy_params.Set(spec.name, v);
        break;
      }
      case ParamType::kBool: {
        bool v = false;
        r.Read(key, &v);
        c.strategy_params.Set(spec.name, v);
        break;
      }
      case ParamType::kString: {
        std::string v;
        r.Read(key, &v, SpecCheck<std::string>(spec));
        c.strategy_params.Set(spec.name, v);
        break;
      }
    }
  }
  for (const ParamSpec& spec : info->params) {
    if (!spec.default_value && !r.Has("strategy." + spec.name)) {
      r.Fail("strategy", fmt::format("strategy '{}' requires 'strategy.{}' ({})", c.strategy,
                                     spec.name, spec.help));
    }
  }
}

}  // namespace

absl::StatusOr<ServerConfig> ReadServerConfig(const common::YamlConfig& yaml) {
  ServerConfig c;
  common::ConfigReader r(yaml);
  r.Read("server.address", &c.address, [](const std::string& v) {
    return v.rfind(':') == std::string::npos ? std::string("must be host:port") : std::string();
  });
  r.Read("server.port_file", &c.port_file);
  r.Read("server.max_message_length", &c.max_message_length,
         common::InRange<int64_t>(1024, 2147483647));
  r.Read("server.max_concurrent_streams", &c.max_concurrent_streams, common::AtLeast<int64_t>(1));
  r.Read("server.max_clients", &c.max_clients, common::AtLeast<int64_t>(0));
  r.Read("server.max_buffered_reply_bytes", &c.max_buffered_reply_bytes, common::AtLeast<int64_t>(1));
  r.Read("server.http2_bdp_probe", &c.http2_bdp_probe);
  r.Read("server.keepalive_time", &c.keepalive_time, common::GreaterThan<double>(0.0));
  r.Read("server.tls.ca_cert", &c.tls.ca_cert);
  r.Read("server.tls.cert", &c.tls.cert);
  r.Read("server.tls.key", &c.tls.key);
  if (c.tls.cert.empty() != c.tls.key.empty()) {
    r.Fail("server.tls", "give both cert and key (or neither, for an insecure server)");
  }
  if (!c.tls.ca_cert.empty() && c.tls.cert.empty()) {
    r.Fail("server.tls", "ca_cert needs cert and key as well");
  }

  r.Read("run.num_rounds", &c.num_rounds, common::AtLeast<int64_t>(1));
  r.Read("run.round_timeout", &c.round_timeout, common::AtLeast<double>(0.0));
  r.Read("run.client_wait_timeout", &c.client_wait_timeout, common::GreaterThan<double>(0.0));
  r.Read("run.reconnect_timeout", &c.reconnect_timeout, common::AtLeast<double>(0.0));
  r.Read("run.seed", &c.seed);
  r.Read("run.send_server_round", &c.send_server_round);
  if (std::optional<YAML::Node> node = yaml.Find("run.initial_parameters");
      node && node->IsSequence()) {
    r.Read("run.initial_parameters", &c.initial_parameters);
  } else {
    std::string one;
    r.Read("run.initial_parameters", &one);
    if (!one.empty()) c.initial_parameters = {one};
  }
  r.ReadMap("fit_config", &c.fit_config);
  r.ReadMap("evaluate_config", &c.evaluate_config);
  ReadStrategy(r, yaml, c);
  r.Read("output.dir", &c.output_dir);
  r.Read("output.checkpoint_dir", &c.checkpoint_dir);
  r.Read("output.checkpoints_to_keep", &c.checkpoints_to_keep, common::AtLeast<int64_t>(1));
  r.Read("log_level", &c.log_level,
         common::OneOf({"trace", "debug", "info", "warn", "error", "off"}));
  PETAL_RETURN_IF_ERROR(r.Finish());
  return c;
}

absl::StatusOr<common::NDArrays> LoadInitialParameters(const std::vector<std::string>& paths) {
  if (paths.empty()) return absl::InvalidArgumentError("no initial parameter files given");
  common::NDArrays out;
  if (paths.size() == 1 && std::filesystem::path(paths[0]).extension() == ".npz") {
    PETAL_ASSIGN_OR_RETURN(common::NamedArrays named, common::ReadNpz(paths[0]));
    for (auto& [name, array] : named) out.push_back(std::move(array));
    return out;
  }
  for (const std::string& path : paths) {
    if (std::filesystem::path(path).extension() != ".npy") {
      return absl::InvalidArgumentError(fmt::format(
          "initial parameters: '{}' is neither one .npz nor a list of .npy files", path));
    }
    PETAL_ASSIGN_OR_RETURN(std::string bytes, common::ReadFileToString(path));
    absl::StatusOr<common::NDArray> array = common::DecodeNpy(std::move(bytes));
    if (!array.ok()) return common::Annotate(array.status(), path);
    out.push_back(*std::move(array));
  }
  return out;
}

strategy::StrategyConfig MakeStrategyConfig(const ServerConfig& config, const common::YamlConfig& yaml) {
  strategy::StrategyConfig s;
  s.name = config.strategy;
  s.params = config.strategy_params;
  const bool with_round = config.send_server_round;
  s.on_fit_config = [fit = config.fit_config, with_round](int64_t round) {
    common::ConfigMap m = fit;
    if (with_round) m.Set("server_round", round);
    return m;
  };
  s.on_evaluate_config = [ev = config.evaluate_config, with_round](int64_t round) {
    common::ConfigMap m = ev;
    if (with_round) m.Set("server_round", round);
    return m;
  };
  s.where = [&yaml](std::string_view name) { return yaml.Where(fmt::format("strategy.{}", name)); };
  return s;
}

std::string StrategiesHelp() {
  std::string out = "Strategies (strategy.name) and their parameters (strategy.<param>):\n";
  for (const strategy::StrategyInfo& info : strategy::Strategies()) {
    out += fmt::format("\n  {}: {}\n", info.name, info.summary);
    for (const ParamSpec& p : info.params) {
      const std::string range = strategy::DescribeConstraint(p);
      out += fmt::format("    {:<30} {:<6} default {}{}\n        {}\n", p.name,
                         strategy::ParamTypeName(p.type), ShowDefault(p),
                         range.empty() ? "" : fmt::format(", {}", range), p.help);
    }
  }
  return out;
}

}  // namespace petal::server
