#include "common/config.h"

#include <cstdio>
#include <fstream>

#include <yaml-cpp/yaml.h>

#include "common/testing/scratch_path.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kDoc[] = R"(num_rounds: 5
strategy:
  name: fedadam
  eta: 0.1
  tau: 1.0e-9
address: "127.0.0.1:0"
verbose: true
seeds: [1, 2, 3]
fit_config:
  local_epochs: 2
  lr: 0.01
  optimizer: adam
  quoted: "12"
  prox: false
)";

struct Settings {
  int64_t num_rounds = 1;
  std::string strategy = "fedavg";
  double eta = 0.0;
  double tau = 0.0;
  std::string address;
  bool verbose = false;
  std::vector<int64_t> seeds;
  ConfigMap fit_config;
  double missing = 42.0;
};

absl::Status ReadAll(const YamlConfig& yaml, Settings* s) {
  ConfigReader r(yaml);
  r.Read("num_rounds", &s->num_rounds, AtLeast<int64_t>(1));
  r.Read("strategy.name", &s->strategy, OneOf({"fedavg", "fedadam"}));
  r.Read("strategy.eta", &s->eta, GreaterThan(0.0));
  r.Read("strategy.tau", &s->tau);
  r.Read("address", &s->address);
  r.Read("verbose", &s->verbose);
  r.Read("seeds", &s->seeds);
  r.ReadMap("fit_config", &s->fit_config);
  r.Read("missing", &s->missing);
  return r.Finish();
}

TEST(ConfigTest, ReadsTypedValuesAndKeepsDefaults) {
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig yaml, YamlConfig::Parse(kDoc, "server.yaml"));
  Settings s;
  PETAL_ASSERT_OK(ReadAll(yaml, &s));
  EXPECT_EQ(s.num_rounds, 5);
  EXPECT_EQ(s.strategy, "fedadam");
  EXPECT_DOUBLE_EQ(s.eta, 0.1);
  EXPECT_DOUBLE_EQ(s.tau, 1e-9);
  EXPECT_EQ(s.address, "127.0.0.1:0");
  EXPECT_TRUE(s.verbose);
  EXPECT_EQ(s.seeds, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(s.missing, 42.0);
  // Free-form maps are typed as Flower's Python side would type them.
  EXPECT_EQ(s.fit_config, (ConfigMap{{"local_epochs", int64_t{2}},
                                     {"lr", 0.01},
                                     {"optimizer", std::string("adam")},
                                     {"quoted", std::string("12")},
                                     {"prox", false}}));
}

TEST(ConfigTest, WrongTypeNamesFileLineAndKey) {
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig yaml,
                             YamlConfig::Parse("num_rounds: five\nstrategy: {}\n", "s.yaml"));
  Settings s;
  EXPECT_THAT(ReadAll(yaml, &s),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("s.yaml:1: key 'num_rounds': expected an integer, got 'five'")));
}

TEST(ConfigTest, OutOfRangeAndOneOfAreErrors) {
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig a, YamlConfig::Parse("num_rounds: 0\n", "a.yaml"));
  Settings s;
  EXPECT_THAT(ReadAll(a, &s), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("a.yaml:1: key 'num_rounds': must be >= 1 (got 0)")));
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig b, YamlConfig::Parse("strategy:\n  name: fedsgd\n", "b.yaml"));
  EXPECT_THAT(ReadAll(b, &s), StatusIs(absl::StatusCode::kInvalidArgument,
                                       AllOf(HasSubstr("b.yaml:2: key 'strategy.name'"),
                                             HasSubstr("must be one of: fedavg, fedadam"))));
}

TEST(ConfigTest, UnknownKeysAreReportedWithSuggestion) {
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig yaml,
                             YamlConfig::Parse("num_rounds: 3\nstrategy:\n  etaa: 0.2\nextra: 1\n", "u.yaml"));
  Settings s;
  EXPECT_THAT(ReadAll(yaml, &s),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("unknown key 'strategy.etaa' (u.yaml:3); did you mean 'strategy.eta'?"),
                             HasSubstr("unknown key 'extra' (u.yaml:4)"))));
}

