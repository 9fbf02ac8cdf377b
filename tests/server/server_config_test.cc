#include "server/server_config.h"

#include <unistd.h>

#include <fmt/format.h>
#include <filesystem>
#include <set>

#include "common/npz.h"
#include "common/npy.h"
#include "common/file_util.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::server {
namespace {

namespace fs = std::filesystem;
using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<ServerConfig> Read(std::string_view text, std::vector<std::string> overrides = {}) {
  auto yaml = common::YamlConfig::Parse(text, "server.yaml");
  if (!yaml.ok()) return yaml.status();
  for (const std::string& o : overrides) {
    absl::Status s = yaml->ApplyOverride(o);
    if (!s.ok()) return s;
  }
  return ReadServerConfig(*yaml);
}

TEST(ServerConfigTest, DefaultsAreFlowers) {
  PETAL_ASSERT_OK_AND_ASSIGN(ServerConfig c, Read("{}"));
  EXPECT_EQ(c.address, "127.0.0.1:8080");
  EXPECT_EQ(c.max_message_length, 2147483647);
  EXPECT_EQ(c.max_concurrent_streams, 1000);
  EXPECT_EQ(c.keepalive_time, 210.0);
  EXPECT_EQ(c.max_buffered_reply_bytes, 16 << 20);
  EXPECT_EQ(c.num_rounds, 1);
  EXPECT_EQ(c.round_timeout, 0.0);
  EXPECT_EQ(c.strategy, "fedavg");
  EXPECT_TRUE(c.strategy_params.empty());
  EXPECT_FALSE(c.tls.enabled());
}

TEST(ServerConfigTest, ReadsEverySection) {
  PETAL_ASSERT_OK_AND_ASSIGN(ServerConfig c, Read(R"(
server:
  address: 0.0.0.0:9000
  max_message_length: 1048576
  max_clients: 50
  max_buffered_reply_bytes: 1048576
  tls: {ca_cert: ca.pem, cert: s.pem, key: s.key}
run:
  num_rounds: 7
  round_timeout: 30
  seed: 9
  initial_parameters: [a.npy, b.npy]
fit_config: {local_epochs: 2, lr: 0.01, optimizer: sgd}
evaluate_config: {k: 10}
strategy:
  name: fedadam
  eta: 0.05
  beta_1: 0.8
  min_fit_clients: 4
  accept_failures: false
output: {dir: out, checkpoint_dir: out/ck, checkpoints_to_keep: 3}
log_level: debug
)"));
  EXPECT_EQ(c.address, "0.0.0.0:9000");
  EXPECT_EQ(c.max_clients, 50);
  EXPECT_EQ(c.max_buffered_reply_bytes, 1048576);
  EXPECT_TRUE(c.tls.enabled());
  EXPECT_EQ(c.num_rounds, 7);
  EXPECT_THAT(c.initial_parameters, ElementsAre("a.npy", "b.npy"));
  EXPECT_THAT(c.fit_config.GetInt("local_epochs"), ::petal::testing::IsOkAndHolds(2));
  EXPECT_THAT(c.fit_config.GetString("optimizer"), ::petal::testing::IsOkAndHolds("sgd"));
  EXPECT_EQ(c.strategy, "fedadam");
  EXPECT_THAT(c.strategy_params.GetDouble("eta"), ::petal::testing::IsOkAndHolds(0.05));
  EXPECT_THAT(c.strategy_params.GetInt("min_fit_clients"), ::petal::testing::IsOkAndHolds(4));
  EXPECT_THAT(c.strategy_params.GetBool("accept_failures"), ::petal::testing::IsOkAndHolds(false));
  EXPECT_EQ(c.checkpoints_to_keep, 3);
  PETAL_ASSERT_OK_AND_ASSIGN(ServerConfig single, Read("run: {initial_parameters: model.npz}"));
  EXPECT_THAT(single.initial_parameters, ElementsAre("model.npz"));
}

TEST(ServerConfigTest, ErrorsNameKeyAndLine) {
  EXPECT_THAT(Read("run:\n  num_rounds: 0\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server.yaml:2: key 'run.num_rounds': must be >= 1")));
  EXPECT_THAT(Read("run:\n  num_round: 3\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown key 'run.num_round' (server.yaml:2); did you mean 'run.num_rounds'?")));
  EXPECT_THAT(Read("strategy:\n  name: fedadam\n  etaa: 0.1\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown key 'strategy.etaa' (server.yaml:3); did you mean 'strategy.eta'?")));
  EXPECT_THAT(Read("strategy:\n  name: fedavg\n  eta: 0.1\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown key 'strategy.eta'")));
  EXPECT_THAT(Read("strategy:\n  name: fedsgd\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("strategy.name")));
  EXPECT_THAT(Read("strategy:\n  name: fedavg\n  fraction_fit: 2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("server.yaml:3: key 'strategy.fraction_fit': must be in [0, 1]")));
  EXPECT_THAT(Read("strategy:\n  name: fedavg\n  min_fit_clients: many\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("strategy.min_fit_clients")));
  EXPECT_THAT(Read("strategy:\n  name: fedprox\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("requires 'strategy.proximal_mu'")));
  EXPECT_THAT(Read("strategy:\n  name: fedtrimmedavg\n  beta: 0.5\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be in [0, 0.5)")));
  EXPECT_THAT(Read("server:\n  tls: {cert: a.pem}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("both cert and key")));
  EXPECT_THAT(Read("server:\n  address: localhost\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be host:port")));
  EXPECT_THAT(Read("server:\n  max_message_length: 10\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Read("server:\n  max_buffered_reply_bytes: 0\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("server.yaml:2: key 'server.max_buffered_reply_bytes': must be >= 1")));
  // The reply count it replaced is gone: an old config is told so.
  EXPECT_THAT(Read("server:\n  max_buffered_replies: 2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown key 'server.max_buffered_replies' (server.yaml:2)")));
  EXPECT_THAT(Read("fit_config: [1, 2]\n"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fit_config")));
}

TEST(ServerConfigTest, OverridesApplyAndAreNamedInErrors) {
  PETAL_ASSERT_OK_AND_ASSIGN(ServerConfig c, Read("strategy: {name: fedavg}\n",
                                                  {"strategy.name=fedyogi", "strategy.tau=0.01",
                                                   "run.num_rounds=4"}));
  EXPECT_EQ(c.strategy, "fedyogi");
  EXPECT_EQ(c.num_rounds, 4);
  EXPECT_THAT(c.strategy_params.GetDouble("tau"), ::petal::testing::IsOkAndHolds(0.01));
  EXPECT_THAT(Read("{}", {"run.num_rounds=-1"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--set run.num_rounds")));
}

TEST(ServerConfigTest, StrategyConfigAddsServerRoundToInstructionConfigs) {
  auto yaml = common::YamlConfig::Parse("fit_config: {lr: 0.1}\nstrategy: {name: fedprox, proximal_mu: 0.5}\n").value();
  ServerConfig c = ReadServerConfig(yaml).value();
  strategy::StrategyConfig s = MakeStrategyConfig(c, yaml);
  common::ConfigMap fit = s.on_fit_config(3);
  EXPECT_THAT(fit.GetInt("server_round"), ::petal::testing::IsOkAndHolds(3));
  EXPECT_THAT(fit.GetDouble("lr"), ::petal::testing::IsOkAndHolds(0.1));
  EXPECT_THAT(s.on_evaluate_config(2).GetInt("server_round"), ::petal::testing::IsOkAndHolds(2));
  EXPECT_THAT(strategy::MakeStrategy(std::move(s)), IsOk());
  c.send_server_round = false;
  EXPECT_FALSE(MakeStrategyConfig(c, yaml).on_fit_config(1).Contains("server_round"));
}

TEST(ServerConfigTest, LoadsInitialParametersFromNpzOrNpyFiles) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("petal_cfg_{}", ::getpid());
  fs::create_directories(dir);
  common::NDArray a = common::NDArray::FromVector<float>({2}, {1, 2}).value();
  common::NDArray b = common::NDArray::FromVector<int64_t>({1}, {3}).value();
  ASSERT_THAT(common::WriteNpz((dir / "m.npz").string(), {{"x", a}, {"y", b}}), IsOk());
  ASSERT_THAT(common::WriteFileAtomically((dir / "a.npy").string(), common::EncodeNpy(a)), IsOk());
  ASSERT_THAT(common::WriteFileAtomically((dir / "b.npy").string(), common::EncodeNpy(b)), IsOk());
  ASSERT_THAT(common::WriteFileAtomically((dir / "bad.npy").string(), "not npy"), IsOk());
  EXPECT_THAT(LoadInitialParameters({(dir / "m.npz").string()}),
              ::petal::testing::IsOkAndHolds(ElementsAre(a, b)));
  EXPECT_THAT(LoadInitialParameters({(dir / "a.npy").string(), (dir / "b.npy").string()}),
              ::petal::testing::IsOkAndHolds(ElementsAre(a, b)));
  EXPECT_THAT(LoadInitialParameters({(dir / "bad.npy").string()}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad.npy")));
  EXPECT_THAT(LoadInitialParameters({(dir / "missing.npz").string()}), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(LoadInitialParameters({(dir / "m.txt").string()}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("neither one .npz")));
  fs::remove_all(dir);
}

TEST(ServerConfigTest, HelpListsEveryStrategyAndParameter) {
  const std::string help = StrategiesHelp();
  for (const std::string& name : strategy::StrategyNames()) EXPECT_THAT(help, HasSubstr(name + ":"));
  EXPECT_THAT(help, HasSubstr("proximal_mu"));
  EXPECT_THAT(help, HasSubstr("required"));
  EXPECT_THAT(help, HasSubstr("[0, 0.5)"));
}

}  // namespace
}  // namespace petal::server

namespace petal::server {
namespace {

TEST(ShippedConfigsTest, EveryConfigLoadsAndBuildsItsStrategy) {
  const std::filesystem::path root(PETAL_SOURCE_DIR);
  std::vector<std::filesystem::path> files = {root / "configs" / "server.yaml"};
  for (const auto& e : std::filesystem::directory_iterator(root / "configs" / "strategies")) {
    files.push_back(e.path());
  }
  std::set<std::string> strategies;
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    PETAL_ASSERT_OK_AND_ASSIGN(common::YamlConfig yaml, common::YamlConfig::LoadFile(path.string()));
    PETAL_ASSERT_OK_AND_ASSIGN(ServerConfig config, ReadServerConfig(yaml));
    PETAL_ASSERT_OK_AND_ASSIGN(strategy::StrategyPtr s, strategy::MakeStrategy(MakeStrategyConfig(config, yaml)));
    strategies.insert(std::string(s->name()));
  }
  // One example per registered strategy.
  for (const std::string& name : strategy::StrategyNames()) EXPECT_TRUE(strategies.count(name)) << name;
}

}  // namespace
}  // namespace petal::server
