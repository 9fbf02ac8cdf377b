#include "client/app/app_config.h"

#include <fmt/format.h>

#include "client/connection_config.h"
#include "common/status_macros.h"

namespace petal::client {
namespace {

std::string Substitute(std::string text, int32_t partition_id) {
  const std::string placeholder = "{partition_id}";
  for (size_t at = text.find(placeholder); at != std::string::npos;
       at = text.find(placeholder, at)) {
    const std::string id = std::to_string(partition_id);
    text.replace(at, placeholder.size(), id);
    at += id.size();
  }
  return text;
}

}  // namespace

absl::StatusOr<ClientAppConfig> ReadClientAppConfig(const common::YamlConfig& yaml) {
  ClientAppConfig c;
  common::ConfigReader r(yaml);
  ReadConnectionOptions(r, "server", &c.connection);
  fleet::ReadFleetOptions(r, "server.fleet", &c.fleet);

  r.Read("client.name", &c.name);
  r.Read("client.partition_id", &c.partition_id, common::AtLeast<int64_t>(0));
  r.Read("client.state_dir", &c.state_dir);
  r.Read("client.threads", &c.threads, common::InRange<int64_t>(1, 256));
  int64_t seed = static_cast<int64_t>(c.seed);
  r.Read("client.seed", &seed, common::AtLeast<int64_t>(0));
  c.seed = static_cast<uint64_t>(seed);

  model::ReadDataConfig(r, "data", &c.data);
  model::ReadSplitConfig(r, "split", &c.split);
  model::ReadPartitionOptions(r, "partition", &c.partition);
  model::ReadModelOptions(r, "model", &c.model);
  model::ReadTrainConfig(r, "train", &c.train);
  model::ReadEvalConfig(r, "eval", &c.eval);

  r.Read("privacy.enabled", &c.privacy.enabled);
  r.Read("privacy.clipping_norm", &c.privacy.clipping_norm, common::GreaterThan<double>(0.0));
  r.Read("privacy.noise_multiplier", &c.privacy.noise_multiplier, common::GreaterThan<double>(0.0));
  r.Read("privacy.delta", &c.privacy.delta, common::GreaterThan<double>(0.0));
  if (r.Has("privacy.seed")) {
    int64_t s = 0;
    r.Read("privacy.seed", &s, common::AtLeast<int64_t>(0));
    c.privacy_seed = static_cast<uint64_t>(s);
  } else {
    r.Consume("privacy.seed");
  }
  if (c.privacy.enabled) {
    if (absl::Status s = c.privacy.Validate(); !s.ok()) r.Fail("privacy", std::string(s.message()));
  }
  if (c.partition.scheme != model::PartitionScheme::kPerUser &&
      c.partition_id >= c.partition.num_partitions) {
    r.Fail("client.partition_id",
           fmt::format("must be < partition.num_partitions ({})", c.partition.num_partitions));
  }
  PETAL_RETURN_IF_ERROR(r.Finish());
  c.name = Substitute(c.name, c.partition_id);
  c.state_dir = Substitute(c.state_dir, c.partition_id);
  c.connection.name = c.name;
  return c;
}

}  // namespace petal::client