TEST(ConfigTest, MapWhereScalarExpectedAndNestedFitConfigAreErrors) {
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig a, YamlConfig::Parse("address: {host: x}\n", "a.yaml"));
  Settings s;
  EXPECT_THAT(ReadAll(a, &s), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("key 'address': expected a string, got a map")));
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig b, YamlConfig::Parse("fit_config:\n  lr: [1, 2]\n", "b.yaml"));
  EXPECT_THAT(ReadAll(b, &s), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("key 'fit_config.lr': expected a scalar")));
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig c, YamlConfig::Parse("seeds: [1, x]\n", "c.yaml"));
  EXPECT_THAT(ReadAll(c, &s), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("key 'seeds': item 1 is not integers")));
}

TEST(ConfigTest, InvalidYamlNamesLineAndColumn) {
  EXPECT_THAT(YamlConfig::Parse("a: [1, 2\nb: 3\n", "bad.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad.yaml:")));
  EXPECT_THAT(YamlConfig::Parse("- 1\n- 2\n", "list.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be a map")));
  EXPECT_THAT(YamlConfig::LoadFile("/nonexistent/x.yaml"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/x.yaml")));
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig empty, YamlConfig::Parse("", "empty.yaml"));
  Settings s;
  EXPECT_THAT(ReadAll(empty, &s), IsOk());
}

TEST(ConfigTest, LoadFileReadsFromDisk) {
  const std::string path = ::petal::testing::ScratchPath("config_test.yaml").string();
  {
    std::ofstream out(path);
    out << kDoc;
  }
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig yaml, YamlConfig::LoadFile(path));
  EXPECT_EQ(yaml.source(), path);
  Settings s;
  PETAL_EXPECT_OK(ReadAll(yaml, &s));
  std::remove(path.c_str());
}

TEST(ConfigTest, OverridesSetAnyKeyAndAreNamedInErrors) {
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig yaml, YamlConfig::Parse(kDoc, "server.yaml"));
  PETAL_ASSERT_OK(yaml.ApplyOverride("num_rounds=9"));
  PETAL_ASSERT_OK(yaml.ApplyOverride("strategy.eta=0.5"));
  PETAL_ASSERT_OK(yaml.ApplyOverride("fit_config.new_key=7"));
  PETAL_ASSERT_OK(yaml.ApplyOverride("seeds=[4, 5]"));
  Settings s;
  PETAL_ASSERT_OK(ReadAll(yaml, &s));
  EXPECT_EQ(s.num_rounds, 9);
  EXPECT_DOUBLE_EQ(s.eta, 0.5);
  EXPECT_EQ(s.seeds, (std::vector<int64_t>{4, 5}));
  EXPECT_THAT(s.fit_config.GetInt("new_key"), ::petal::testing::IsOkAndHolds(7));

  PETAL_ASSERT_OK(yaml.ApplyOverride("num_rounds=-2"));
  EXPECT_THAT(ReadAll(yaml, &s), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("--set num_rounds: key 'num_rounds'")));
  EXPECT_THAT(yaml.ApplyOverride("novalue"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(yaml.ApplyOverride("num_rounds.x=1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a map")));
  EXPECT_THAT(yaml.ApplyOverride("a..b=1"), StatusIs(absl::StatusCode::kInvalidArgument));
  // Overrides create new sections too (then unknown-key checks apply).
  PETAL_ASSERT_OK(yaml.ApplyOverride("brand.new=1"));
  EXPECT_THAT(ReadAll(yaml, &s), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ConfigTest, CopiesAreIndependent) {
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig a, YamlConfig::Parse(kDoc, "a.yaml"));
  YamlConfig b = a;
  PETAL_ASSERT_OK(b.ApplyOverride("num_rounds=2"));
  EXPECT_EQ(a.Find("num_rounds")->as<int>(), 5);
  EXPECT_EQ(b.Find("num_rounds")->as<int>(), 2);
  EXPECT_THAT(a.Dump(), HasSubstr("num_rounds: 5"));
}

TEST(ConfigTest, RequireAndFailAreReported) {
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig yaml, YamlConfig::Parse("a: 1\n", "r.yaml"));
  ConfigReader r(yaml);
  int64_t a = 0;
  r.Read("a", &a);
  r.Require("b");
  EXPECT_THAT(r.Finish(), StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("required key 'b' is missing")));
  ConfigReader r2(yaml);
  r2.Read("a", &a);
  r2.Fail("a", "must be even");
  EXPECT_THAT(r2.Finish(), StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("r.yaml:1: key 'a': must be even")));
  ConfigReader r3(yaml);
  r3.Consume("a");
  EXPECT_THAT(r3.Finish(), IsOk());
}

}  // namespace
}  // namespace petal::common
