#include "common/cli.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

CommandLine MakeCli() {
  CommandLine cli("petal-test", "Does things.");
  cli.AddFlag("config", "PATH", "YAML config", "configs/x.yaml");
  cli.AddFlag("partition-id", "N", "which partition");
  cli.AddSwitch("resume", "resume from checkpoint");
  return cli;
}

absl::Status ParseArgs(CommandLine& cli, std::vector<const char*> args) {
  args.insert(args.begin(), "petal-test");
  return cli.Parse(static_cast<int>(args.size()), args.data());
}

TEST(CommandLineTest, ParsesFlagsSwitchesAndOverrides) {
  CommandLine cli = MakeCli();
  PETAL_ASSERT_OK(ParseArgs(cli, {"--config=a.yaml", "--partition-id", "3", "--resume", "--set",
                                  "num_rounds=4", "--set=strategy.eta=0.1", "extra"}));
  EXPECT_EQ(cli.Get("config"), "a.yaml");
  EXPECT_EQ(cli.Get("partition-id"), "3");
  EXPECT_TRUE(cli.Has("resume"));
  EXPECT_THAT(cli.overrides(), ElementsAre("num_rounds=4", "strategy.eta=0.1"));
  EXPECT_THAT(cli.positional(), ElementsAre("extra"));
  EXPECT_FALSE(cli.help_requested());
}

TEST(CommandLineTest, FallbacksAndHelp) {
  CommandLine cli = MakeCli();
  PETAL_ASSERT_OK(ParseArgs(cli, {"--help"}));
  EXPECT_TRUE(cli.help_requested());
  EXPECT_EQ(cli.Get("config"), "configs/x.yaml");
  EXPECT_FALSE(cli.Has("config"));
  const std::string usage = cli.Usage();
  EXPECT_THAT(usage, HasSubstr("Usage: petal-test"));
  EXPECT_THAT(usage, HasSubstr("--config PATH"));
  EXPECT_THAT(usage, HasSubstr("(default: configs/x.yaml)"));
  EXPECT_THAT(usage, HasSubstr("--set key=value"));
}

TEST(CommandLineTest, ErrorsNameTheFlag) {
  CommandLine a = MakeCli();
  EXPECT_THAT(ParseArgs(a, {"--bogus=1"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'--bogus'")));
  CommandLine b = MakeCli();
  EXPECT_THAT(ParseArgs(b, {"--config"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--config needs a value")));
  CommandLine c = MakeCli();
  EXPECT_THAT(ParseArgs(c, {"--resume=yes"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("takes no value")));
  CommandLine d = MakeCli();
  EXPECT_THAT(ParseArgs(d, {"-x"}), StatusIs(absl::StatusCode::kInvalidArgument));
  CommandLine e = MakeCli();
  EXPECT_THAT(ParseArgs(e, {"--set"}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CommandLineTest, ApplyOverridesReachesTheConfig) {
  CommandLine cli = MakeCli();
  PETAL_ASSERT_OK(ParseArgs(cli, {"--set", "a.b=2"}));
  PETAL_ASSERT_OK_AND_ASSIGN(YamlConfig yaml, YamlConfig::Parse("a: {b: 1}\n"));
  PETAL_ASSERT_OK(cli.ApplyOverrides(yaml));
  ConfigReader r(yaml);
  int64_t b = 0;
  r.Read("a.b", &b);
  PETAL_ASSERT_OK(r.Finish());
  EXPECT_EQ(b, 2);
}

}  // namespace
}  // namespace petal::common
