#include "client/sim/federation_config.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "common/testing/scratch_path.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::sim {
namespace {

namespace fs = std::filesystem;
using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FederationConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::petal::testing::ScratchPath("federation_config");
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "sub");
    Write("sub/server.yaml", "run: {num_rounds: 2}\n");
    Write("sub/client.yaml", "client: {seed: 1}\n");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

TEST_F(FederationConfigTest, ReadsEveryKeyAndResolvesPathsAgainstTheFile) {
  const std::string path = Write("fed.yaml",
                                 "description: test\n"
                                 "clients: 3\n"
                                 "docker: true\n"
                                 "server: {config: sub/server.yaml, set: ['run.num_rounds=5']}\n"
                                 "client: {config: sub/client.yaml}\n"
                                 "centralized: {config: sub/client.yaml, set: [a=1, b=2]}\n"
                                 "sim: {threads: 4, evaluate_every: 3, max_parallel: 8}\n");
  absl::StatusOr<FederationFile> f = LoadFederationFile(path);
  ASSERT_THAT(f.status(), IsOk());
  EXPECT_EQ(f->name, "fed");
  EXPECT_EQ(f->description, "test");
  EXPECT_EQ(f->clients, 3);
  EXPECT_TRUE(f->docker);
  EXPECT_EQ(f->server.config, (dir_ / "sub/server.yaml").string());
  EXPECT_THAT(f->server.sets, ElementsAre("run.num_rounds=5"));
  EXPECT_TRUE(f->client.sets.empty());
  ASSERT_TRUE(f->centralized.has_value());
  EXPECT_THAT(f->centralized->sets, ElementsAre("a=1", "b=2"));
  EXPECT_EQ(f->sim_threads, 4);
  EXPECT_EQ(f->sim_evaluate_every, 3);
  EXPECT_EQ(f->sim_max_parallel, 8);

  absl::StatusOr<common::YamlConfig> server = LoadWithSets(f->server, {"run.seed=9"});
  ASSERT_THAT(server.status(), IsOk());
  EXPECT_THAT(server->Dump(), HasSubstr("num_rounds: 5"));
  EXPECT_THAT(server->Dump(), HasSubstr("seed: 9"));
}

TEST_F(FederationConfigTest, BadFilesNameTheProblem) {
  EXPECT_THAT(LoadFederationFile((dir_ / "missing.yaml").string()).status(),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(LoadFederationFile(Write("a.yaml",
                                       "clients: 2\nserver: {config: sub/server.yaml}\n"
                                       "client: {config: sub/client.yaml}\nclientz: 3\n"))
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown key 'clientz'")));
  EXPECT_THAT(LoadFederationFile(Write("b.yaml",
                                       "clients: 0\nserver: {config: sub/server.yaml}\n"
                                       "client: {config: sub/client.yaml}\n"))
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("clients")));
  EXPECT_THAT(LoadFederationFile(Write("c.yaml",
                                       "clients: 2\nserver: {config: nope.yaml}\n"
                                       "client: {config: sub/client.yaml}\n"))
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no such file")));
  EXPECT_THAT(LoadFederationFile(Write("d.yaml", "clients: 2\nserver: {config: sub/server.yaml}\n"))
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("client.config")));
  EXPECT_THAT(LoadFederationFile(Write("e.yaml",
                                       "clients: 2\nserver: {config: sub/server.yaml, "
                                       "set: [novalue]}\nclient: {config: sub/client.yaml}\n"))
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key=value")));
  EXPECT_THAT(LoadFederationFile(Write("f.yaml", "clients: [2\n")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("f.yaml")));
}

TEST_F(FederationConfigTest, ShippedFederationFilesLoad) {
  int count = 0;
  for (const auto& entry :
       fs::directory_iterator(fs::path(PETAL_SOURCE_DIR) / "configs/federation")) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    absl::StatusOr<FederationFile> f = LoadFederationFile(entry.path().string());
    ASSERT_THAT(f.status(), IsOk()) << entry.path();
    EXPECT_GE(f->clients, 1);
    EXPECT_TRUE(LoadWithSets(f->server, {}).ok()) << entry.path();
    EXPECT_TRUE(LoadWithSets(f->client, {}).ok()) << entry.path();
  }
  EXPECT_GE(count, 1);
}

TEST(ServerTopologySetsTest, AllClientsTakePartOnlyWhenTheFractionIsOne) {
  EXPECT_THAT(ServerTopologySets(4, 1.0, 1.0),
              ElementsAre("strategy.min_available_clients=4", "strategy.min_fit_clients=4",
                          "strategy.min_evaluate_clients=4"));
  EXPECT_THAT(ServerTopologySets(943, 0.1, 1.0), ElementsAre("strategy.min_available_clients=943",
                                                             "strategy.min_evaluate_clients=943"));
  EXPECT_THAT(ServerTopologySets(10, 0.5, 0.0), ElementsAre("strategy.min_available_clients=10"));
}

}  // namespace
}  // namespace petal::sim
